"""Decoding of MMODA data products into astropy objects, without trusting the server.

The dispatcher's ``products`` dictionary mixes JSON, base64 and Python pickles
(see :func:`decode_products`).  Everything here is decoded with plain `json`,
strict base64 and `safe_loads`, an allow-list unpickler that never runs code
from the data: the allowed numpy and astropy globals are replaced by inert
stand-ins while unpickling, and the result is rebuilt afterwards with public
numpy and astropy constructors from validated pieces.
"""
import binascii
import contextlib
import hashlib
import io
import json
import math
import pickle
import re
import sys
import types
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table
from astropy.utils.exceptions import AstropyUserWarning

from .exceptions import InvalidQueryError, ProtocolError

__all__ = ["ProductSet", "NamedBytes", "decode_products", "safe_loads", "catalog_from_dict",
           "catalog_to_selected_catalog", "ALLOWED_GLOBALS"]

_MAX_SHOWN = 200


def _redact(text):
    # auth pulls in the token machinery: import it only when text is shown.
    from .auth import redact
    return redact(text)


def _short(value, limit=_MAX_SHOWN):
    """``repr``-like text of ``value`` cut to ``limit`` characters, tokens removed."""
    if isinstance(value, (bytes, bytearray)):
        text = f"<{len(value)} bytes>"
    else:
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # a repr that fails must not hide the real error
            text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return _redact(text)


# ---------------------------------------------------------------------------
# safe unpickling


class _NoState:
    __slots__ = ()

    def __repr__(self):
        return "<no state>"


_NO_STATE = _NoState()


class _Shadow:
    """Inert stand-in for what an allowed global would have built.

    It only records the arguments and the state the pickle gives it.  Being a
    class with ``__setstate__``, a pickle that tries to set the state of the
    stand-in *class* itself (monkey-patching) fails with a ``TypeError``.
    """

    __slots__ = ("args", "state")

    def __new__(cls, *args, **kwargs):
        if kwargs:
            raise ProtocolError(f"pickle passes keyword arguments to {cls.__name__}")
        self = object.__new__(cls)
        self.args = args
        self.state = _NO_STATE
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if self.state is not _NO_STATE:
            raise ProtocolError("pickle sets the state of one object twice")
        self.state = state

    def __reduce__(self):
        raise TypeError("stand-ins of unpickled objects cannot be pickled")


class _DtypeShadow(_Shadow):
    __slots__ = ()


class _ArrayShadow(_Shadow):
    """``_reconstruct(subtype, shape, dtype)`` + ``__setstate__``."""
    __slots__ = ()


class _FromBufferShadow(_Shadow):
    """``_frombuffer(buffer, dtype, shape, order)`` (pickle protocol 5)."""
    __slots__ = ()


class _ScalarShadow(_Shadow):
    """``scalar(dtype, raw)``: a numpy scalar."""
    __slots__ = ()


# Classes that appear in pickles as array subtypes, dtype types or objects of
# FITS column definitions.
class _NdarrayType(_Shadow):
    __slots__ = ()


class _RecarrayType(_Shadow):
    __slots__ = ()


class _ChararrayType(_Shadow):
    __slots__ = ()


class _FitsRecType(_Shadow):
    __slots__ = ()


class _VLFType(_Shadow):
    __slots__ = ()


class _RecordType(_Shadow):
    __slots__ = ()


class _ColDefsType(_Shadow):
    __slots__ = ()


class _AsciiColDefsType(_ColDefsType):
    __slots__ = ()


class _ColumnType(_Shadow):
    __slots__ = ()


class _FormatType(_Shadow):
    """A FITS column format: a ``str`` subclass, its text is the first argument."""
    __slots__ = ()


class _Factory:
    """An allowed function: returns a stand-in, never calls numpy."""

    __slots__ = ("_make", "_name")

    def __init__(self, make, name):
        self._make = make
        self._name = name

    def __call__(self, *args):
        return self._make(*args)

    def __setstate__(self, state):
        raise ProtocolError(f"pickle tries to modify {self._name}")

    def __reduce__(self):
        raise TypeError("stand-ins of unpickled objects cannot be pickled")


def _latin1_bytes(text, encoding="latin1"):
    # Protocol-2 pickles write bytes as _codecs.encode(text, 'latin1'): only that call is honoured.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ProtocolError("pickle calls _codecs.encode with unexpected arguments")
    return text.encode("latin1")


def _bytes(*args):
    # Protocol-2 pickles write empty bytes as bytes().
    if args:
        raise ProtocolError("pickle calls bytes with arguments")
    return b""


_RECONSTRUCT = _Factory(_ArrayShadow, "numpy _reconstruct")
_LATIN1 = _Factory(_latin1_bytes, "_codecs.encode")
_BYTES = _Factory(_bytes, "bytes")
_SCALAR = _Factory(_ScalarShadow, "numpy scalar")
_FROMBUFFER = _Factory(_FromBufferShadow, "numpy _frombuffer")

_ARRAY_TYPES = (_NdarrayType, _RecarrayType, _ChararrayType, _FitsRecType, _VLFType)


def _globals_table():
    table = {}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _RECONSTRUCT
        table[(f"{core}.multiarray", "scalar")] = _SCALAR
        table[(f"{core}.numeric", "_frombuffer")] = _FROMBUFFER
        table[(f"{core}.records", "recarray")] = _RecarrayType
        table[(f"{core}.records", "record")] = _RecordType
        table[(f"{core}.defchararray", "chararray")] = _ChararrayType
    table.update({
        ("_codecs", "encode"): _LATIN1,
        ("builtins", "bytes"): _BYTES,
        ("__builtin__", "bytes"): _BYTES,
        ("numpy", "ndarray"): _NdarrayType,
        ("numpy", "dtype"): _DtypeShadow,
        ("numpy", "record"): _RecordType,
        ("numpy", "recarray"): _RecarrayType,
        ("numpy.rec", "recarray"): _RecarrayType,
        ("numpy.rec", "record"): _RecordType,
        ("numpy", "chararray"): _ChararrayType,
        ("numpy.char", "chararray"): _ChararrayType,
        ("astropy.utils.compat.numpycompat", "chararray"): _ChararrayType,
        ("astropy.io.fits.fitsrec", "FITS_rec"): _FitsRecType,
        ("astropy.io.fits.column", "ColDefs"): _ColDefsType,
        ("astropy.io.fits.column", "_AsciiColDefs"): _AsciiColDefsType,
        ("astropy.io.fits.column", "Column"): _ColumnType,
        ("astropy.io.fits.column", "_ColumnFormat"): _FormatType,
        ("astropy.io.fits.column", "_AsciiColumnFormat"): _FormatType,
        ("astropy.io.fits.column", "_FormatP"): _FormatType,
        ("astropy.io.fits.column", "_FormatQ"): _FormatType,
        ("astropy.io.fits.column", "_FormatX"): _FormatType,
        ("astropy.io.fits.column", "_VLF"): _VLFType,
    })
    return types.MappingProxyType(table)


_GLOBALS = _globals_table()

#: The globals a pickle may name, as ``"module.name"`` strings; every other one is refused.
ALLOWED_GLOBALS = frozenset(f"{module}.{name}" for module, name in _GLOBALS)


