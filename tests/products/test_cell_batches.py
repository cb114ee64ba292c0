"""Cells of variable-length columns read from the pickle's bytes, batch by batch."""
import io
import pickle
import pickletools

import numpy as np
import pytest
from astropy.io import fits

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products import cell_batches, safe_loads, unpickler
from astroquery_mmoda.products.cell_batches import compact_cell_batches


@pytest.fixture(autouse=True)
def small_pickles_too(monkeypatch):
    """The pass only runs on pickles of 1 MiB and more: here on small ones as well."""
    monkeypatch.setattr(cell_batches, "MIN_SIZE", 0)


@pytest.fixture
def without_the_pass(monkeypatch):
    def decode(data):
        with monkeypatch.context() as patch:
            patch.setattr(unpickler, "compact_cell_batches", lambda data: None)
            return safe_loads(data)
    return decode


def served_table(rows=5000, form="PE()", seed=1):
    """A table as the server pickles it: read from a file, its variable-length column read too."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 6, rows)
    dtype = {"PE()": np.float32, "PJ()": np.int32, "QD()": np.float64}[form]
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("TIME", "D", array=np.arange(rows, dtype=float)),
        fits.Column("SPEC", form, array=[rng.integers(0, 100, n).astype(dtype) for n in lengths])])
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        data = hdul[1].data
        cells = [np.array(cell) for cell in data["SPEC"]]
        return data, cells


@pytest.mark.parametrize("form", ["PE()", "PJ()", "QD()"])
def test_tables_decode_alike_with_and_without_the_pass(form, without_the_pass):
    data, cells = served_table(form=form)
    pickled = pickle.dumps(data, protocol=4)  # the servers' Pythons (3.8 to 3.13) write protocol 4
    rewritten, batches = compact_cell_batches(pickled)
    assert len(batches.batches) >= 4 and len(batches.counts) >= 4000 and rewritten.size < len(pickled)
    ours, reference = safe_loads(pickled), without_the_pass(pickled)
    assert ours.dtype == reference.dtype and ours["TIME"].tolist() == reference["TIME"].tolist()
    assert [cell.dtype for cell in ours["SPEC"]] == [cell.dtype for cell in reference["SPEC"]]
    assert [cell.tolist() for cell in ours["SPEC"]] == [cell.tolist() for cell in cells]


def test_an_object_array_of_cells_decodes_as_pickle_reads_it(without_the_pass):
    cells = np.empty(3000, dtype=object)
    cells[:] = [np.arange(n % 7, dtype=float) for n in range(3000)]
    pickled = pickle.dumps(cells, protocol=4)
    assert compact_cell_batches(pickled) is not None
    out = safe_loads(pickled)
    assert out.dtype == object and len(out) == 3000
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(out, pickle.loads(pickled)))
    assert all(np.array_equal(a, b) for a, b in zip(out, without_the_pass(pickled)))


def test_a_cell_named_again_outside_its_batch_is_still_the_same_array():
    cells = np.empty(3000, dtype=object)
    cells[:] = [np.arange(3.0) + n for n in range(3000)]
    pickled = pickle.dumps([cells, cells[2500]], protocol=4)
    out, again = safe_loads(pickled)
    assert again is out[2500] and again.tolist() == [2500.0, 2501.0, 2502.0]


def test_pickles_it_cannot_follow_are_left_as_they_are(without_the_pass):
    cells = np.empty(3000, dtype=object)
    cells[:] = [np.arange(3.0) + n for n in range(3000)]
    assert compact_cell_batches(pickle.dumps(cells, protocol=2)) is None  # memo by BINPUT
    # protocol 5 writes cells as numpy's _frombuffer: left to the unpickler
    pickled = pickle.dumps(cells, protocol=5)
    assert compact_cell_batches(pickled) is None
    assert [cell.tolist() for cell in safe_loads(pickled)] == [cell.tolist() for cell in cells]
    assert compact_cell_batches(pickle.dumps(list(range(5000)), protocol=4)) is None  # no cells
    assert compact_cell_batches(pickle.dumps(cells, protocol=4)[:-300]) is None  # truncated


def test_the_private_global_cannot_be_named_by_a_pickle():
    forged = pickletools.optimize(
        b"\x80\x04\x8c\x16astroquery_mmoda.cells\x8c\x0cbatch_000000\x93)R.")
    with pytest.raises(ProtocolError, match="refused to unpickle the global astroquery_mmoda.cells"):
        safe_loads(forged)


def test_a_cell_whose_data_does_not_fit_its_shape_is_refused_as_before(without_the_pass):
    cells = np.empty(3000, dtype=object)
    cells[:] = [np.arange(2, dtype=np.float32) for _ in range(3000)]
    pickled = pickle.dumps(cells, protocol=4)
    # the 100th cell claims three elements for the eight bytes of two
    position = -1
    for _ in range(100):
        position = pickled.index(b"K\x01K\x02\x85", position + 1)
    broken = pickled[:position] + b"K\x01K\x03\x85" + pickled[position + 5:]
    assert compact_cell_batches(broken) is not None
    with pytest.raises(ProtocolError, match="does not match its shape and dtype") as ours:
        safe_loads(broken)
    with pytest.raises(ProtocolError) as reference:
        without_the_pass(broken)
    assert str(ours.value) == str(reference.value)


def test_a_list_of_arrays_decodes_as_pickle_reads_it():
    arrays = [np.arange(n % 5, dtype=np.int32) + n for n in range(2500)]
    pickled = pickle.dumps({"cells": arrays}, protocol=4)
    assert compact_cell_batches(pickled) is not None
    out = safe_loads(pickled)["cells"]
    assert type(out) is list and len(out) == 2500
    assert all(a.dtype == b.dtype and a.tolist() == b.tolist() for a, b in zip(out, arrays))


def test_the_rewritten_pickle_reads_as_one_file_of_its_pieces():
    from astroquery_mmoda.products.cell_batches import PiecesReader

    reader = PiecesReader([memoryview(b"ab\ncd"), b"", b"efg", memoryview(b"h\nij")])
    assert reader.size == 12 and reader.peek(4) == b"ab\nc" and reader.readline() == b"ab\n"
    buffer = bytearray(4)
    assert reader.readinto(buffer) == 4 and buffer == b"cdef"
    assert reader.read(3) == b"gh\n" and reader.read() == b"ij" and reader.read(5) == b""


def test_a_variable_length_column_whose_cells_differ_in_dtype_still_decodes(without_the_pass):
    """The heap's shortcut declines such a column; it is then built cell by cell, as without the pass."""
    data, _ = served_table(rows=3000)
    column = data._converted["SPEC"]
    for row in (0, 1500):  # two cells of another dtype (astropy's own setter would convert them)
        np.ndarray.__setitem__(column, row, np.asarray(column[row], dtype=np.float64))
    pickled = pickle.dumps(data, protocol=4)
    assert compact_cell_batches(pickled) is not None
    ours, reference = safe_loads(pickled), without_the_pass(pickled)
    assert [cell.tolist() for cell in ours["SPEC"]] == [cell.tolist() for cell in reference["SPEC"]]
