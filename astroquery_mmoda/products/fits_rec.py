"""A `~astropy.io.fits.FITS_rec` rebuilt from the pieces of a pickled one.

The rows and the column definitions come validated from `~.safe_pickle`;
astropy parses them as a FITS table, so that its own checks apply.
"""
import re

import numpy as np
from astropy.io import fits

from ..exceptions import ProtocolError


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
    that for scaled columns of tables built in memory).
    """
    nrows, rowsize = len(rows), rows.dtype.itemsize
    header = fits.Header()
    for keyword, value in (("XTENSION", "TABLE" if ascii else "BINTABLE"), ("BITPIX", 8),
                           ("NAXIS", 2), ("NAXIS1", rowsize), ("NAXIS2", nrows), ("PCOUNT", 0),
                           ("GCOUNT", 1), ("TFIELDS", len(specs))):
        header.append(fits.Card(keyword, value))
    for index, spec in enumerate(specs, 1):
        for attribute, value in spec.items():
            header.append(fits.Card(f"{_COLUMN_KEYWORDS[attribute][0]}{index}", value))
    head = header.tostring().encode("ascii")
    size = nrows * rowsize
    buffer = _HeaderBuffer(len(head) + size + (-size) % 2880)
    buffer[:len(head)] = head
    if size:
        buffer[len(head):len(head) + size] = memoryview(np.ascontiguousarray(rows).view(np.uint8))
    hdu_class = fits.TableHDU if ascii else fits.BinTableHDU
    parsed = hdu_class.fromstring(buffer, uint=uint)
    data = parsed.data
    if data is None or data.dtype.itemsize != rowsize or len(data) != nrows:
        raise ProtocolError("FITS_rec columns in pickle do not describe its data")
    names = [spec["name"] for spec in specs]
    variable = [name for spec, name in zip(specs, names) if _VLA_FORMAT_RE.match(spec["format"])]
    # Converted (physical) columns are what the server's table showed: they win over the raw rows.
    use = {}
    for name, value in converted.items():
        if name in names:
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
    if not variable:
        for name, value in use.items():
            data[name][...] = value
        return data
    columns = [fits.Column(array=use[spec["name"]] if spec["name"] in use else data[spec["name"]],
                           ascii=ascii or None, **spec) for spec in specs]
    return hdu_class.from_columns(columns, nrows=nrows).data