class _ShadowUnpickler(pickle.Unpickler):
    """Unpickler whose globals are the inert stand-ins of `_GLOBALS`."""

    def find_class(self, module, name):
        try:
            return _GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise ProtocolError(
                f"refused to unpickle the global {_short(f'{module}.{name}', 120)}: "
                "not on the allow-list of numpy/astropy data classes") from None

    def persistent_load(self, pid):
        raise ProtocolError("refused to unpickle a persistent id")


@contextlib.contextmanager
def _undecodable_pickle():
    """Turn any failure inside the block into a short `ProtocolError`."""
    try:
        yield
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("undecodable pickle: nested too deeply") from None
    except Exception as exc:
        raise ProtocolError(f"undecodable pickle: {type(exc).__name__}: {_short(str(exc))}") from None


def _load_shadow(data):
    """Unpickle ``data`` into a graph of plain Python values and stand-ins."""
    with _undecodable_pickle():
        # Python 2 pickles of numpy arrays need latin1 (numpy's own advice).
        return _ShadowUnpickler(io.BytesIO(data), fix_imports=False, encoding="latin1").load()


_BUSY = object()
_TYPE_CODE_RE = re.compile(r"[A-Za-z?]\d{0,9}\Z")
_DATETIME_UNITS = frozenset(["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
                             "generic"])
_MAX_DIM = 2 ** 48


class _Builder:
    """Turns a stand-in graph into numpy/astropy objects with validated, public calls."""

    def __init__(self):
        self._memo = {}

    def build(self, obj):
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return obj
        key = id(obj)
        if key in self._memo:
            done = self._memo[key]
            if done is _BUSY:
                raise ProtocolError("pickle contains a reference cycle")
            return done
        self._memo[key] = _BUSY
        result = self._build(obj)
        self._memo[key] = result
        return result

    def _build(self, obj):
        kind = type(obj)
        if kind is list:
            return [self.build(item) for item in obj]
        if kind is tuple:
            return tuple(self.build(item) for item in obj)
        if kind is dict:
            return {self.build(k): self.build(v) for k, v in obj.items()}
        if kind in (set, frozenset):
            return kind(self.build(item) for item in obj)
        if kind is bytearray:
            return obj
        if kind is _DtypeShadow:
            return self._dtype(obj)
        if kind is _ArrayShadow:
            return self.array(obj)
        if kind is _FromBufferShadow:
            return self.frombuffer(obj)
        if kind is _ScalarShadow:
            return self.scalar(obj)
        name = getattr(obj, "__name__", None) or type(obj).__name__
        raise ProtocolError(f"unsupported object in pickle ({name.strip('_')} cannot stand alone)")

    # -- dtypes -----------------------------------------------------------------------------------

    def dtype(self, shadow):
        if type(shadow) is not _DtypeShadow:
            raise ProtocolError(f"pickle gives {type(shadow).__name__} where a dtype is expected")
        return self.build(shadow)

    def _dtype(self, shadow):
        args = shadow.args
        if not 1 <= len(args) <= 3:
            raise ProtocolError("malformed dtype in pickle")
        code = args[0]
        is_record = code is _RecordType
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not is_record and not (isinstance(code, str) and _TYPE_CODE_RE.match(code)):
            raise ProtocolError(f"unsupported dtype {_short(code, 40)} in pickle")
        state = shadow.state
        if state is _NO_STATE:
            return np.dtype(np.record) if is_record else np.dtype(code)
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise ProtocolError("unsupported dtype state in pickle")
        byteorder, subarray, names, fields, elsize = state[1:6]
        flags = state[7]
        if names is not None:
            dtype = self._structured(names, fields, elsize, flags)
            if is_record:
                dtype = np.dtype((np.record, dtype))
        elif subarray is not None:
            if not (isinstance(subarray, tuple) and len(subarray) == 2):
                raise ProtocolError("malformed sub-array dtype in pickle")
            shape = subarray[1] if isinstance(subarray[1], tuple) else (subarray[1],)
            dtype = np.dtype((self.dtype(subarray[0]), _shape(shape)))
        else:
            if is_record:
                raise ProtocolError("record dtype without fields in pickle")
            dtype = np.dtype(code)
            if dtype.kind in "mM" and len(state) == 9:
                dtype = _datetime_dtype(dtype, state[8])
            if byteorder in ("<", ">") and dtype.byteorder != "|":
                dtype = dtype.newbyteorder(byteorder)
        if isinstance(elsize, int) and elsize >= 0 and dtype.itemsize != elsize:
            raise ProtocolError("dtype size in pickle does not match its description")
        return dtype

    def _structured(self, names, fields, elsize, flags):
        if not (isinstance(names, tuple) and isinstance(fields, dict)
                and all(isinstance(n, str) for n in names)):
            raise ProtocolError("malformed structured dtype in pickle")
        formats, offsets, titles = [], [], []
        for name in names:
            entry = fields.get(name)
            if not (isinstance(entry, tuple) and len(entry) in (2, 3)
                    and isinstance(entry[1], int) and not isinstance(entry[1], bool)):
                raise ProtocolError("malformed structured dtype in pickle")
            formats.append(self.dtype(entry[0]))
            offsets.append(entry[1])
            titles.append(entry[2] if len(entry) == 3 else None)
        spec = {"names": list(names), "formats": formats, "offsets": offsets}
        if isinstance(elsize, int) and elsize >= 0:
            spec["itemsize"] = elsize
        if any(title is not None for title in titles):
            spec["titles"] = titles
        # numpy's constructor checks offsets, sizes and overlapping object fields.
        return np.dtype(spec, align=bool(isinstance(flags, int) and flags & 0x80))

    # -- arrays -----------------------------------------------------------------------------------

    def array(self, shadow):
        args = shadow.args
        if len(args) != 3 or args[0] not in _ARRAY_TYPES:
            raise ProtocolError("unsupported array reconstruction in pickle")
        subtype = args[0]
        state = shadow.state
        if subtype is _FitsRecType:
            return self.fits_rec(state)
        if not isinstance(state, tuple):
            raise ProtocolError("array without data in pickle")
        array = self._from_state(state)
        if subtype is _RecarrayType:
            return array.view(np.recarray)
        return array

    def _from_state(self, state):
        if len(state) == 5:
            state = state[1:]
        if len(state) != 4:
            raise ProtocolError("malformed array state in pickle")
        shape, dtype, fortran, raw = state
        return self._make_array(raw, self.dtype(dtype), _shape(shape), bool(fortran))

    def frombuffer(self, shadow):
        args = shadow.args
        if len(args) != 4 or args[3] not in ("C", "F", "A", "K"):
            raise ProtocolError("malformed protocol-5 array in pickle")
        buffer, dtype, shape, order = args
        return self._make_array(buffer, self.dtype(dtype), _shape(shape), order == "F")

    def _make_array(self, raw, dtype, shape, fortran):
        count = math.prod(shape)
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not isinstance(raw, list) or len(raw) != count:
                raise ProtocolError("object array of the wrong length in pickle")
            items = [self.build(item) for item in raw]
            if dtype.fields is None and dtype.subdtype is None:
                flat = np.fromiter(items, dtype=dtype, count=count)
            else:
                flat = np.empty(count, dtype=dtype)
                for index, item in enumerate(items):
                    flat[index] = item
            return flat.reshape(shape, order=order)
        if isinstance(raw, str):  # Python 2 pickles
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise ProtocolError("array data of an unexpected type in pickle")
        if len(raw) != count * dtype.itemsize:
            raise ProtocolError("array data size in pickle does not match its shape and dtype")
        if count == 0 or dtype.itemsize == 0:
            return np.zeros(shape, dtype=dtype, order=order)
        if isinstance(raw, bytearray):
            return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order=order)
        if not dtype.isnative:
            # numpy's own path would swap to native order: keep the dtype as sent.
            return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order=order).copy(order)
        # numpy adopts a large aligned bytes buffer without copying it and keeps the
        # array writeable; all arguments are validated above.
        array = np.empty(0, dtype=np.uint8)
        array.__setstate__((1, shape, dtype, fortran, raw))
        return array

    def scalar(self, shadow):
        if len(shadow.args) != 2:
            raise ProtocolError("malformed numpy scalar in pickle")
        dtype = self.dtype(shadow.args[0])
        raw = shadow.args[1]
        if dtype.hasobject:
            return self.build(raw)
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != dtype.itemsize:
            raise ProtocolError("malformed numpy scalar in pickle")
        if dtype.itemsize == 0:
            return np.zeros((), dtype=dtype)[()]
        return np.frombuffer(raw, dtype=dtype, count=1)[0]

    # -- FITS tables ------------------------------------------------------------------------------

    def fits_rec(self, state):
        if not (isinstance(state, tuple) and len(state) in (6, 7)):
            raise ProtocolError("malformed FITS_rec in pickle")
        column_state, names = state[-2], state[-1]
        if not (isinstance(names, list) and isinstance(column_state, list)
                and len(names) == len(column_state) and all(isinstance(n, str) for n in names)):
            raise ProtocolError("malformed FITS_rec in pickle")
        extra = dict(zip(names, column_state))
        array_state = state[:-2]
        if len(array_state) == 5:
            array_state = array_state[1:]
        shape, dtype, _, raw = array_state
        shape = _shape(shape)
        dtype = self.dtype(dtype)
        if len(shape) != 1 or dtype.fields is None:
            raise ProtocolError("FITS_rec in pickle is not a one-dimensional table")
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != shape[0] * dtype.itemsize:
            raise ProtocolError("FITS_rec data size in pickle does not match its columns")
        # A read-only view: the rows are copied once, into the FITS buffer.
        rows = np.frombuffer(raw, dtype=dtype, count=shape[0]) if shape[0] else np.zeros(0, dtype)
        # Tables built in memory keep their raw columns in native byte order.
        big_endian = dtype.newbyteorder(">")
        if big_endian != dtype:
            rows = rows.astype(big_endian)
        coldefs = extra.get("_coldefs")
        if not isinstance(coldefs, _ColDefsType) or not isinstance(coldefs.state, dict):
            raise ProtocolError("FITS_rec in pickle has no column definitions")
        columns = coldefs.state.get("columns")
        if not isinstance(columns, (list, tuple)) or not columns:
            raise ProtocolError("FITS_rec in pickle has no column definitions")
        specs = [self._column_spec(column) for column in columns]
        physical = [spec["name"] for spec, column in zip(specs, columns)
                    if column.state.get("_physical_values") is True
                    and ("bscale" in spec or "bzero" in spec)]
        converted = extra.get("_converted") or {}
        if not isinstance(converted, dict):
            raise ProtocolError("malformed FITS_rec in pickle")
        uint = extra.get("_uint", True)
        return _table_from_raw(rows, specs,
                               ascii=isinstance(coldefs, _AsciiColDefsType),
                               uint=uint if isinstance(uint, bool) else True,
                               converted=converted, physical=physical, builder=self)

    def _column_spec(self, column):
        if not isinstance(column, _ColumnType) or not isinstance(column.state, dict):
            raise ProtocolError("malformed FITS column definition in pickle")
        state = column.state
        spec = {}
        for attribute, (_, kinds) in _COLUMN_KEYWORDS.items():
            value = state.get(f"_{attribute}", state.get(attribute))
            if attribute == "format" and isinstance(value, _FormatType):
                value = value.args[0] if value.args else None
            value = self.build(value) if value is not None else None
            if isinstance(value, np.generic):
                value = value.item()
            if value is None:
                continue
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise ProtocolError(f"malformed FITS column {attribute} in pickle")
            spec[attribute] = value
        if "name" not in spec or "format" not in spec:
            raise ProtocolError("FITS column without name or format in pickle")
        return spec


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


