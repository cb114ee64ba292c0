"""The files of the cache folder, shared by `~astroquery_mmoda.cache` and `~astroquery_mmoda.journal`.

Entries are JSON files named by their key, written by
`astroquery_mmoda.writing` (a temporary file in the same folder moved into
place), so a reader never sees a partial file, even with several threads or
processes writing the same entry.  Reads take regular files only, never
follow links and stop at ``conf.max_answer_size``.
Problems with the folder (missing, read-only, unreadable files) never raise:
they are warnings, and the folder then behaves as if it were empty.
"""
import errno
import numbers
import os
import re
import stat
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from astropy.utils.exceptions import AstropyUserWarning
from astroquery import log
from astroquery.exceptions import CorruptDataWarning

from .writing import write_file

#: Entry names: a key (see `check_key`) and this suffix.
SUFFIX = ".json"
KEY_RE = re.compile(r"[0-9a-f]{16,128}")
# Never follow a link, never wait for a FIFO's writer.
_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def normalise_url(url):
    """``url`` without trailing slashes, its scheme and host in lower case."""
    url = str(url).strip().rstrip("/")
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       parts.query, parts.fragment))


def jsonable(value):
    """``value`` as plain JSON types (dict, list, str, int, float, bool, None)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(item) for item in value), key=repr)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist") and not hasattr(value, "unit"):  # numpy scalars and arrays
        return jsonable(value.tolist())
    return str(value)


def check_key(key):
    """``key`` if it is a valid entry key; ValueError otherwise."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise ValueError("cache keys are strings of 16 to 128 lowercase hexadecimal digits, "
                         "as made by cache_key()")
    return key


def short_key(key):
    """The first 12 digits of ``key``, enough to tell entries apart in log lines."""
    return key[:12]


def now_utc():
    """The current UTC time in ISO 8601, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def atomic_write(directory, name, data):
    """Write ``data`` (bytes) to ``directory / name`` with `~astroquery_mmoda.writing.write_file`.

    Returns True on success; warns and returns False when the folder cannot be
    written (or the entry is a link or a special file, which is never written through).
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_file(directory / name, data, overwrite=True)
    except OSError as error:
        return write_failed(directory, name, error)
    return True


def write_failed(directory, name, error):
    """Say why the entry ``name`` could not be written to ``directory``; returns False.

    A warning, or only a debug line when the folder vanished meanwhile (a
    concurrent ``clear()`` removed it).
    """
    if isinstance(error, FileNotFoundError):
        log.debug(f"MMODA cache: write of {name[:12]} abandoned (folder cleared meanwhile)")
    else:
        warnings.warn(f"Cannot write to the MMODA cache folder {directory}: "
                      f"{getattr(error, 'strerror', None) or error}", AstropyUserWarning)
    return False


def max_entry_bytes():
    """The largest cache entry read back, in bytes (``conf.max_answer_size`` MiB)."""
    from . import conf

    return int(float(conf.max_answer_size) * 2 ** 20)


def entry_mtime(path):
    """Modification time of the regular file ``path`` (links not followed), or None.

    None when there is no such file; a link or a special file (which only a
    person can have put there) is removed with a `CorruptDataWarning`; the
    target of a link is never touched.
    """
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        warnings.warn(f"Cannot read the MMODA cache file {path}: {error.strerror or error}",
                      AstropyUserWarning)
        return None
    if stat.S_ISDIR(info.st_mode):
        warnings.warn(f"Cannot read the MMODA cache file {path}: it is a folder", AstropyUserWarning)
        return None
    if not stat.S_ISREG(info.st_mode):
        discard(path, "entry", "a link or a special file, not a regular file")
        return None
    return info.st_mtime


def read_bytes(path, limit=None):
    """Bytes of the regular file ``path``, at most ``limit`` of them (default `max_entry_bytes`).

    Returns None if absent; warns and returns None if unreadable, too large, a
    symbolic link or not a regular file (never blocks on a FIFO or reads a device).
    """
    limit = max_entry_bytes() if limit is None else int(limit)
    try:
        descriptor = os.open(path, _READ_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        reason = "a symbolic link" if error.errno == errno.ELOOP else (error.strerror or error)
        warnings.warn(f"Cannot read the MMODA cache file {path}: {reason}", AstropyUserWarning)
        return None
    try:
        with os.fdopen(descriptor, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                warnings.warn(f"Cannot read the MMODA cache file {path}: not a regular file",
                              AstropyUserWarning)
                return None
            if info.st_size > limit:
                warnings.warn(f"Ignored the MMODA cache file {path}: {info.st_size} bytes, more than "
                              f"conf.max_answer_size", AstropyUserWarning)
                return None
            data = stream.read(limit + 1)
    except OSError as error:
        warnings.warn(f"Cannot read the MMODA cache file {path}: {error.strerror or error}",
                      AstropyUserWarning)
        return None
    if len(data) > limit:  # grew while being read
        warnings.warn(f"Ignored the MMODA cache file {path}: more than conf.max_answer_size",
                      AstropyUserWarning)
        return None
    return data


def discard(path, what, reason):
    """Remove the unreadable entry ``path`` with a `CorruptDataWarning`."""
    try:
        path.unlink()
    except OSError:
        pass
    warnings.warn(f"The cached MMODA {what} {path.name[:12]} was unreadable ({reason}) and has been "
                  "removed; it will be fetched again.", CorruptDataWarning)


def entry_files(directory):
    """Paths of the entries in ``directory`` (no temporary or foreign files)."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        warnings.warn(f"Cannot list the MMODA cache folder {directory}: {error.strerror or error}",
                      AstropyUserWarning)
        return []
    return sorted(directory / name for name in names
                  if name.endswith(SUFFIX) and KEY_RE.fullmatch(name[:-len(SUFFIX)]))


def clear_entries(directory):
    """Remove every entry of ``directory`` and its stale temporary files; returns the count."""
    removed = 0
    for path in entry_files(directory):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        # Left-overs of writers that died before moving their file in place.
        if name.startswith(".") and name.endswith(".tmp") and KEY_RE.match(name[1:]):
            try:
                os.unlink(directory / name)
            except OSError:
                pass
    return removed
