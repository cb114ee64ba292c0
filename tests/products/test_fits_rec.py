"""FITS tables rebuilt from pickles: scaling, logical cells and byte order as in a file."""
import io
import pickle

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.column import _VLF

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products import safe_loads


def read_back(hdu):
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    buffer.seek(0)
    return fits.open(buffer)


def scaled_table(variable):
    """A table as read from a file: raw integers with TSCAL/TZERO, and a P column if ``variable``."""
    columns = [fits.Column("S", "J", array=np.array([0, 1, 2], dtype=np.int32)),
               fits.Column("B", "B", array=np.array([0, 128, 255], dtype=np.uint8)),
               fits.Column("U", "I", array=np.array([-32768, 0, 32767], dtype=np.int16))]
    if variable:
        columns.append(fits.Column("V", "PJ()", array=[np.arange(2), np.arange(1), np.arange(3)]))
    hdu = fits.BinTableHDU.from_columns(columns)
    hdu.header.update(TSCAL1=0.5, TZERO1=10, TZERO2=-128, TZERO3=32768)
    return read_back(hdu)


@pytest.mark.parametrize("variable", [False, True], ids=["fixed", "with-variable-length-column"])
def test_scaled_and_signed_byte_columns_keep_their_physical_values(variable):
    with scaled_table(variable) as hdul:
        data = hdul[1].data
        for name in data.names:
            data[name]  # the server's table has been read: physical values are cached
        out = safe_loads(pickle.dumps(data))
    assert out["S"].tolist() == [10.0, 10.5, 11.0]
    assert out["B"].tolist() == [-128, 0, 127]
    assert out["U"].tolist() == [0, 32768, 65535] and out["U"].dtype.kind == "u"
    with read_back(fits.BinTableHDU(out)) as written:
        again = written[1].data
        assert again["S"].tolist() == [10.0, 10.5, 11.0] and again["B"].tolist() == [-128, 0, 127]
        assert written[1].header["TSCAL1"] == 0.5 and written[1].header["TZERO2"] == -128
        if variable:
            assert [cell.tolist() for cell in again["V"]] == [[0, 1], [0], [0, 1, 2]]


def test_variable_length_tables_have_the_byte_order_of_their_file():
    with scaled_table(True) as hdul:
        data = hdul[1].data
        data["V"]
        out = safe_loads(pickle.dumps(data))
    with read_back(fits.BinTableHDU(out)) as written:
        assert out.dtype == written[1].data.dtype
    assert all(out.dtype[name].byteorder in (">", "|") for name in out.names)


def logical_table():
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("L", "PL()", array=[np.array([True, False]), np.array([False]),
                                        np.array([], dtype=bool)]),
        fits.Column("A", "PA()", array=["ab", "c", ""])])
    return read_back(hdu)


def test_logical_variable_length_cells_as_booleans_or_as_raw_characters():
    with logical_table() as hdul:
        data = hdul[1].data
        data["A"]
        data["L"]
        as_bools = safe_loads(pickle.dumps(data))
        # astropy 6.1 caches logical cells as their raw characters 'T' (84) and 'F' (70).
        data._converted["L"] = _VLF([np.array([84, 70], np.int8), np.array([70], np.int8),
                                     np.array([], np.int8)], dtype=np.int8)
        as_chars = safe_loads(pickle.dumps(data))
        data._converted["L"] = _VLF([np.array([84, 2], np.int8), np.array([70], np.int8),
                                     np.array([], np.int8)], dtype=np.int8)
        with pytest.raises(ProtocolError, match="values other than T/F"):
            safe_loads(pickle.dumps(data))
    for out in (as_bools, as_chars):
        assert [cell.tolist() for cell in out["L"]] == [[True, False], [False], []]
        assert ["".join(cell.tolist()) for cell in out["A"]] == ["ab", "c", ""]
        with read_back(fits.BinTableHDU(out)) as written:
            assert [cell.tolist() for cell in written[1].data["L"]] == [[True, False], [False], []]


@pytest.mark.parametrize("form, cells", [
    ("PE()", [np.arange(3, dtype=np.float32), np.zeros(0, np.float32), np.ones(5, np.float32)]),
    ("PD()", [np.arange(2.0)] * 4),  # every cell as long: no 2-D object array
    ("QJ()", [np.arange(3, dtype=np.int32), np.arange(1, dtype=np.int32)]),
    ("PB()", [np.array([1, 255], dtype=np.uint8), np.array([7], dtype=np.uint8)]),
    ("PC()", [np.array([1 + 2j, 3j], dtype=np.complex64)]),
])
def test_numeric_variable_length_columns_are_what_astropy_reads(form, cells):
    """The fast path for plain numeric cells gives astropy's own column: values, dtypes, maximum."""
    hdu = fits.BinTableHDU.from_columns([fits.Column("V", form, array=cells),
                                         fits.Column("N", "J", array=np.arange(len(cells)))])
    with read_back(hdu) as hdul:
        served = hdul[1].data
        expected = served["V"]
        out = safe_loads(pickle.dumps(served))
    got = out["V"]
    assert isinstance(got, _VLF) and got.max == expected.max and got.element_dtype == expected.element_dtype
    assert [cell.dtype for cell in got] == [cell.dtype for cell in expected]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    with read_back(fits.BinTableHDU(out)) as written:  # and written back as it came
        assert all(np.array_equal(a, b) for a, b in zip(written[1].data["V"], expected))