def _shape(shape):
    if isinstance(shape, list):
        shape = tuple(shape)
    if not isinstance(shape, tuple) or len(shape) > 32:
        raise ProtocolError("malformed array shape in pickle")
    for dim in shape:
        if not isinstance(dim, int) or isinstance(dim, bool) or not 0 <= dim < _MAX_DIM:
            raise ProtocolError("malformed array shape in pickle")
    if math.prod(shape) >= _MAX_DIM:
        raise ProtocolError("array in pickle is too large")
    return shape


def _datetime_dtype(dtype, metadata):
    try:
        unit, count = metadata[1][0], metadata[1][1]
    except (TypeError, IndexError, KeyError):
        raise ProtocolError("malformed datetime dtype in pickle") from None
    if isinstance(unit, bytes):
        unit = unit.decode("latin1")
    if unit not in _DATETIME_UNITS or not isinstance(count, int) or not 0 < count < 2 ** 31:
        raise ProtocolError("malformed datetime dtype in pickle")
    text = f"{dtype.char}8" if unit == "generic" else f"{dtype.char}8[{count}{unit}]"
    return np.dtype(text)


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


def safe_loads(data):
    """Unpickle numpy arrays and FITS tables without running code from ``data``.

    Only the globals in `ALLOWED_GLOBALS` (numpy's array, dtype and scalar
    reconstruction, record/char arrays and astropy's FITS table classes, under
    both the numpy 1.x ``numpy.core`` and numpy 2.x ``numpy._core`` names) may
    be named.  They are not called: the unpickler builds inert stand-ins, and
    the result is then assembled from validated pieces with public numpy and
    astropy constructors.  Hence a pickle can neither call anything else nor
    corrupt memory with inconsistent numpy states.

    Parameters
    ----------
    data : bytes-like
        The pickle.

    Returns
    -------
    object
        `numpy.ndarray` (record arrays stay `numpy.recarray`; char arrays and
        astropy's variable-length arrays become plain arrays), numpy scalar,
        `~astropy.io.fits.FITS_rec`, or lists, tuples, dicts of those and of
        plain Python values.

    Raises
    ------
    ProtocolError
        For anything else, naming a refused global.

    Examples
    --------
    >>> import pickle
    >>> import numpy as np
    >>> safe_loads(pickle.dumps(np.arange(3.0)))
    array([0., 1., 2.])
    >>> safe_loads(pickle.dumps(print))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ProtocolError: refused to unpickle the global builtins.print: ...
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"a pickle must be bytes, not {type(data).__name__}")
    return _materialize(_load_shadow(data))


def _materialize(shadow):
    with _undecodable_pickle():
        return _Builder().build(shadow)


# ---------------------------------------------------------------------------
# base64, JSON, binaries


_URLSAFE = bytes.maketrans(b"-_", b"+/")

if sys.version_info >= (3, 11):
    def _strict_b64(text):
        return binascii.a2b_base64(text, strict_mode=True)
else:  # pragma: no cover
    def _strict_b64(text):
        import base64
        return base64.b64decode(text, validate=True)


def _b64decode(text, *, urlsafe, what):
    """Decode strict (standard or URL-safe) base64; ``what`` names the field in errors."""
    if not isinstance(text, (str, bytes)):
        raise ProtocolError(f"{what} is {type(text).__name__}, not a base64 string")
    try:
        if urlsafe:
            if isinstance(text, str):
                text = text.encode("ascii")
            text = text.translate(_URLSAFE)
        return _strict_b64(text)
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        kind = "URL-safe base64" if urlsafe else "base64"
        raise ProtocolError(f"{what} is not valid {kind}") from None


def _as_dict(value):
    """``value`` if a dict, the dict a JSON string encodes, else None."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _json_meta(value, ctx, what):
    """A meta-data dictionary from a dict or a JSON string (Python reprs are never evaluated)."""
    if value is None or value == "":
        return {}
    decoded = _as_dict(value)
    if decoded is not None:
        return decoded
    if isinstance(value, str) and not ctx.warned_meta:
        ctx.warned_meta = True
        warnings.warn(f"{what}: meta-data is not a JSON object; kept as {{'raw': <text>}}",
                      AstropyUserWarning, stacklevel=4)
    return {"raw": value}


