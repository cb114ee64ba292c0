"""safe_loads: numpy arrays and FITS tables come back exactly."""
import pickle
import warnings

import numpy as np
import pytest
from astropy.io import fits

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products import safe_loads
from .helpers import make_fits


ARRAYS = [
    np.arange(12.0).reshape(3, 4),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    np.arange(5, dtype=">i2"),
    np.arange(3000, dtype="<f8"),
    np.arange(3000, dtype=">f8").reshape(30, 100),
    np.zeros((0, 3)),
    np.array(["a", "bcd"]),
    np.array([b"a", b"bcd"]),
    np.array([True, False]),
    np.array([1 + 2j]),
    np.array(["2020-01-01T00:00", "NaT"], dtype="M8[ns]"),
    np.array([1, 2], dtype="m8[s]"),
    np.array([(1.0, 2, "x")], dtype=[("a", ">f8"), ("b", "<i4"), ("c", "U3")]),
    np.array([(1.0, [1, 2])], dtype=[("a", "f4"), ("b", "i2", (2,))]),
    np.array([(1, "x"), (2, "y")], dtype=[("i", "i8"), ("s", "O")]),
    np.rec.array([(1.0, "x")], dtype=[("TIME", "f8"), ("N", "S2")]),
]


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: str(a.dtype))
def test_safe_loads_round_trips_arrays(array, protocol):
    out = safe_loads(pickle.dumps(array, protocol=protocol))
    assert type(out) is type(array)
    assert out.dtype == array.dtype and out.shape == array.shape
    assert np.array_equal(out, array) if array.dtype.kind not in "mM" else (
        np.array_equal(out.view("i8"), array.view("i8")))
    if out.size:
        assert out.flags.writeable


def test_safe_loads_object_arrays_scalars_and_containers():
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.arange(2), np.arange(2), np.arange(5.0)]
    out = safe_loads(pickle.dumps({"ragged": ragged, "scalars": (np.float32(1.5), np.int64(-3)),
                                   "record": np.rec.array([(1, 2.0)], names="a,b")[0],
                                   "plain": [1, "x", None, {2}, b"y"]}))
    assert all(np.array_equal(a, b) for a, b in zip(out["ragged"], ragged))
    assert out["scalars"] == (np.float32(1.5), np.int64(-3))
    assert type(out["scalars"][0]) is np.float32
    assert out["record"]["b"] == 2.0
    assert out["plain"] == [1, "x", None, {2}, b"y"]


def test_safe_loads_big_native_array_is_not_copied_twice():
    image = np.random.default_rng(1).random((300, 300))
    out = safe_loads(pickle.dumps(image))
    assert np.array_equal(out, image)
    assert out.flags.writeable
    # numpy adopts the unpickled bytes: the array does not own a second copy
    assert not out.flags.owndata


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [">f8", ">i2", [("A", ">f4"), ("B", "<i8")]], ids=str)
def test_safe_loads_big_endian_arrays_are_views_of_the_unpickled_bytes(dtype, order):
    image = np.zeros((300, 200), dtype=np.dtype(dtype), order=order)
    for name in image.dtype.names or [None]:
        values = np.random.default_rng(2).random((300, 200)) * 1000
        if name is None:
            image[...] = values
        else:
            image[name] = values
    out = safe_loads(pickle.dumps(image, protocol=2))
    assert out.dtype == image.dtype and out.shape == image.shape
    assert np.array_equal(out, image) and out.flags.writeable
    assert out.flags.f_contiguous == (order == "F")
    assert not out.flags.owndata  # FITS data (big-endian) are not swapped into a copy
    out[0, 0] = image[0, 0]


def test_one_buffer_named_twice_gives_two_arrays():
    shared = np.arange(2000.0).tobytes()
    from numpy._core.multiarray import _reconstruct

    class Twice:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (2000,), np.dtype("<f8"), False, shared))
    first, second = safe_loads(pickle.dumps([Twice(), Twice()], protocol=4))
    first[0] = -1.0
    assert second[0] == 0.0 and first[1] == second[1] == 1.0


def fits_table(path):
    make_fits(path)
    return fits.open(path)


def test_safe_loads_fits_rec_from_file(tmp_path):
    with fits_table(tmp_path / "t.fits") as hdul:
        for index in (2, 3):
            data = hdul[index].data
            if index == 2:
                data["MATRIX"], data["BIG"]  # noqa: B018 - the server converts VLAs before pickling
            out = safe_loads(pickle.dumps(data))
            assert isinstance(out, fits.FITS_rec)
            assert out.columns.names == data.columns.names
            for name in data.columns.names:
                assert out.columns[name].unit == data.columns[name].unit
                if data.columns[name].format.startswith(("P", "Q")):
                    assert all(np.array_equal(a, b) for a, b in zip(out[name], data[name]))
                else:
                    np.testing.assert_array_equal(out[name], data[name])


def test_safe_loads_fits_rec_built_in_memory():
    # In memory astropy keeps raw columns in native byte order and scaled values unscaled.
    columns = [fits.Column("T", "D", unit="s", array=np.arange(4.0)),
               fits.Column("SC", "E", bscale=0.5, bzero=10, array=[10.0, 10.5, 11, 12]),
               fits.Column("U", "I", bzero=32768, array=np.array([0, 1, 65535, 4], np.uint16)),
               fits.Column("L", "L", array=[True, False, True, True]),
               fits.Column("X", "3X", array=np.eye(4, 3, dtype=bool)),
               fits.Column("S", "4A", array=["a", "bb", "ccc", "dddd"])]
    data = fits.BinTableHDU.from_columns(columns).data
    out = safe_loads(pickle.dumps(data))
    for name in data.columns.names:
        np.testing.assert_array_equal(out[name], data[name])
    assert out.columns["U"].bzero == 32768 and out.columns["T"].unit == "s"


