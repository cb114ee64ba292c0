"""A `~astropy.io.fits.FITS_rec` rebuilt from the pieces of a pickled one.

The rows and the column definitions come validated from `~.safe_pickle`;
astropy parses them as a FITS table, so that its own checks apply.
"""
import re

import numpy as np
from astropy.io import fits

from ..exceptions import ProtocolError

try:  # the cells of a variable-length column, as astropy keeps them
    from astropy.io.fits.column import _VLF
except ImportError:  # pragma: no cover - a future astropy may move it
    _VLF = None


_NUMBER = (int, float)
# Column attribute -> (FITS keyword prefix, accepted Python types).
_COLUMN_KEYWORDS = {
    "name": ("TTYPE", (str,)),
    "format": ("TFORM", (str,)),
    "unit": ("TUNIT", (str,)),
    "null": ("TNULL", (int, str)),
    "bscale": ("TSCAL", _NUMBER),
    "bzero": ("TZERO", _NUMBER),
    "disp": ("TDISP", (str,)),
    "start": ("TBCOL", (int,)),
    "dim": ("TDIM", (str,)),
    "coord_type": ("TCTYP", (str,)),
    "coord_unit": ("TCUNI", (str,)),
    "coord_ref_point": ("TCRPX", _NUMBER),
    "coord_ref_value": ("TCRVL", _NUMBER),
    "coord_inc": ("TCDLT", _NUMBER),
    "time_ref_pos": ("TRPOS", (str,)),
}
_VLA_FORMAT_RE = re.compile(r"\s*\d*[PQ]", re.IGNORECASE)


class _HeaderBuffer(bytearray):
    # astropy's ``fromstring`` parses the header only from ``bytes`` slices but
    # happily maps the data from any writable buffer: slices of this buffer are
    # bytes, so the table data stay writable without another copy.
    def __getitem__(self, index):
        return bytes(super().__getitem__(index))


def _table_from_raw(rows, specs, *, ascii, uint, converted, physical, builder):
    """A `~astropy.io.fits.FITS_rec` from the raw (big-endian) rows and the column definitions.

    ``converted`` maps column names to the physical values the table had cached;
    the raw storage of the ``physical`` columns holds physical values (astropy does
    that for scaled columns of tables built in memory).  The table is laid out as
    in a FITS file (rows, then the heap of the variable-length columns, written
    here from their cached values) and parsed by astropy as a file would be: its
    scaling, byte order and logical values are then those of a table read from
    disk, and writing it gives back the same numbers.
    """
    nrows = len(rows)
    names = [spec["name"] for spec in specs]
    variable = [name for spec, name in zip(specs, names) if _VLA_FORMAT_RE.match(spec["format"])]
    # Converted (physical) columns are what the server's table showed: they win over the raw rows.
    use = {}
    for name, value in converted.items():
        if name in names:
            cells = builder.variable_column(value) if name in variable else None
            if cells is not None:  # (counts, values): no cell built one by one
                if len(cells[0]) != nrows:
                    raise ProtocolError(f"column {name!r} of the FITS_rec in pickle has the wrong length")
                use[name] = cells
                continue
            value = builder.build(value)
            if not isinstance(value, np.ndarray) or len(value) != nrows:
                raise ProtocolError(f"column {name!r} of the FITS_rec in pickle has the wrong length")
            use[name] = value
    for name in physical:
        if name not in use and name not in variable:
            use[name] = rows[name]
    missing = [name for name in variable if name not in use]
    if missing:
        raise ProtocolError(
            f"the pickle lost the heap of the variable-length column(s) {', '.join(missing)}")
    heap = b""
    if variable:
        rows = rows.copy()  # the descriptors are rewritten for the new heap
        heap = _heap(rows, [spec for spec in specs if spec["name"] in variable], use)
    data = _parse(rows, heap, specs, ascii=ascii, uint=uint)
    for name, value in use.items():
        if name not in variable:
            data[name][...] = value
    for spec in specs:
        if spec["name"] in variable:
            cells = _plain_heap_cells(data, spec, rows[spec["name"]])
            if cells is not None:
                data._converted[spec["name"]] = cells
    return data


