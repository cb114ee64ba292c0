"""Safe unpickling of numpy arrays and FITS tables: `safe_loads`.

`~.unpickler` turns a pickle into a graph of plain values and inert stand-ins;
`_Builder` turns that graph into numpy and astropy objects, checking every
piece (dtypes, shapes, sizes, column definitions) before a public constructor
sees it.
"""
import math
import re

import numpy as np

from ..exceptions import ProtocolError
from .fits_rec import _COLUMN_KEYWORDS, _table_from_raw, split_cells
from .shown import _short
from .unpickler import (_ARRAY_TYPES, _NO_STATE, _RECONSTRUCT, ALLOWED_GLOBALS, _ArrayShadow,
                        _AsciiColDefsType, _CellBatchShadow, _ColDefsType, _ColumnType, _DtypeShadow,
                        _FitsRecType, _FormatType, _FromBufferShadow, _load_shadow, _NdarrayType,
                        _RecarrayType, _RecordType, _ScalarShadow, _VLFType, _undecodable_pickle,
                        garbage_collection_paused)

__all__ = ["safe_loads", "ALLOWED_GLOBALS"]


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
    return _materialize(_load_shadow(data), len(memoryview(data).cast("B")))


def _materialize(shadow, size):
    """Build the objects of ``shadow``, unpickled from ``size`` bytes: no array claims more elements."""
    with _undecodable_pickle(), garbage_collection_paused():
        return _Builder(size).build(shadow)


_BUSY = object()
_TYPE_CODE_RE = re.compile(r"[A-Za-z?]\d{0,9}\Z")
_DATETIME_UNITS = frozenset(["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
                             "generic"])
_MAX_DIM = 2 ** 48
_MAX_FIELDS = 999  # the FITS limit on the columns of a table (TFIELDS)
_OBJECT = np.dtype(object)
_MANY_CELLS = 64  # object arrays from this length on have their cells built at once, if plain