def _json_object(value, what):
    """A dict from a dict or a JSON string of one."""
    decoded = _as_dict(value)
    if decoded is not None:
        return decoded
    if isinstance(value, str):
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            raise ProtocolError(f"{what} is neither an object nor JSON") from None
    raise ProtocolError(f"{what} is not an object but {type(value).__name__}")


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"SIMPLE  =", "fits"),
    (b"%PDF-", "pdf"),
    (b"root", "root"),
    (b"\x89HDF\r\n\x1a\n", "h5"),
    (b"\x1f\x8b", "gz"),
    (b"PK\x03\x04", "zip"),
    (b"# %ECSV", "ecsv"),
)
_IMAGE_TYPES = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "svg": ".svg", "webp": ".webp",
                "tiff": ".tiff", "bmp": ".bmp"}
_IMAGE_ALIASES = {"jpg": "jpeg", "svg+xml": "svg", "tif": "tiff"}
_SVG_RE = re.compile(rb"\A(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]",
                     re.DOTALL | re.IGNORECASE)


def _sniff(data):
    """The type of ``data`` from its first bytes: 'png', 'fits', ... or None."""
    head = bytes(data[:2048])
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) > 26 and int.from_bytes(head[2:6], "little") == len(data):
        return "bmp"
    if _SVG_RE.match(head):
        return "svg"
    return None


class NamedBytes(bytes):
    """Bytes of a binary product, with the product's name and a file suffix.

    Attributes
    ----------
    name : str or None
        The name the dispatcher gave the product.
    suggested_suffix : str
        ``'.png'``, ``'.fits'``, ... from the content (or the name), ``'.bin'``
        when unknown.

    Examples
    --------
    >>> b = NamedBytes(b"\\x89PNG\\r\\n\\x1a\\n...", name="plot")
    >>> b.suggested_suffix, b.name, len(b)
    ('.png', 'plot', 11)
    """

    def __new__(cls, data, name=None, suggested_suffix=None):
        self = super().__new__(cls, data)
        self.name = name
        if suggested_suffix is None:
            suggested_suffix = _suffix_for(self, name)
        self.suggested_suffix = suggested_suffix
        return self

    def __repr__(self):
        return (f"NamedBytes(name={self.name!r}, {len(self)} bytes, "
                f"suggested_suffix={self.suggested_suffix!r})")

    def __reduce__(self):
        return (NamedBytes, (bytes(self), self.name, self.suggested_suffix))


def _suffix_for(data, name):
    kind = _sniff(data)
    if kind is not None:
        return _IMAGE_TYPES.get(kind, f".{kind}")
    if isinstance(name, str):
        match = re.search(r"\.([A-Za-z0-9]{1,5})\Z", name)
        if match:
            return f".{match.group(1).lower()}"
    return ".bin"


# ---------------------------------------------------------------------------
# product kinds


_STRUCTURAL = frozenset(["SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
                         "TFIELDS", "THEAP", "GROUPS", "CHECKSUM", "DATASUM", "ZHECKSUM", "ZDATASUM"])
_NAXIS_RE = re.compile(r"NAXIS\d+\Z")
_KEYWORD_RE = re.compile(r"[A-Z0-9_-]{1,8}\Z")
_HDU_CLASSES = {"primary": fits.PrimaryHDU, "image": fits.ImageHDU, "bintable": fits.BinTableHDU,
                "table": fits.TableHDU}


def _header_from_dict(header, what):
    """A FITS header from the dispatcher's flat card dictionary, without structural cards."""
    result = fits.Header()
    if header is None:
        return result, []
    if not isinstance(header, dict):
        raise ProtocolError(f"{what}: header is not an object")
    dropped = []
    for key, value in header.items():
        keyword = key.strip().upper() if isinstance(key, str) else ""
        if not keyword or keyword in _STRUCTURAL or _NAXIS_RE.match(keyword):
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        try:
            if keyword in ("COMMENT", "HISTORY"):
                card = fits.Card(keyword, "" if value is None else str(value))
            elif _KEYWORD_RE.match(keyword):
                card = fits.Card(keyword, value)
            else:
                card = fits.Card(f"HIERARCH {key.strip()}", value)
            card.verify("exception")
            result.append(card, end=True)
        except Exception:
            dropped.append(key)
    return result, dropped


