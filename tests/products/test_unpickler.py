"""The allow-list unpickler: what must never run, malformed and fuzzed pickles."""
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products import ALLOWED_GLOBALS, safe_loads


def test_allowed_globals_cover_both_numpy_generations():
    for core in ("numpy.core", "numpy._core"):
        assert f"{core}.multiarray._reconstruct" in ALLOWED_GLOBALS
        assert f"{core}.multiarray.scalar" in ALLOWED_GLOBALS
    assert "astropy.io.fits.fitsrec.FITS_rec" in ALLOWED_GLOBALS
    # only the stand-ins needed by protocol-2 pickles for bytes, and no callable of numpy
    assert {n for n in ALLOWED_GLOBALS if not n.startswith(("numpy", "astropy"))} == {
        "builtins.bytes", "__builtin__.bytes", "_codecs.encode"}
    assert "numpy.load" not in ALLOWED_GLOBALS


class Gadget:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def gadgets(marker):
    command = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Gadget(os.system, command),
        "posix.system": Gadget(__import__("posix").system, command),
        "builtins.eval": Gadget(eval, code),
        "builtins.exec": Gadget(exec, code),
        "subprocess.Popen": Gadget(subprocess.Popen, ["touch", str(marker)]),
        "numpy.load": Gadget(np.load, str(marker)),
        "numpy.save": Gadget(np.save, str(marker), np.arange(2)),
        "builtins.open": Gadget(open, str(marker), "w"),
    }


@pytest.mark.parametrize("name", list(gadgets("x")))
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_gadgets_are_refused_and_nothing_runs(tmp_path, name, protocol):
    marker = tmp_path / "pwned"
    gadget = gadgets(marker)[name]
    function = name.rsplit(".", 1)[1]  # protocol 0/2 may name the module the Python 2 way
    hidden = np.empty(1, dtype=object)
    hidden[0] = gadget
    for carrier in (gadget, [1, {"x": (gadget,)}], hidden):
        with pytest.raises(ProtocolError, match="refused to unpickle the global") as info:
            safe_loads(pickle.dumps(carrier, protocol=protocol))
        assert function in str(info.value)
    assert not marker.exists()


def test_gadget_inside_a_fits_table_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = fits.BinTableHDU.from_columns([fits.Column("A", "J", array=[1, 2])]).data
    data._converted["A"] = Gadget(os.system, f"touch {marker}")
    with pytest.raises(ProtocolError, match="os.system|posix.system"):
        safe_loads(pickle.dumps(data))
    assert not marker.exists()


def op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(text):
    return b"X" + struct.pack("<I", len(text)) + text.encode()


DTYPE = op_global("numpy", "dtype")


def test_dtype_changed_after_use_is_refused():
    """A dtype given a second state after an array used it: memory corruption under pickle."""
    v8 = DTYPE + op_str("V8") + b"\x89\x88\x87R" + b"q\x00" + b"0"
    array = (op_global("numpy.core.multiarray", "_reconstruct") + op_global("numpy", "ndarray")
             + b"K\x00\x85C\x01b\x87R"
             + b"(K\x01K\x01\x85h\x00\x89C\x08AAAAAAAAtb" + b"q\x01" + b"0")
    object_dtype = (DTYPE + op_str("O8") + b"\x89\x88\x87R"
                    + b"(K\x03" + op_str("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb")
    valid_state = b"(K\x03" + op_str("|") + b"NNNK\x08K\x01K\x00tb"
    evil_state = (b"(K\x03" + op_str("|") + b"N" + op_str("x") + b"\x85}" + op_str("x")
                  + object_dtype + b"K\x00\x86sK\x08K\x01K\x1btb")
    # first an honest state, then the evil one: refused outright
    twice = b"\x80\x02" + v8 + b"h\x00" + valid_state + b"0" + array + b"h\x00" + evil_state + b"0" \
        + b"h\x01h\x00\x86."
    with pytest.raises(ProtocolError, match="twice"):
        safe_loads(twice)
    # only the evil state, given after the use: the raw bytes never become object pointers
    late = b"\x80\x02" + v8 + array + b"h\x00" + evil_state + b"0" + b"h\x01h\x00\x86."
    with pytest.raises(ProtocolError, match="object array"):
        safe_loads(late)


def test_patching_an_allowed_class_is_refused():
    # BUILD on the class itself would monkey-patch it for the whole process.
    patch = (b"\x80\x02" + op_global("astropy.io.fits.column", "Column")
             + b"N}" + op_str("__repr__") + op_global("numpy", "dtype") + b"s\x86b.")
    before = fits.Column.__dict__.get("__repr__")
    with pytest.raises(ProtocolError):
        safe_loads(patch)
    assert fits.Column.__dict__.get("__repr__") is before
    factory = (b"\x80\x02" + op_global("numpy._core.multiarray", "_reconstruct")
               + b"}" + op_str("x") + b"K\x01sb.")
    with pytest.raises(ProtocolError):
        safe_loads(factory)


@pytest.mark.parametrize("blob", [
    b"", b"garbage", b"\x80\x05N", pickle.dumps(np.arange(3))[:-5],
    b"\x80\x02K\x01K\x02\x86\x94Q.",  # persistent id
    b"(lp0\ng0\na.",  # recursive list: fine, plain Python
])
def test_malformed_pickles_raise_protocol_error_only(blob):
    try:
        safe_loads(blob)
    except ProtocolError:
        pass


def test_recursive_structures_and_stand_alone_classes():
    with pytest.raises(ProtocolError, match="cycle"):
        safe_loads(b"\x80\x02]q\x00h\x00a.")
    with pytest.raises(ProtocolError, match="cannot stand alone"):
        safe_loads(pickle.dumps(fits.Column("A", "J")))
    with pytest.raises(ProtocolError):
        safe_loads("not bytes")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzzed_bytes_raise_only_protocol_error(blob):
    try:
        safe_loads(blob)
    except ProtocolError:
        pass


FUZZ_SEEDS = [pickle.dumps(np.arange(6.0).reshape(2, 3)),
              pickle.dumps(np.rec.array([(1.0, "x")], names="a,b")),
              pickle.dumps(fits.BinTableHDU.from_columns(
                  [fits.Column("A", "J", array=[1, 2]), fits.Column("S", "3A", array=["a", "b"]),
                   fits.Column("V", "PJ()", array=[[1], [2, 3]])]).data, protocol=4)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FUZZ_SEEDS), st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)),
                                             min_size=1, max_size=4))
def test_mutated_real_pickles_raise_only_protocol_error(seed, flips):
    blob = bytearray(seed)
    for position, value in flips:
        blob[position % len(blob)] = value
    try:
        safe_loads(bytes(blob))
    except ProtocolError:
        pass


def test_random_groups_are_refused_by_name():
    groups = fits.GroupData(np.arange(12.0, dtype=">f4").reshape(3, 1, 4), parnames=["a", "b"],
                            pardata=[np.arange(3.0), np.arange(3.0)], bitpix=-32)
    with pytest.raises(ProtocolError, match=r"random-groups data \(astropy.io.fits.hdu.groups.GroupData\)"):
        safe_loads(pickle.dumps(groups))
