"""The one safe writer: temporary file + rename, no symbolic links, all or nothing, file modes."""
import gc
import os
import stat

import numpy as np
import pytest
from astropy.io import fits

from astroquery_mmoda import writing
from astroquery_mmoda.writing import Spool, UnsafeTargetError, write_file, write_files

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX links and permission bits")


def listing(folder):
    return sorted(path.name for path in folder.iterdir())


def test_contents_bytes_text_and_callables(tmp_path):
    assert write_file(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    write_file(tmp_path / "b.txt", "caf\u00e9\n")
    write_file(tmp_path / "c.bin", memoryview(bytearray(b"xyz")))
    write_file(str(tmp_path / "d.bin"), lambda stream: stream.write(b"streamed"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "caf\u00e9\n".encode("utf-8")
    assert (tmp_path / "c.bin").read_bytes() == b"xyz"
    assert (tmp_path / "d.bin").read_bytes() == b"streamed"
    assert listing(tmp_path) == ["a.bin", "b.txt", "c.bin", "d.bin"]  # no temporary file left


def test_astropy_streams_into_the_temporary_file(tmp_path):
    hdul = fits.HDUList([fits.PrimaryHDU(np.arange(6.0).reshape(2, 3))])
    write_file(tmp_path / "ours.fits", hdul.writeto)
    hdul.writeto(tmp_path / "astropy.fits")
    assert (tmp_path / "ours.fits").read_bytes() == (tmp_path / "astropy.fits").read_bytes()


def test_existing_file_without_overwrite_is_kept(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(FileExistsError, match=r"1 file\(s\) exist already, nothing written "
                                              r"\(use overwrite=True\): .*a.txt"):
        write_files([(tmp_path / "new.txt", "x"), (tmp_path / "a.txt", "new")])
    assert (tmp_path / "a.txt").read_text() == "old"
    assert listing(tmp_path) == ["a.txt"]
    assert write_file(tmp_path / "a.txt", "new", overwrite=True).read_text() == "new"


def test_overwrite_replaces_the_file_instead_of_rewriting_it(tmp_path):
    # A reader holding the old file (here: a second hard link) never sees half a new one.
    (tmp_path / "a.txt").write_text("old")
    os.link(tmp_path / "a.txt", tmp_path / "reader")
    write_file(tmp_path / "a.txt", "new", overwrite=True)
    assert (tmp_path / "a.txt").read_text() == "new"
    assert (tmp_path / "reader").read_text() == "old"


@posix_only
@pytest.mark.parametrize("overwrite", [False, True])
def test_symbolic_link_targets_are_refused(tmp_path, overwrite):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "out").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("out", "dangling"):
        with pytest.raises(UnsafeTargetError, match="symbolic link"):
            write_file(tmp_path / name, b"evil", overwrite=overwrite)
    assert victim.read_text() == "precious"
    assert not (tmp_path / "nowhere").exists()
    assert os.readlink(tmp_path / "out") == str(victim)
    assert listing(tmp_path) == ["dangling", "out", "victim"]


def test_special_files_are_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(UnsafeTargetError, match="not a regular file"):
        write_file(tmp_path / "folder", b"x", overwrite=True)
    assert isinstance(UnsafeTargetError("x"), OSError)


def test_failure_while_writing_a_set_leaves_the_folder_as_it_was(tmp_path):
    (tmp_path / "a.txt").write_text("old a")

    def broken(stream):
        stream.write(b"half")
        raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_files([(tmp_path / "a.txt", "new a"), (tmp_path / "b.txt", "new b"),
                     (tmp_path / "c.txt", broken), (tmp_path / "d.txt", "new d")], overwrite=True)
    assert listing(tmp_path) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old a"


def test_failure_while_renaming_takes_back_what_was_renamed(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old a")
    real_replace, calls = os.replace, []

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise OSError("rename failed")
        return real_replace(source, target)
    monkeypatch.setattr(writing.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        write_files([(tmp_path / "a.txt", "new a"), (tmp_path / "b.txt", "new b"),
                     (tmp_path / "c.txt", "new c")], overwrite=True)
    monkeypatch.undo()
    assert listing(tmp_path) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old a"


def test_a_target_that_appears_meanwhile_is_not_clobbered(tmp_path):
    def racing(stream):
        (tmp_path / "b.txt").write_text("someone else's")
        stream.write(b"ours")
    with pytest.raises(FileExistsError, match="appeared while writing"):
        write_files([(tmp_path / "a.txt", "a"), (tmp_path / "b.txt", racing)])
    assert listing(tmp_path) == ["b.txt"]
    assert (tmp_path / "b.txt").read_text() == "someone else's"


def test_bad_requests_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="given twice"):
        write_files([(tmp_path / "a", b"1"), (tmp_path / "." / "a", b"2")])
    with pytest.raises(FileNotFoundError):
        write_files([(tmp_path / "a", b"1"), (tmp_path / "missing" / "b", b"2")])
    with pytest.raises(ValueError, match="closed it"):
        write_file(tmp_path / "c", lambda stream: stream.close())
    with pytest.raises(TypeError):
        write_file(tmp_path / "d", 12)
    assert listing(tmp_path) == []


@posix_only
def test_file_modes(tmp_path):
    old_umask = os.umask(0o022)
    try:
        secret = write_file(tmp_path / "token", "x", mode=0o600)
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        shared = write_file(tmp_path / "shared", "x", mode=0o664)  # wider than the umask allows
        assert stat.S_IMODE(shared.stat().st_mode) == 0o664
        plain = write_file(tmp_path / "plain", "x")
        assert stat.S_IMODE(plain.stat().st_mode) == 0o644
        os.chmod(plain, 0o640)
        write_file(plain, "y", overwrite=True)  # a replaced file keeps its permissions
        assert stat.S_IMODE(plain.stat().st_mode) == 0o640
        write_file(plain, "z", overwrite=True, mode=0o600)
        assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_ecsv_content_is_utf8_and_reads_back(tmp_path):
    from astropy.table import Table

    table = Table({"src_names": ["Crab Nebula", "Cygnus X-1 ★"], "flux": [1.5, 2.0]})
    path = writing.write_file(tmp_path / "t.ecsv", writing.ecsv(table))
    assert "★" in path.read_text(encoding="utf-8")
    back = Table.read(path, format="ascii.ecsv")
    assert list(back["src_names"]) == ["Crab Nebula", "Cygnus X-1 ★"]
    assert list(back["flux"]) == [1.5, 2.0]


# ---------------------------------------------------------------------------
# Spool: a file written piece by piece

def test_spool_writes_nothing_before_the_commit(tmp_path):
    target = tmp_path / "answer.json"
    spool = Spool(target)
    assert os.listdir(tmp_path) == []  # nothing before the first piece
    for piece in (b'{"a": ', bytearray(b"[1, 2]"), memoryview(b"}")):
        spool.write(piece)
    assert not target.exists() and len(os.listdir(tmp_path)) == 1  # only the temporary file
    assert spool.size == 13
    assert spool.commit() == target
    assert target.read_bytes() == b'{"a": [1, 2]}' and os.listdir(tmp_path) == ["answer.json"]
    with pytest.raises(ValueError, match="committed or discarded"):
        spool.write(b"more")


def test_spool_discard_and_garbage_collection_leave_nothing(tmp_path):
    spool = Spool(tmp_path / "answer.json")
    spool.write(b"partial")
    spool.discard()
    spool.discard()  # twice is harmless
    assert os.listdir(tmp_path) == []
    forgotten = Spool(tmp_path / "answer.json")
    forgotten.write(b"partial")
    del forgotten
    gc.collect()
    assert os.listdir(tmp_path) == []


@posix_only
def test_spool_replaces_a_file_but_never_writes_through_a_link(tmp_path):
    target = tmp_path / "answer.json"
    target.write_bytes(b"old")
    spool = Spool(target)
    spool.write(b"new")
    spool.commit()
    assert target.read_bytes() == b"new"
    kept = tmp_path / "kept.txt"
    kept.write_bytes(b"precious")
    link = tmp_path / "link.json"
    link.symlink_to(kept)
    with pytest.raises(UnsafeTargetError):
        Spool(link).write(b"x")
    spool = Spool(link)
    # A link that appears while the pieces arrive is refused at the commit.
    link.unlink()
    spool.write(b"x")
    link.symlink_to(kept)
    with pytest.raises(UnsafeTargetError):
        spool.commit()
    assert kept.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["answer.json", "kept.txt", "link.json"]


def test_spool_without_overwrite_keeps_an_existing_file(tmp_path):
    target = tmp_path / "answer.json"
    spool = Spool(target)
    spool.write(b"new")
    target.write_bytes(b"appeared meanwhile")
    with pytest.raises(FileExistsError):
        spool.commit(overwrite=False)
    assert target.read_bytes() == b"appeared meanwhile" and os.listdir(tmp_path) == ["answer.json"]


def test_spool_close_keeps_no_file_open_and_commit_is_once(tmp_path):
    target = tmp_path / "answer.json"
    spool = Spool(target)
    spool.write(b"{}")
    spool.close()
    if os.path.isdir("/proc/self/fd"):
        open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert not any(name.startswith(str(tmp_path)) for name in open_files)
    with pytest.raises(ValueError, match="committed or discarded"):
        spool.write(b"late")
    spool.commit()
    with pytest.raises(ValueError, match="committed or discarded"):
        spool.commit()
    spool.discard()  # after the commit: nothing happens
    del spool
    gc.collect()
    assert target.read_bytes() == b"{}" and os.listdir(tmp_path) == ["answer.json"]
