"""The one safe way the package writes files.

Every file is first written to a new temporary file in the target's folder
(created exclusively, never through a symbolic link), flushed to disk and then
renamed over the target, so that a reader sees the old file or the new one,
never half of one.  A target that is a symbolic link or not a regular file is
refused.  `write_files` does this for a set of files, all or nothing.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_file(folder / "note.txt", "3 sources found\\n").read_text()
'3 sources found\\n'
>>> write_file(folder / "note.txt", b"again")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
FileExistsError: 1 file(s) exist already, nothing written (use overwrite=True): ...
>>> [path.name for path in write_files([(folder / "a.bin", b"1"), (folder / "b.bin", b"2")])]
['a.bin', 'b.bin']
>>> import shutil; shutil.rmtree(folder)
"""
import functools
import io
import os
import secrets
import stat
from pathlib import Path

__all__ = ["write_file", "write_files", "Spool", "ecsv", "UnsafeTargetError"]

_OPEN_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_MAX_SHOWN = 5


class UnsafeTargetError(OSError):
    """A target that must not be written: a symbolic link or not a regular file."""


def write_file(path, content, *, overwrite=False, mode=None):
    """Write one file safely: temporary file in the same folder, then an atomic rename.

    Parameters
    ----------
    path : path-like
        The target; its folder must exist.
    content : bytes-like, str or callable
        The bytes, a text (written as UTF-8), or a function called with a
        binary file object open for writing (e.g. ``hdul.writeto``).
    overwrite : bool
        Replace an existing regular file.  If False (default), an existing
        target raises `FileExistsError`.
    mode : int, optional
        Permission bits of the new file (e.g. ``0o600`` for secrets).  By
        default a replaced file keeps its permissions and a new one gets the
        usual ones (``0o666`` less the umask).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileExistsError
        When the target exists and ``overwrite`` is False.
    UnsafeTargetError
        When the target is a symbolic link or not a regular file.
    OSError
        Any other failure; the target is then left as it was.
    """
    return write_files([(path, content)], overwrite=overwrite, mode=mode)[0]


def write_files(items, *, overwrite=False, mode=None):
    """Write a set of files, all or nothing (see `write_file` for one).

    Every target is checked first, then every temporary file is written, then
    all are renamed.  If anything fails, the temporary files are removed, the
    files already renamed are taken back (new ones removed, replaced ones
    restored where the file system allows hard links) and the exception is
    raised: the folder looks as before.

    Parameters
    ----------
    items : iterable of (path-like, content)
        Targets and their contents (bytes-like, str or callable, as for `write_file`).
    overwrite : bool
        Replace existing regular files.  If False (default) and any target
        exists, nothing is written.
    mode : int, optional
        Permission bits of every file written (see `write_file`).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order given.

    Raises
    ------
    FileExistsError, UnsafeTargetError, OSError, ValueError
        As for `write_file`; `ValueError` when one target is given twice.
    """
    items = [(Path(path), content) for path, content in items]
    targets = [_Target(path, content) for path, content in items]
    _check_targets(targets, overwrite)
    try:
        for target in targets:
            target.write_temporary(mode)
        for target in targets:
            target.commit(overwrite)
    except BaseException:
        for target in reversed(targets):
            target.undo()
        raise
    for target in targets:
        target.forget_backup()
    _sync_folders({target.path.parent for target in targets})
    return [target.path for target in targets]


def ecsv(table):
    """Content for `write_file`: ``table`` as ECSV text in UTF-8.

    Parameters
    ----------
    table : `~astropy.table.Table`
    """
    return functools.partial(_write_ecsv, table)


def _write_ecsv(table, stream):
    # astropy's ECSV writer wants a text stream; the safe writer hands a binary one.
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    table.write(text, format="ascii.ecsv")
    text.flush()
    text.detach()  # the binary stream stays open for the writer


def _check_targets(targets, overwrite):
    seen = set()
    for target in targets:
        key = os.path.normcase(os.path.abspath(target.path))
        if key in seen:
            raise ValueError(f"the file {target.path} is given twice")
        seen.add(key)
        target.inspect()
    existing = [str(target.path) for target in targets if target.existing is not None]
    if existing and not overwrite:
        shown = ", ".join(existing[:_MAX_SHOWN])
        if len(existing) > _MAX_SHOWN:
            shown += f" and {len(existing) - _MAX_SHOWN} more"
        raise FileExistsError(f"{len(existing)} file(s) exist already, nothing written "
                              f"(use overwrite=True): {shown}")