def _plain_heap_cells(data, spec, descriptors):
    """The cells of a plain numeric variable-length column as astropy shows them, or None.

    astropy rebuilds such a column from the heap row by row on first access
    (seconds for 10^5 rows); for numbers without scaling or dimensions the
    cells are only native-order slices of the heap, made here from one
    converted copy.  Logical, text, scaled and shaped columns are left to astropy.
    """
    match = _VLA_PARTS_RE.match(spec["format"])
    code = match.group(2).upper() if match else ""
    if code not in "BIJKEDCM" or not code or spec.get("dim") or \
            (spec.get("bscale", 1), spec.get("bzero", 0)) != (1, 0) or _VLF is None:
        return None
    stored = np.dtype(_HEAP_DTYPES[code])
    raw = data._get_raw_data() if hasattr(data, "_get_raw_data") else None
    if raw is None or not len(descriptors):
        return None
    counts = descriptors[:, 0].astype(np.int64)
    offsets = descriptors[:, 1].astype(np.int64) + data._heapoffset
    start, end = int(offsets.min()), int((offsets + counts * stored.itemsize).max())
    if np.any((offsets - start) % stored.itemsize):
        return None
    # One conversion of the column's part of the heap to native numbers, then a view per cell:
    # what astropy's own row-by-row conversion gives.
    values = np.asarray(raw[start:end]).view(stored).astype(stored.newbyteorder("="))
    first = ((offsets - start) // stored.itemsize).tolist()
    column = _VLF([None] * len(counts), dtype=stored.newbyteorder("=").str[1:])
    put = np.ndarray.__setitem__  # the cells have the column's dtype already: no conversion
    for index, (begin, count) in enumerate(zip(first, counts.tolist())):
        put(column, index, values[begin:begin + count])
    column.max = int(counts.max())
    return column


def _parse(rows, heap, specs, *, ascii, uint):
    """The table astropy reads from a FITS layout of ``rows`` and ``heap``."""
    nrows, rowsize = len(rows), rows.dtype.itemsize
    header = fits.Header()
    for keyword, value in (("XTENSION", "TABLE" if ascii else "BINTABLE"), ("BITPIX", 8),
                           ("NAXIS", 2), ("NAXIS1", rowsize), ("NAXIS2", nrows),
                           ("PCOUNT", len(heap)), ("GCOUNT", 1), ("TFIELDS", len(specs))):
        header.append(fits.Card(keyword, value))
    for index, spec in enumerate(specs, 1):
        for attribute, value in spec.items():
            header.append(fits.Card(f"{_COLUMN_KEYWORDS[attribute][0]}{index}", value))
    head = header.tostring().encode("ascii")
    size = nrows * rowsize + len(heap)
    buffer = _HeaderBuffer(len(head) + size + (-size) % 2880)
    buffer[:len(head)] = head
    if nrows * rowsize:
        buffer[len(head):len(head) + nrows * rowsize] = memoryview(
            np.ascontiguousarray(rows).view(np.uint8))
    if heap:
        buffer[len(head) + nrows * rowsize:len(head) + size] = heap
    hdu_class = fits.TableHDU if ascii else fits.BinTableHDU
    data = hdu_class.fromstring(buffer, uint=uint).data
    if data is None or data.dtype.itemsize != rowsize or len(data) != nrows:
        raise ProtocolError("FITS_rec columns in pickle do not describe its data")
    return data


_VLA_PARTS_RE = re.compile(r"\s*1?([PQ])([LXBIJKAEDCM])(?:\(\d*\))?\s*\Z", re.IGNORECASE)
_HEAP_DTYPES = {"L": "u1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "A": "u1", "E": ">f4",
                "D": ">f8", "C": ">c8", "M": ">c16"}
_TRUE, _FALSE = ord("T"), ord("F")


def _heap(rows, specs, values):
    """The heap of the variable-length columns ``specs``; their descriptors in ``rows`` are set."""
    chunks, offset = [], 0
    for spec in specs:
        name = spec["name"]
        match = _VLA_PARTS_RE.match(spec["format"])
        if match is None or match.group(2).upper() == "X":
            raise ProtocolError(f"variable-length column {name!r} of format "
                                f"{spec['format'][:20]!r} is not supported")
        kind, code = match.group(1).upper(), match.group(2).upper()
        descriptors = rows[name]
        limit = 2 ** 31 if kind == "P" else 2 ** 63
        if descriptors.shape[1:] != (2,) or descriptors.dtype.itemsize != (4 if kind == "P" else 8):
            raise ProtocolError(f"variable-length column {name!r} in pickle has malformed descriptors")
        column = _numeric_heap(values[name], code, spec)
        if column is None and isinstance(values[name], tuple):  # (counts, values), not numeric
            values[name] = split_cells(*values[name])
        if column is not None:  # all cells at once
            counts, elements = column
            itemsize = elements.dtype.itemsize
            starts = offset + (np.cumsum(counts) - counts) * itemsize
            if len(counts) and (starts[-1] >= limit or counts.max() >= limit):
                raise ProtocolError(f"variable-length column {name!r}: heap too large for {kind}")
            descriptors[:, 0] = counts
            descriptors[:, 1] = starts
            chunk = elements.tobytes()
            chunks.append(chunk)
            offset += len(chunk)
            continue
        for row, value in enumerate(values[name]):
            elements = _heap_elements(value, code, spec)
            if offset >= limit or elements.size >= limit:
                raise ProtocolError(f"variable-length column {name!r}: heap too large for {kind}")
            descriptors[row] = (elements.size, offset)
            chunk = elements.tobytes()
            chunks.append(chunk)
            offset += len(chunk)
    return b"".join(chunks)


def split_cells(counts, values):
    """The cells whose element counts are ``counts``, as views of ``values`` (all their elements)."""
    ends = np.cumsum(counts, dtype=np.int64).tolist()
    return [values[start:end] for start, end in zip([0] + ends[:-1], ends)]


def _numeric_heap(cells, code, spec):
    """``(counts, elements)`` of a numeric variable-length column whose cells are all 1-d arrays
    of one numeric dtype (what `_heap_elements` gives cell by cell), else None.

    ``cells`` may also be ``(counts, values)``, all cells at once.
    """
    if isinstance(cells, tuple):  # (counts, values) of all cells at once
        counts, values = cells
        if code in "AL" or values.dtype.kind not in "biufc":
            return None
        return counts, _stored(values, code, spec)
    if code in "AL" or len(cells) < 2 or not all(type(cell) is np.ndarray for cell in cells):
        return None
    dtype = cells[0].dtype
    if dtype.kind not in "biufc" or any(cell.dtype != dtype or cell.ndim != 1 for cell in cells):
        return None
    counts = np.fromiter((cell.size for cell in cells), dtype=np.int64, count=len(cells))
    return counts, _stored(np.concatenate(cells), code, spec)


def _stored(array, code, spec):
    """Physical values of a numeric variable-length column as the heap stores them (TSCAL/TZERO undone)."""
    dtype = np.dtype(_HEAP_DTYPES[code])
    scale, zero = spec.get("bscale", 1), spec.get("bzero", 0)
    if (scale, zero) != (1, 0):
        array = (array - zero) / scale
        if dtype.kind in "iu":
            array = np.round(array)
    return array.astype(dtype)


def _heap_elements(value, code, spec):
    """The raw (FITS) elements of one cell of a variable-length column."""
    name = spec["name"]
    if value is None:
        return np.zeros(0, _HEAP_DTYPES[code])
    if code == "A":
        if isinstance(value, np.ndarray):
            value = ("".join(value.ravel().tolist()) if value.dtype.kind == "U"
                     else b"".join(value.ravel().tolist()))
        if isinstance(value, str):
            value = value.encode("latin1", "replace")
        if not isinstance(value, bytes):
            raise ProtocolError(f"variable-length column {name!r} holds non-text values")
        return np.frombuffer(value, np.uint8)
    array = np.asarray(value).ravel()
    if code == "L":
        if array.dtype.kind == "b":
            return np.where(array, _TRUE, _FALSE).astype(np.uint8)
        # astropy 6.1 pickles logical cells as their raw characters (b'T', b'F', 0 for null).
        if array.dtype.kind == "S" and array.dtype.itemsize == 1:
            array = array.view(np.uint8)
        if array.dtype.kind in "iu" and np.isin(array, (_TRUE, _FALSE, 0)).all():
            return array.astype(np.uint8)
        raise ProtocolError(f"logical variable-length column {name!r} holds values other than T/F")
    if array.dtype.kind not in "biufc":
        raise ProtocolError(f"variable-length column {name!r} holds {array.dtype} values")
    return _stored(array, code, spec)