def _decode_data_unit(unit, index, what):
    where = f"{what}, data unit {index}"
    if not isinstance(unit, dict):
        raise ProtocolError(f"{where} is not an object")
    hdu_type = unit.get("hdu_type")
    if hdu_type is not None and hdu_type not in _HDU_CLASSES:
        raise ProtocolError(f"{where} has the unknown hdu_type {_short(hdu_type, 40)}")
    binarys = unit.get("binarys")
    data = None
    if binarys is not None:
        # The decoded pickle is freed as soon as it is unpickled.
        data = _materialize(_load_shadow(_b64decode(binarys, urlsafe=False, what=f"{where}: binarys")))
        if not isinstance(data, np.ndarray):
            raise ProtocolError(f"{where}: pickled data is {type(data).__name__}, not an array")
    elif unit.get("data") is not None:
        raise ProtocolError(f"{where}: the non-pickle data encoding is not supported")
    tabular = isinstance(data, np.ndarray) and data.dtype.names is not None
    if hdu_type is None:
        hdu_type = ("primary" if index == 0 else "image") if not tabular else "bintable"
    if tabular != (hdu_type in ("bintable", "table")) and data is not None:
        raise ProtocolError(f"{where}: {hdu_type} unit with {'table' if tabular else 'image'} data")
    if hdu_type in ("bintable", "table") and data is not None:
        if data.ndim != 1:
            raise ProtocolError(f"{where}: table data is not one-dimensional")
        if hdu_type == "table" and not isinstance(data, fits.FITS_rec):
            data = fits.TableHDU.from_columns(data).data
    header, dropped = _header_from_dict(unit.get("header"), where)
    column_cards = header.copy()
    if dropped:
        warnings.warn(f"{where}: dropped header cards that are not valid FITS: "
                      f"{_short(', '.join(map(str, dropped)), 120)}", AstropyUserWarning, stacklevel=4)
    hdu = _HDU_CLASSES[hdu_type](data=data, header=header)
    name = unit.get("name")
    # The unit's name is the extension name the server means: it renames OSA's
    # ISGR-ARF.-RSP, ISGR-RMF.-RSP and ISGR-EBDS-MOD to the SPECRESP,
    # SPECRESP MATRIX and EBOUNDS that XSPEC looks for.
    if hdu_type != "primary" and isinstance(name, str) and name.strip():
        hdu.name = name.strip()
    if hdu_type in ("bintable", "table") and data is not None:
        if not isinstance(data, fits.FITS_rec):
            # astropy drops the column keywords of the header for plain arrays:
            # keep the units of the columns the header describes.
            for number, column in enumerate(hdu.columns, 1):
                unit_text = column_cards.get(f"TUNIT{number}")
                if (column.unit is None and isinstance(unit_text, str)
                        and column_cards.get(f"TTYPE{number}") == column.name):
                    hdu.columns.change_unit(column.name, unit_text)
        units = unit.get("units_dict")
        if units is not None:
            if not isinstance(units, dict):
                raise ProtocolError(f"{where}: units_dict is not an object")
            unknown = [key for key in units if key not in hdu.columns.names]
            if unknown:
                warnings.warn(f"{where}: units_dict names unknown columns {_short(unknown, 120)}",
                              AstropyUserWarning, stacklevel=4)
            for key, value in units.items():
                if key in hdu.columns.names and value is not None:
                    hdu.columns.change_unit(key, str(value))
    return hdu


def _decode_numpy_product(product, ctx, what):
    product = _json_object(product, what)
    units = product.get("data_unit_list")
    if not isinstance(units, list):
        raise ProtocolError(f"{what} has no data_unit_list")
    meta = _json_meta(product.get("meta_data"), ctx, what)
    hdus = fits.HDUList([_decode_data_unit(unit, index, what) for index, unit in enumerate(units)])
    return hdus, meta, _clean_name(product.get("name"))


def catalog_from_dict(catalog):
    """The dispatcher's catalog dictionary as an `~astropy.table.Table`.

    Columns keep the server's names, order and ``cat_column_descr`` dtypes; the
    longitude/latitude columns (``cat_lon_name``/``cat_lat_name``, usually
    ``ra``/``dec``) are floats with the unit ``cat_coord_units``.  Nulls become
    NaN in float columns and are masked in others.  ``table.meta`` holds
    ``cat_meta`` and ``FRAME``, ``COORD_UNIT``, ``LON_NAME``, ``LAT_NAME``.

    Parameters
    ----------
    catalog : dict
        ``products['catalog']`` of a dispatcher answer.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    ProtocolError
        When the dictionary is malformed.

    Examples
    --------
    >>> t = catalog_from_dict({"cat_frame": "fk5", "cat_coord_units": "deg",
    ...     "cat_lon_name": "ra", "cat_lat_name": "dec",
    ...     "cat_column_names": ["meta_ID", "src_names", "significance", "ra", "dec"],
    ...     "cat_column_list": [[0], ["Crab"], [None], [83.63], [22.01]],
    ...     "cat_column_descr": [["meta_ID", "<i8"], ["src_names", "<U4"],
    ...                          ["significance", "<f8"], ["ra", "<f8"], ["dec", "<f8"]]})
    >>> t["ra"].unit, bool(np.isnan(t["significance"][0])), t.meta["FRAME"]
    (Unit("deg"), True, 'fk5')
    """
    try:
        return _catalog_from_dict(catalog)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"catalog: malformed ({type(exc).__name__}: {_short(str(exc))})") from None


_DESCR_RE = re.compile(r"[<>|=]?[A-Za-z?]\d{0,9}\Z")


def _catalog_from_dict(catalog):
    if not isinstance(catalog, dict):
        raise ProtocolError("catalog is not an object")
    names = catalog.get("cat_column_names")
    values = catalog.get("cat_column_list")
    if not (isinstance(names, list) and isinstance(values, list) and len(names) == len(values)
            and all(isinstance(n, str) for n in names) and all(isinstance(v, list) for v in values)):
        raise ProtocolError("catalog: cat_column_names and cat_column_list do not match")
    if len({len(v) for v in values}) > 1:
        raise ProtocolError("catalog: columns of different lengths")
    descr = catalog.get("cat_column_descr")
    dtypes = [None] * len(names)
    if isinstance(descr, list) and len(descr) == len(names):
        for index, entry in enumerate(descr):
            if (isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[0] == names[index]
                    and isinstance(entry[1], str) and _DESCR_RE.match(entry[1])):
                dtypes[index] = np.dtype(entry[1])
    meta = {}
    if isinstance(catalog.get("cat_meta"), dict):
        meta.update(catalog["cat_meta"])
    lon, lat = catalog.get("cat_lon_name"), catalog.get("cat_lat_name")
    coord_unit = catalog.get("cat_coord_units")
    meta.update(FRAME=catalog.get("cat_frame"), COORD_UNIT=coord_unit, LON_NAME=lon, LAT_NAME=lat)
    unit = None
    if isinstance(coord_unit, str):
        try:
            unit = u.Unit(coord_unit)
        except ValueError:
            unit = None
    columns = []
    for name, column_values, dtype in zip(names, values, dtypes):
        is_coordinate = name in (lon, lat)
        if is_coordinate and (dtype is None or dtype.kind != "f"):
            dtype = np.dtype(float)
        column = _column_from_values(name, column_values, dtype)
        if is_coordinate and unit is not None:
            column.unit = unit
        columns.append(column)
    return Table(columns, meta=meta, copy=False)


def _column_from_values(name, values, dtype):
    nulls = [value is None for value in values]
    if not any(nulls):
        return Column(np.array(values, dtype=dtype), name=name, copy=False)
    if dtype is None:
        present = [value for value in values if value is not None]
        dtype = np.array(present).dtype if present else np.dtype(float)
    if dtype.kind == "f":
        return Column(np.array(values, dtype=dtype), name=name, copy=False)
    fill = np.zeros((), dtype=dtype).item() if dtype.kind != "O" else None
    filled = [fill if null else value for value, null in zip(values, nulls)]
    return MaskedColumn(np.array(filled, dtype=dtype), mask=nulls, name=name, copy=False)


_REQUIRED_CATALOG_COLUMNS = ("meta_ID", "src_names", "significance")