class _Target:
    """One file of a set: its temporary file, its optional backup and what was done."""

    def __init__(self, path, content):
        self.path = path
        self.content = content
        self.existing = None    # os.stat_result of the regular file found at path
        self.temporary = None   # written, not yet renamed
        self.backup = None      # hard link to the replaced file
        self.committed = False

    def inspect(self):
        """Refuse links and special files; remember an existing regular file."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            self.existing = None
            return
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeTargetError(f"refused to write through the symbolic link {self.path}")
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeTargetError(f"refused to write {self.path}: it exists and is not a regular file")
        self.existing = info

    def open_temporary(self, mode):
        """The new temporary file next to the target, open for writing."""
        if mode is None and self.existing is not None:
            mode = stat.S_IMODE(self.existing.st_mode)
        name = f".{self.path.name[:64]}.{secrets.token_hex(6)}.tmp"
        temporary = self.path.with_name(name)
        descriptor = os.open(temporary, _OPEN_FLAGS, 0o666 if mode is None else mode)
        self.temporary = temporary
        stream = os.fdopen(descriptor, "wb")
        if mode is not None:
            # The umask may have taken bits away from a mode asked for explicitly.
            _chmod(stream, temporary, mode)
        return stream

    def write_temporary(self, mode):
        with self.open_temporary(mode) as stream:
            _fill(stream, self.content)
            _flush(stream)

    def commit(self, overwrite):
        if not overwrite:
            self._commit_new()
        else:
            self.inspect()  # the target may have changed since the check
            if self.existing is not None:
                self.backup = _hard_link_or_none(self.path, self.path.with_name(
                    f".{self.path.name[:64]}.{secrets.token_hex(6)}.bak"))
            os.replace(self.temporary, self.path)
        self.temporary = None
        self.committed = True

    def _commit_new(self):
        # A hard link fails if the target appeared meanwhile: no file is ever clobbered.
        try:
            os.link(self.temporary, self.path)
        except FileExistsError:
            raise FileExistsError(f"{self.path} appeared while writing, nothing written") from None
        except OSError:  # no hard links on this file system
            if os.path.lexists(self.path):
                raise FileExistsError(f"{self.path} appeared while writing, nothing written") from None
            os.replace(self.temporary, self.path)
        else:
            os.unlink(self.temporary)

    def undo(self):
        """Leave the folder as it was before this file (best effort, never raises)."""
        try:
            if self.committed:
                if self.backup is not None:
                    os.replace(self.backup, self.path)
                    self.backup = None
                elif self.existing is None:
                    os.unlink(self.path)
                self.committed = False
            if self.temporary is not None:
                os.unlink(self.temporary)
                self.temporary = None
        except OSError:
            pass
        self.forget_backup()

    def forget_backup(self):
        if self.backup is not None:
            try:
                os.unlink(self.backup)
            except OSError:
                pass
            self.backup = None


class Spool:
    """One file written piece by piece as its data arrive, then put in place at once, or dropped.

    The same safety as `write_file`: the pieces go to a new temporary file in
    the target's folder (created exclusively, never through a link); `commit`
    renames it over the target (a link or special file there is refused),
    `discard` removes it.  Nothing is created before the first `write`.

    Parameters
    ----------
    path : path-like
        The target; its folder must exist when the first piece is written.
    mode : int, optional
        Permission bits of the new file (see `write_file`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> spool = Spool(folder / "answer.json")
    >>> spool.write(b'{"query_status": '); spool.write(b'"done"}')
    >>> spool.commit().read_text()
    '{"query_status": "done"}'
    >>> import shutil; shutil.rmtree(folder)
    """

    def __init__(self, path, *, mode=None):
        self._target = _Target(Path(path), None)
        self._mode = mode
        self._stream = None
        self._done = False
        self.size = 0

    def write(self, data):
        """Append ``data`` (bytes-like); `OSError` if it cannot be written."""
        if self._done:
            raise ValueError("this spool was committed or discarded already")
        if self._stream is None:
            self._target.inspect()
            self._stream = self._target.open_temporary(self._mode)
        self._stream.write(data)
        self.size += len(data)

    def close(self):
        """Write what was given to disk and close the file (it holds no open file any more)."""
        try:
            if self._stream is None and not self._done:
                self.write(b"")
            self._done = True
            stream, self._stream = self._stream, None
            if stream is not None:
                with stream:
                    _flush(stream)
        except BaseException:
            self._target.undo()
            raise

    def commit(self, *, overwrite=True):
        """Put the file in place (see `write_file` for ``overwrite``); returns its path."""
        target = self._target
        if target.committed or (self._done and target.temporary is None):
            raise ValueError("this spool was committed or discarded already")
        self.close()
        try:
            _check_targets([target], overwrite)
            target.commit(overwrite)
        except BaseException:
            target.undo()
            raise
        target.forget_backup()
        _sync_folders({target.path.parent})
        return target.path

    def discard(self):
        """Drop what was written (never raises; nothing happens after `commit`)."""
        self._done = True
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
        if not self._target.committed:
            self._target.undo()

    def __del__(self):
        target = getattr(self, "_target", None)
        if target is not None and target.temporary is not None and not target.committed:
            self.discard()


def _flush(stream):
    stream.flush()
    os.fsync(stream.fileno())


def _fill(stream, content):
    if callable(content):
        content(stream)
        if stream.closed:
            raise ValueError("the function writing the file closed it")
    elif isinstance(content, str):
        stream.write(content.encode("utf-8"))
    else:
        stream.write(memoryview(content).cast("B"))


def _chmod(stream, path, mode):
    if hasattr(os, "fchmod"):
        os.fchmod(stream.fileno(), mode)
    else:  # pragma: no cover - Windows
        os.chmod(path, mode)


def _hard_link_or_none(path, link):
    try:
        os.link(path, link)
    except OSError:
        return None
    return link


def _sync_folders(folders):
    """Make the renames durable (POSIX); silently skipped where folders cannot be opened."""
    for folder in folders:
        try:
            descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            os.fsync(descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)
