"""The allow-list unpickler: what a pickle may name, and the inert stand-ins it gets instead.

Every allowed numpy or astropy global is replaced by a stand-in that only records
the arguments and the state the pickle gives it; `~.safe_pickle` then rebuilds
real objects from these records with validated, public constructors.
"""
import contextlib
import gc
import io
import pickle
import threading
import types

from ..exceptions import ProtocolError
from .cell_batches import compact_cell_batches
from .shown import _short


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


class _CellBatchShadow(_Shadow):
    """A batch of cells taken out of the pickle (see `~.cell_batches`).

    ``args`` are what the cells named: ``_reconstruct``, the array type, its
    third argument and the cells' dtype, then the batch's number; ``batches``
    holds the cells.
    """
    __slots__ = ("batches",)


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
    """Unpickler whose globals are the inert stand-ins of `_GLOBALS`.

    With ``batches`` (a `~.cell_batches.CellBatches`), the private global
    that stands for a batch of cells is known too.
    """

    def __init__(self, file, *, batches=None, **options):
        super().__init__(file, **options)
        self._batches = batches
        if batches is not None:
            self._batch_factory = _Factory(lambda *args: _cell_batch(batches, args), "a batch of cells")

    def find_class(self, module, name):
        try:
            return _GLOBALS[(module, name)]
        except (KeyError, TypeError):
            batches = self._batches
            if batches is not None and (module, name) == batches.name:
                return self._batch_factory
            if (module, name) == ("astropy.io.fits.hdu.groups", "GroupData"):
                raise ProtocolError(
                    "refused to unpickle random-groups data (astropy.io.fits.hdu.groups.GroupData): "
                    "not supported; ask the service for the data as an image or a table") from None
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


_pause_lock = threading.Lock()
_pauses = [0, False]  # decodings in progress, whether the collector was on before the first


@contextlib.contextmanager
def garbage_collection_paused():
    """No cyclic garbage collection in the block (nor in other threads meanwhile).

    Decoding a table with a variable-length column makes millions of small
    objects, none of them garbage: the collector, triggered again and again by
    the allocations, took half of the time.  Nested and concurrent blocks
    share one pause; the collector is on again after the last one if it was on
    before the first.
    """
    with _pause_lock:
        if _pauses[0] == 0:
            _pauses[1] = gc.isenabled()
            gc.disable()
        _pauses[0] += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses[0] -= 1
            if _pauses[0] == 0 and _pauses[1]:
                gc.enable()


def _cell_batch(batches, args):
    shadow = _CellBatchShadow(*args)
    shadow.batches = batches
    return shadow


def _load_shadow(data):
    """Unpickle ``data`` into a graph of plain Python values and stand-ins.

    The cells of variable-length columns are taken out first, batch by batch
    (`~.cell_batches`); should the pickle so rewritten not unpickle, the
    pickle as sent is unpickled instead, for its own error.
    """
    compacted = compact_cell_batches(data)
    if compacted is not None:
        rewritten, batches = compacted
        try:
            return _unpickle(rewritten, batches)
        except ProtocolError:
            pass
        del rewritten, batches
    return _unpickle(data)


def _unpickle(data, batches=None):
    """Unpickle ``data`` (bytes-like, or a file such as `~.cell_batches.PiecesReader`)."""
    stream = data if hasattr(data, "read") else io.BytesIO(data)
    with _undecodable_pickle(), garbage_collection_paused():
        # Python 2 pickles of numpy arrays need latin1 (numpy's own advice).
        return _ShadowUnpickler(stream, batches=batches, fix_imports=False, encoding="latin1").load()