class _Builder:
    """Turns a stand-in graph into numpy/astropy objects with validated, public calls."""

    def __init__(self, size):
        self._memo = {}
        # Every element of an array is carried by at least one byte of the pickle,
        # except those of zero size: bound them by the bytes actually sent.
        self._max_count = size
        self._adopted = set()

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
        if kind is list:  # a list of arrays may hold batches of them (see `~.cell_batches`)
            return self._batched_cells(obj) or [self.build(item) for item in obj]
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
        if len(names) > _MAX_FIELDS:
            raise ProtocolError(f"structured dtype in pickle has {len(names)} fields, more than the "
                                f"{_MAX_FIELDS} columns a FITS table may have")
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

    def _count(self, shape):
        count = math.prod(shape)
        if count > self._max_count:
            raise ProtocolError(f"array in pickle claims {count} elements but the pickle has only "
                                f"{self._max_count} bytes")
        return count

    def _make_array(self, raw, dtype, shape, fortran):
        count = self._count(shape)
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not isinstance(raw, list):
                raise ProtocolError("object array of the wrong length in pickle")
            items = self._batched_cells(raw) if dtype == _OBJECT else None
            if items is None and len(raw) == count:
                items = self._plain_cells(raw) if dtype == _OBJECT else None
                if items is None:
                    items = [self.build(item) for item in raw]
            if items is None or len(items) != count:
                raise ProtocolError("object array of the wrong length in pickle")
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
        if id(raw) in self._adopted or (not dtype.isnative and dtype.subdtype is not None):
            # A buffer named twice in the pickle: each array gets its own copy.
            return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order=order).copy(order)
        self._adopted.add(id(raw))  # the graph keeps ``raw`` alive while it is built
        if isinstance(raw, bytearray):
            return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order=order)
        # numpy adopts a large bytes buffer without copying it and keeps the array
        # writeable; all arguments are validated above.
        array = np.empty(0, dtype=np.uint8)
        if dtype.isnative:
            array.__setstate__((1, shape, dtype, fortran, raw))
            return array
        # numpy would swap non-native data (FITS data are big-endian) into a new
        # array: adopt the bytes as they are and read them with the dtype as sent.
        array.__setstate__((1, (len(raw),), np.dtype(np.uint8), False, raw))
        return array.view(dtype).reshape(shape, order=order)

    def _plain_cells(self, shadows):
        """The cells of an object array, if all are new 1-d plain arrays of one dtype, else None.

        That is a variable-length column: its (often 10^5) cells are built at
        once, as views of one array, instead of one by one; checked alike.
        """
        if len(shadows) < _MANY_CELLS or type(shadows[0]) is not _ArrayShadow:
            return None
        state = shadows[0].state
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            return None
        dtype_shadow = state[-3]
        if type(dtype_shadow) is not _DtypeShadow:
            return None
        dtype = self.dtype(dtype_shadow)
        if dtype.hasobject or dtype.itemsize == 0:
            return None
        memo, raws, counts = self._memo, [], []
        for shadow in shadows:
            if type(shadow) is not _ArrayShadow or id(shadow) in memo:
                return None
            args, state = shadow.args, shadow.state
            if len(args) != 3 or args[0] is not _NdarrayType or type(state) is not tuple \
                    or len(state) not in (4, 5):
                return None
            shape, cell_dtype, fortran, data = state[-4:]
            if cell_dtype is not dtype_shadow or type(shape) is not tuple or len(shape) != 1 \
                    or type(shape[0]) is not int or shape[0] < 0 or type(data) is not bytes:
                return None
            if len(data) != shape[0] * dtype.itemsize:
                raise ProtocolError("array data size in pickle does not match its shape and dtype")
            raws.append(data)
            counts.append(shape[0])
        if len({id(shadow) for shadow in shadows}) != len(shadows):
            return None  # a cell named twice: one object, built the usual way
        total = sum(counts)
        self._count((total,))
        values = np.empty(total, dtype=dtype)
        values.view(np.uint8)[:] = np.frombuffer(b"".join(raws), dtype=np.uint8)
        del raws
        cells = split_cells(counts, values)
        for shadow, cell in zip(shadows, cells):
            memo[id(shadow)] = cell
            # Built: the stand-in's state (a tuple and the cell's bytes) is not needed again.
            shadow.state = _NO_STATE
        return cells

    def _batched_cells(self, raw):
        """The cells of an object array with batches of cells taken out of the pickle, else None."""
        if not self._claim_batches(raw):
            return None
        items = []
        for item in raw:
            if type(item) is _CellBatchShadow:
                items.extend(split_cells(*self._batch_values(item)))
            else:
                items.append(self.build(item))
        return items

    def _claim_batches(self, raw, *, claim=True):
        """Whether ``raw`` holds batches of cells; each is built once only (`ProtocolError` else).

        With ``claim=False`` they are only checked, to be claimed later.
        """
        batches = [id(item) for item in raw if type(item) is _CellBatchShadow]
        if len(set(batches)) != len(batches) or any(key in self._memo for key in batches):
            raise ProtocolError("pickle names a batch of cells twice")
        if claim:
            self._memo.update(dict.fromkeys(batches, _BUSY))
        return bool(batches)

    def _batch_values(self, shadow):
        """``(counts, values)``: the elements of each cell of a batch, and all of them in one array."""
        args = shadow.args
        if len(args) != 5 or args[0] is not _RECONSTRUCT or args[1] is not _NdarrayType \
                or type(args[4]) is not int:
            raise ProtocolError("malformed batch of cells in pickle")
        dtype = self.dtype(args[3])
        if dtype.hasobject or dtype.itemsize == 0:
            raise ProtocolError("unsupported cells in pickle")
        batches = shadow.batches
        if not 0 <= args[4] < len(batches.batches):
            raise ProtocolError("malformed batch of cells in pickle")
        counts, offsets = batches.cells(args[4])
        counts = np.frombuffer(counts, dtype=np.int64)
        offsets = np.frombuffer(offsets, dtype=np.int64)
        if not np.array_equal(counts * dtype.itemsize, np.diff(offsets)):
            raise ProtocolError("array data size in pickle does not match its shape and dtype")
        total = int(counts.sum())
        self._count((total,))
        values = np.empty(total, dtype=dtype)
        values.view(np.uint8)[:] = np.frombuffer(batches.buffer, dtype=np.uint8,
                                                 count=int(offsets[-1] - offsets[0]),
                                                 offset=int(offsets[0]))
        return counts, values

    def variable_column(self, shadow):
        """``(counts, values)`` of a one-dimensional object array of 1-d cells of one dtype, taken
        out of the pickle in batches (`~.cell_batches`); None for any other object.

        A table's variable-length column needs only these two arrays for its
        heap: its cells are not built one by one.
        """
        if type(shadow) is not _ArrayShadow or id(shadow) in self._memo or len(shadow.args) != 3 \
                or shadow.args[0] is not _VLFType or type(shadow.state) is not tuple \
                or len(shadow.state) not in (4, 5):
            return None
        shape, dtype, _, raw = shadow.state[-4:]
        if type(raw) is not list or not any(type(item) is _CellBatchShadow for item in raw) \
                or self.dtype(dtype) != _OBJECT or len(_shape(shape)) != 1:
            return None
        self._claim_batches(raw, claim=False)  # claimed once used: else they are built as cells
        counts, values = [], []
        for item in raw:
            if type(item) is _CellBatchShadow:
                batch_counts, batch_values = self._batch_values(item)
            else:
                cell = self.build(item)
                if type(cell) is not np.ndarray or cell.ndim != 1:
                    return None
                batch_counts, batch_values = np.array([cell.size], dtype=np.int64), cell
            if values and batch_values.dtype != values[0].dtype:
                return None
            counts.append(batch_counts)
            values.append(batch_values)
        counts = np.concatenate(counts)
        if len(counts) != _shape(shape)[0]:
            raise ProtocolError("object array of the wrong length in pickle")
        self._claim_batches(raw)
        return counts, np.concatenate(values)

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
        self._count(shape)
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
        if len(columns) > _MAX_FIELDS:
            raise ProtocolError(f"FITS_rec in pickle has {len(columns)} columns, more than the "
                                f"{_MAX_FIELDS} a FITS table may have")
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