def catalog_to_selected_catalog(table):
    """The ``selected_catalog`` string the dispatcher expects, from a catalog table.

    The inverse of `catalog_from_dict` (and of the ``catalog`` item of a
    `ProductSet`): ``catalog_to_selected_catalog(catalog_from_dict(d))``
    reproduces ``d`` (without ``cat_meta``).  Tables filtered with astropy
    (masked or Quantity columns) are fine; masked values and NaN are sent as
    ``null``.  Without ``table.meta``, the frame is ``fk5``, the coordinates
    are the columns ``ra``/``dec`` and their unit is ``deg``.

    Parameters
    ----------
    table : astropy.table.Table
        Needs the columns ``meta_ID``, ``src_names``, ``significance`` and the
        longitude/latitude columns.

    Returns
    -------
    str
        JSON with ``cat_frame``, ``cat_coord_units``, ``cat_column_list``
        (column-major), ``cat_column_names``, ``cat_column_descr``,
        ``cat_lat_name`` and ``cat_lon_name``.

    Raises
    ------
    astroquery.exceptions.InvalidQueryError
        When a required column is missing or a column cannot be sent.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"meta_ID": [0], "src_names": ["Crab"], "significance": [20.0],
    ...            "ra": [83.63], "dec": [22.01]})
    >>> catalog_to_selected_catalog(t)[:60]
    '{"cat_frame": "fk5", "cat_coord_units": "deg", "cat_column_l'
    """
    if not isinstance(table, Table):
        raise InvalidQueryError(f"a catalog must be an astropy Table, not {type(table).__name__}")
    meta = table.meta or {}
    lon = meta.get("LON_NAME") or "ra"
    lat = meta.get("LAT_NAME") or "dec"
    frame = meta.get("FRAME") or "fk5"
    coord_unit = meta.get("COORD_UNIT") or "deg"
    missing = [name for name in (*_REQUIRED_CATALOG_COLUMNS, lon, lat) if name not in table.colnames]
    if missing:
        raise InvalidQueryError(
            f"the catalog lacks the column(s) {', '.join(missing)}; the dispatcher needs "
            f"meta_ID, src_names, significance and the coordinates ({lon}, {lat})")
    column_list, descr = [], []
    for name in table.colnames:
        try:
            values, mask = _plain_column(table[name], coord_unit if name in (lon, lat) else None)
        except Exception as exc:
            raise InvalidQueryError(f"the catalog column {name!r} cannot be sent: {exc}") from None
        items = values.tolist()
        if values.ndim == 1:
            items = [None if null or _is_nan(item) else _jsonable(item)
                     for item, null in zip(items, mask)]
        else:
            items = [None if null else _nested(item) for item, null in zip(items, mask)]
        column_list.append(items)
        entry = [name, values.dtype.str]
        if values.ndim > 1:
            entry.append(list(values.shape[1:]))
        descr.append(entry)
    return json.dumps({"cat_frame": frame, "cat_coord_units": coord_unit,
                       "cat_column_list": column_list, "cat_column_names": list(table.colnames),
                       "cat_column_descr": descr, "cat_lat_name": lat, "cat_lon_name": lon})