def test_fits_rec_without_its_heap_is_refused(tmp_path):
    with fits_table(tmp_path / "t.fits") as hdul:
        blob = pickle.dumps(hdul[2].data)  # the VLA columns were never read: heap not pickled
    with pytest.raises(ProtocolError, match="heap of the variable-length column"):
        safe_loads(blob)


class _ClaimedArray:
    """Pickles as numpy does, with a shape and dtype of our choosing and no data."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct
        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, b""))


@pytest.mark.parametrize("dtype", [[], ("f8", (0,)), [("a", "f8", (0,))], "S0"], ids=str)
def test_zero_size_elements_are_bounded_by_the_bytes_sent(dtype):
    blob = pickle.dumps(_ClaimedArray((2 ** 40,), dtype), protocol=2)
    assert len(blob) < 400
    claimed = r"claims 1099511627776 elements but the pickle has only \d+ bytes"
    with pytest.raises(ProtocolError, match=claimed):
        safe_loads(blob)
    assert safe_loads(pickle.dumps(_ClaimedArray((3,), dtype), protocol=2)).shape == (3,)


def test_tables_beyond_the_fits_column_limit_are_refused():
    many = np.zeros(1, dtype=[(f"C{i}", "u1") for i in range(1000)])
    with pytest.raises(ProtocolError, match="1000 fields, more than the 999 columns"):
        safe_loads(pickle.dumps(many))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # TTYPE1000 is no FITS keyword
        table = fits.BinTableHDU.from_columns(
            [fits.Column(f"C{i}", "B", array=np.zeros(1, np.uint8)) for i in range(1000)]).data
    with pytest.raises(ProtocolError, match="more than the 999"):
        safe_loads(pickle.dumps(table))
    assert len(safe_loads(pickle.dumps(many[[f"C{i}" for i in range(999)]])).dtype.names) == 999


# ---------------------------------------------------------------------------
# Object arrays of many plain cells (variable-length columns): built at once

def cells_array(cells):
    array = np.empty(len(cells), dtype=object)
    array[:] = cells
    return array


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("dtype", [">f8", "<i4", "u1"])
def test_many_plain_cells_come_back_exactly_and_independent(protocol, dtype):
    rng = np.random.default_rng(5)
    cells = [rng.integers(0, 100, size=rng.integers(0, 6)).astype(dtype) for _ in range(500)]
    out = safe_loads(pickle.dumps(cells_array(cells), protocol=protocol))
    assert out.dtype == object and len(out) == 500
    for got, sent in zip(out, cells):
        assert got.dtype == np.dtype(dtype) and got.shape == sent.shape
        np.testing.assert_array_equal(got, sent)
    out[1][...] = 7 if len(out[1]) else 0  # cells are writeable and each one its own
    np.testing.assert_array_equal(out[0], cells[0])
    np.testing.assert_array_equal(out[2], cells[2])


def test_a_cell_named_twice_stays_one_object():
    shared = np.arange(3.0)
    cells = [np.arange(float(i % 4)) for i in range(200)]
    cells[10] = cells[20] = shared
    out = safe_loads(pickle.dumps(cells_array(cells)))
    assert out[10] is out[20]
    np.testing.assert_array_equal(out[10], shared)
    np.testing.assert_array_equal(out[199], cells[199])


def test_cells_of_different_dtypes_or_shapes_still_decode():
    cells = [np.arange(i % 3, dtype="i2" if i % 2 else "f8") for i in range(200)]
    cells.append(np.zeros((2, 2)))
    out = safe_loads(pickle.dumps(cells_array(cells)))
    for got, sent in zip(out, cells):
        assert got.dtype == sent.dtype and got.shape == sent.shape


class _LyingCell:
    """Pickles as a float64 array that claims 4 elements but carries 3."""

    def __reduce__(self):
        reconstruct = np.arange(1.0).__reduce__()[0]
        return (reconstruct, (np.ndarray, (0,), b"b"),
                (1, (4,), np.dtype("f8"), False, np.arange(3.0).tobytes()))


def test_a_cell_whose_data_do_not_match_its_shape_is_refused():
    cells = [np.arange(float(i % 5)) for i in range(200)]
    cells[3] = _LyingCell()
    with pytest.raises(ProtocolError, match="does not match its shape"):
        safe_loads(pickle.dumps(cells_array(cells), protocol=4))


def test_garbage_collection_is_on_again_after_a_decode_and_stays_off_if_it_was():
    import gc
    cells = cells_array([np.arange(float(i % 5)) for i in range(300)])
    assert gc.isenabled()
    safe_loads(pickle.dumps(cells))
    assert gc.isenabled()
    with pytest.raises(ProtocolError):
        safe_loads(pickle.dumps(print))
    assert gc.isenabled()
    gc.disable()
    try:
        safe_loads(pickle.dumps(cells))
        assert not gc.isenabled()
    finally:
        gc.enable()