def _plain_column(column, coord_unit):
    mask = np.ma.getmaskarray(column)
    if mask.ndim > 1:
        mask = mask.reshape(len(mask), -1).all(axis=1)
    unit = getattr(column, "unit", None)
    if isinstance(column, u.Quantity):
        values = column.to_value(coord_unit) if coord_unit and unit is not None else column.value
    elif coord_unit and unit is not None:
        values = u.Quantity(np.ma.getdata(column), unit).to_value(coord_unit)
    else:
        values = np.ma.getdata(column)
    values = np.asarray(values)
    if values.dtype.kind == "O" or values.dtype.names is not None:
        raise ValueError(f"unsupported dtype {values.dtype}")
    return values, mask


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def _jsonable(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _nested(value):
    if isinstance(value, list):
        return [_nested(item) for item in value]
    return None if _is_nan(value) else _jsonable(value)


def _decode_table_product(item, ctx, what):
    item = _json_object(item, what)
    meta = _json_meta(item.get("meta_data"), ctx, what)
    text = item.get("ascii")
    if isinstance(text, str):
        from astropy.io import ascii as astropy_ascii
        try:
            # A list of lines, so that the text is never taken for a file name.
            table = astropy_ascii.read(text.splitlines(), format="ecsv")
        except Exception as exc:
            raise ProtocolError(f"{what}: not an ECSV table ({type(exc).__name__}: "
                                f"{_short(str(exc))})") from None
    elif item.get("binary") is not None:
        raise ProtocolError(
            f"{what}: pickled astropy tables ('binary') are unsupported: unpickling a Table "
            "would require allowing astropy's unit and mixin machinery")
    else:
        raise ProtocolError(f"{what} has neither 'ascii' nor 'binary' content")
    return table, meta, _clean_name(item.get("name"))


def _decode_binary_product(item, ctx, what):
    if isinstance(item, str):
        try:
            decoded = json.loads(item)
        except (ValueError, RecursionError):
            decoded = None
        if not (isinstance(decoded, dict) and "data" in decoded):
            data = _b64decode(item, urlsafe=True, what=f"{what} (legacy binary)")
            return NamedBytes(data), {}, None
        item = decoded
    if not isinstance(item, dict):
        raise ProtocolError(f"{what} is {type(item).__name__}, neither an object nor a string")
    data = _b64decode(item.get("data"), urlsafe=True, what=f"{what}: data")
    md5 = item.get("md5")
    if md5 is not None:
        actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if not isinstance(md5, str) or md5.strip().lower() != actual:
            raise ProtocolError(f"{what}: md5 mismatch (expected {_short(md5, 40)}, got {actual})")
    name = _clean_name(item.get("name"))
    return NamedBytes(data, name=name), ({"md5": md5} if md5 is not None else {}), name


def _decode_picture(item, ctx, what):
    item = _json_object(item, what)
    data = _b64decode(item.get("b64data"), urlsafe=True, what=f"{what}: b64data")
    kind = _sniff(data)
    if kind not in _IMAGE_TYPES:
        raise ProtocolError(f"{what}: data is not an image (PNG, JPEG, GIF, SVG, ...)")
    declared = item.get("img_type")
    if isinstance(declared, str) and declared.strip():
        declared = declared.strip().lower().lstrip(".")
        declared = _IMAGE_ALIASES.get(declared, declared)
        if declared != kind:
            raise ProtocolError(f"{what}: img_type {_short(declared, 20)!r} but the data is {kind}")
    meta = _json_meta(item.get("metadata"), ctx, what)
    filename = item.get("filename")
    name = _clean_name(item.get("name"))
    if name is None and isinstance(filename, str) and filename.strip():
        name = Path(filename.strip()).stem or None
    return NamedBytes(data, name=name or filename, suggested_suffix=_IMAGE_TYPES[kind]), meta, name


def _decode_text(item, ctx, what):
    item = _json_object(item, what)
    if "value" not in item:
        raise ProtocolError(f"{what} has no value")
    meta = _json_meta(item.get("meta_data"), ctx, what)
    return item["value"], meta, _clean_name(item.get("name"))


def _clean_name(name):
    if not isinstance(name, str):
        return None
    name = re.sub(r"\s+", "_", name.strip())
    return None if name in ("", "None") else name


# ---------------------------------------------------------------------------
# the product set


class _Item:
    __slots__ = ("base", "kind", "value", "meta", "name")

    def __init__(self, base, kind, value, meta):
        self.base, self.kind, self.value, self.meta = base, kind, value, meta
        self.name = None


class ProductSet(Mapping):
    """The decoded products of one dispatcher answer: an ordered, read-only mapping.

    Values are `~astropy.io.fits.HDUList` (kind ``'fits'``),
    `~astropy.table.Table` (``'catalog'``, ``'table'``), `NamedBytes`
    (``'binary'``, ``'image'``), text values (``'text'``: the value as sent,
    usually a `str`) and dictionaries (``'gw'``: gravitational-wave strain,
    spectrogram and contour products, kept as decoded JSON).

    **Names.** Each product is named by its own ``name`` (for pictures, the
    stem of ``filename`` when unnamed; else its ``product`` meta-data entry;
    else, for FITS-like products, the product asked for; else its kind),
    whitespace turned into ``_``, followed by ``_<src_name>`` when its
    meta-data have a non-empty ``src_name`` not already at the end.
    A name met again gets ``_2``, ``_3``, ... in the order of the answer (the
    order of the keys of :func:`decode_products`); the first keeps the bare
    name.  The source catalog is always ``'catalog'``.

    Attributes
    ----------
    meta : mapping
        Name -> meta-data `dict` of the product (decoded from JSON).
    kind : mapping
        Name -> kind (``'fits'``, ``'catalog'``, ``'table'``, ``'binary'``,
        ``'image'``, ``'text'`` or ``'gw'``).
    job_id : str or None
        The dispatcher's job.
    analysis_parameters : dict
        The parameters the dispatcher used, without tokens.

    Examples
    --------
    >>> ps = ProductSet([("lc_Crab", "text", "1.0", {"src_name": "Crab"})], job_id="abc")
    >>> list(ps), ps.kind["lc_Crab"], list(ps.select(src_name="Crab"))
    (['lc_Crab'], 'text', ['lc_Crab'])
    """

    def __init__(self, items=(), *, job_id=None, analysis_parameters=None):
        self._values, meta, kind = {}, {}, {}
        for name, item_kind, value, item_meta in items:
            if not isinstance(name, str) or name in self._values:
                raise ValueError(f"product names must be unique strings: {name!r}")
            self._values[name] = value
            kind[name] = item_kind
            meta[name] = item_meta if isinstance(item_meta, dict) else {}
        self.meta = types.MappingProxyType(meta)
        self.kind = types.MappingProxyType(kind)
        self.job_id = job_id if isinstance(job_id, str) else None
        self.analysis_parameters = dict(analysis_parameters or {})

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def select(self, **criteria):
        """The products whose meta-data have all the given values.

        A product without one of the keys does not match.

        Examples
        --------
        >>> ps = ProductSet([("a", "text", "x", {"src_name": "Crab"}), ("b", "text", "y", {})])
        >>> list(ps.select(src_name="Crab")), list(ps.select(src_name="Vela"))
        (['a'], [])
        """
        chosen = [(name, self.kind[name], value, self.meta[name])
                  for name, value in self._values.items() if _matches(self.meta[name], criteria)]
        return ProductSet(chosen, job_id=self.job_id, analysis_parameters=self.analysis_parameters)

    def write(self, directory, *, overwrite=False, prefix=""):
        """Write every product into ``directory`` (created if needed).

        FITS products go to ``.fits``, tables and the catalog to ``.ecsv``,
        binaries and pictures to their suggested suffix (``.bin`` when
        unknown), text to ``.txt`` (JSON for non-text values) and
        gravitational-wave products to ``.json``.  File names are ``prefix``
        plus the product name, reduced to letters, digits and ``._+-``.

        Parameters
        ----------
        directory : path-like
        overwrite : bool
            Replace existing files.  If False (default) and any target exists,
            nothing is written.
        prefix : str
            Prepended to every file name.

        Returns
        -------
        list of pathlib.Path
            The files written, in product order.

        Raises
        ------
        FileExistsError
            When ``overwrite`` is False and some files exist already.
        """
        directory = Path(directory)
        plan, taken = [], set()
        for name, value in self._values.items():
            stem = _safe_filename(f"{prefix}{name}")
            suffix = _file_suffix(self.kind[name], value)
            candidate, number = stem, 1
            while f"{candidate}{suffix}".lower() in taken:
                number += 1
                candidate = f"{stem}_{number}"
            taken.add(f"{candidate}{suffix}".lower())
            plan.append((directory / f"{candidate}{suffix}", self.kind[name], value))
        if not overwrite:
            existing = [str(path) for path, _, _ in plan if path.exists()]
            if existing:
                raise FileExistsError(
                    f"{len(existing)} file(s) exist already, nothing written (use overwrite=True): "
                    f"{_short(', '.join(existing), 300)}")
        directory.mkdir(parents=True, exist_ok=True)
        for path, kind, value in plan:
            _write_item(path, kind, value, overwrite)
        return [path for path, _, _ in plan]

    def __repr__(self):
        head = f"<ProductSet job_id={self.job_id!r}: {len(self)} product{'s' * (len(self) != 1)}>"
        if not self._values:
            return _redact(head)
        width = min(max(len(name) for name in self._values), 40)
        lines = [head]
        for name, value in self._values.items():
            source = self.meta[name].get("src_name")
            source = f" [src_name={_short(source, 30)}]" if isinstance(source, str) and source else ""
            lines.append(f"  {name:<{width}}  {self.kind[name]:<7}  "
                         f"{_summary(self.kind[name], value)}{source}")
        return _redact("\n".join(lines))


def _matches(meta, criteria):
    for key, wanted in criteria.items():
        if key not in meta:
            return False
        try:
            if not bool(meta[key] == wanted):
                return False
        except Exception:
            return False
    return True


def _summary(kind, value):
    try:
        if kind == "fits":
            names = [hdu.name or "?" for hdu in value]
            text = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            return f"HDUs: {text}"
        if kind in ("catalog", "table"):
            return f"{len(value)} rows x {len(value.colnames)} columns"
        if kind in ("binary", "image"):
            return f"{len(value)} bytes ({value.suggested_suffix})"
        if kind == "gw" and isinstance(value, dict):
            return f"keys: {_short(', '.join(map(str, value)), 50)}"
        return _short(value, 50)
    except Exception:
        return f"<{type(value).__name__}>"


def _safe_filename(text):
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._")
    return name[:180] or "product"


def _file_suffix(kind, value):
    if kind == "fits":
        return ".fits"
    if kind in ("catalog", "table"):
        return ".ecsv"
    if kind in ("binary", "image"):
        suffix = getattr(value, "suggested_suffix", None)
        return suffix if isinstance(suffix, str) and re.fullmatch(r"\.[A-Za-z0-9]{1,6}", suffix) else ".bin"
    if kind == "gw":
        return ".json"
    return ".txt"


def _write_item(path, kind, value, overwrite):
    if kind == "fits":
        value.writeto(path, overwrite=overwrite, output_verify="silentfix")
    elif kind in ("catalog", "table"):
        value.write(path, format="ascii.ecsv", overwrite=overwrite)
    else:
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            data = value.encode("utf-8")
        else:
            data = json.dumps(value, indent=1, default=str).encode("utf-8")
        with open(path, "wb" if overwrite else "xb") as handle:
            handle.write(data)


class _Context:
    def __init__(self, product=None):
        self.warned_meta = False
        self.product = product


def _default_base(kind, meta, requested=None):
    product = meta.get("product")
    if isinstance(product, str) and _clean_name(product):
        return _clean_name(product)
    if kind == "fits" and isinstance(requested, str) and _clean_name(requested):
        return _clean_name(requested)
    return {"fits": "numpy_data_product", "table": "table", "binary": "binary", "image": "image",
            "text": "text", "gw": "gw"}.get(kind, kind)


def _list_of(products, key):
    value = products.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ProtocolError(f"products[{key!r}] is not a list") from None
    if not isinstance(value, list):
        raise ProtocolError(f"products[{key!r}] is not a list")
    return value


def _collect(products, ctx):
    items = []

    def add(decoder, item, kind, what):
        try:
            value, meta, name = decoder(item, ctx, what)
        except ProtocolError:
            raise
        except RecursionError:
            raise ProtocolError(f"{what}: nested too deeply") from None
        except Exception as exc:
            raise ProtocolError(f"{what}: undecodable ({type(exc).__name__}: {_short(str(exc))})") from None
        items.append(_Item(name or _default_base(kind, meta, ctx.product), kind, value, meta))

    if products.get("numpy_data_product") is not None:
        add(_decode_numpy_product, products["numpy_data_product"], "fits", "numpy_data_product")
    for index, item in enumerate(_list_of(products, "numpy_data_product_list")):
        add(_decode_numpy_product, item, "fits", f"numpy_data_product_list[{index}]")
    for index, item in enumerate(_list_of(products, "binary_data_product_list")):
        add(_decode_binary_product, item, "binary", f"binary_data_product_list[{index}]")
    catalog = products.get("catalog")
    if catalog is not None and catalog != {}:
        table = catalog_from_dict(_json_object(catalog, "catalog"))
        items.append(_Item("catalog", "catalog", table, dict(table.meta)))
    for index, item in enumerate(_list_of(products, "astropy_table_product_ascii_list")):
        add(_decode_table_product, item, "table", f"astropy_table_product_ascii_list[{index}]")
    for index, item in enumerate(_list_of(products, "astropy_table_product_binary_list")):
        add(_decode_table_product, item, "table", f"astropy_table_product_binary_list[{index}]")
    for index, item in enumerate(_list_of(products, "binary_image_product_list")):
        add(_decode_picture, item, "image", f"binary_image_product_list[{index}]")
    for index, item in enumerate(_list_of(products, "text_product_list")):
        add(_decode_text, item, "text", f"text_product_list[{index}]")
    for index, item in enumerate(_list_of(products, "gw_strain_product_list")):
        item = _json_object(item, f"gw_strain_product_list[{index}]")
        items.append(_Item(_clean_name(item.get("name")) or "strain", "gw", item, {}))
    spectrogram = products.get("gw_spectrogram_product")
    if spectrogram is not None:
        items.append(_Item("spectrogram", "gw", _json_object(spectrogram, "gw_spectrogram_product"), {}))
    skymap = products.get("gw_skymap_product")
    if skymap is not None:
        skymap = _json_object(skymap, "gw_skymap_product")
        for event, product in _json_object(skymap.get("skymaps") or {}, "gw skymaps").items():
            add(_decode_numpy_product, product, "fits", f"gw_skymap_product skymap {_short(event, 40)}")
            item = items[-1]
            item.meta = dict(item.meta, event=event)
            if item.base == "numpy_data_product":
                item.base = f"skymap_{_clean_name(str(event))}"
        for event, contours in _json_object(skymap.get("contours") or {}, "gw contours").items():
            items.append(_Item(f"contours_{_clean_name(str(event))}", "gw", contours, {"event": event}))
    return items


def _assign_names(items):
    used = {"catalog"} if any(item.kind == "catalog" for item in items) else set()
    for item in items:
        if item.kind == "catalog":
            item.name = "catalog"
            continue
        base = item.base
        source = item.meta.get("src_name")
        source = _clean_name(source) if isinstance(source, str) else None
        if source and not base.endswith(source):
            base = f"{base}_{source}"
        name, number = base, 1
        while name in used:
            number += 1
            name = f"{base}_{number}"
        used.add(name)
        item.name = name


def decode_products(products, *, job_id=None, product=None):
    """Decode the ``products`` of a dispatcher answer into a `ProductSet`.

    Decoded keys, in this order: ``numpy_data_product`` and
    ``numpy_data_product_list`` (FITS-like products -> `~astropy.io.fits.HDUList`),
    ``binary_data_product_list`` (items with ``data``/``md5`` or legacy
    URL-safe base64 strings -> `NamedBytes`), ``catalog``
    (-> `~astropy.table.Table`, see `catalog_from_dict`),
    ``astropy_table_product_ascii_list`` (ECSV -> Table),
    ``astropy_table_product_binary_list`` (pickled tables: refused),
    ``binary_image_product_list`` (pictures -> `NamedBytes`, type checked),
    ``text_product_list`` and the gravitational-wave keys
    ``gw_strain_product_list``, ``gw_spectrogram_product`` (decoded JSON,
    kind ``'gw'``) and ``gw_skymap_product`` (one FITS product per event plus
    its contours as kind ``'gw'``).  Other keys (``api_code``,
    ``session_id``, ``prod_process_message``, ``progress_product_list``, ...)
    are ignored; ``analysis_parameters`` is kept without tokens.

    Parameters
    ----------
    products : dict
        ``answer['products']``.
    job_id : str, optional
        Defaults to ``products['job_id']``.
    product : str, optional
        The product asked for: the name of unnamed FITS-like products.

    Returns
    -------
    ProductSet

    Raises
    ------
    ProtocolError
        When an item cannot be decoded (named in the message).

    Examples
    --------
    >>> products = decode_products({"job_id": "d0c4a1e2", "text_product_list": [
    ...     {"name": "note", "value": "3 sources found", "meta_data": {"src_name": "Crab"}}]})
    >>> list(products), products["note_Crab"], products.job_id
    (['note_Crab'], '3 sources found', 'd0c4a1e2')
    """
    if not isinstance(products, dict):
        raise ProtocolError(f"products is {type(products).__name__}, not an object", job_id=job_id)
    if job_id is None and isinstance(products.get("job_id"), str):
        job_id = products["job_id"]
    parameters = products.get("analysis_parameters")
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except (ValueError, RecursionError):
            parameters = {"raw": parameters}
    from .auth import scrub
    parameters = scrub(parameters) if isinstance(parameters, dict) else {}
    try:
        items = _collect(products, _Context(product))
    except ProtocolError as exc:
        raise ProtocolError(exc.message, job_id=job_id) from None
    except RecursionError:
        raise ProtocolError("products nested too deeply", job_id=job_id) from None
    except Exception as exc:
        raise ProtocolError(f"undecodable products ({type(exc).__name__}: {_short(str(exc))})",
                            job_id=job_id) from None
    _assign_names(items)
    return ProductSet([(item.name, item.kind, item.value, item.meta) for item in items],
                      job_id=job_id, analysis_parameters=parameters)
