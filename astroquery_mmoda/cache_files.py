"""The files of the cache folder, shared by `~astroquery_mmoda.cache` and `~astroquery_mmoda.journal`.

Entries are JSON files named by their key, written to a temporary file in the
same folder and moved into place with `os.replace`, so a reader never sees a
partial file, even with several threads or processes writing the same entry.
Problems with the folder (missing, read-only, unreadable files) never raise:
they are warnings, and the folder then behaves as if it were empty.
"""
import numbers
import os
import re
import tempfile
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from astropy.utils.exceptions import AstropyUserWarning
from astroquery import log
from astroquery.exceptions import CorruptDataWarning

#: Entry names: a key (see `check_key`) and this suffix.
SUFFIX = ".json"
KEY_RE = re.compile(r"[0-9a-f]{16,128}")


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
    """Write ``data`` (bytes) to ``directory / name`` through a temporary file.

    Returns True on success; warns and returns False when the folder cannot be
    written.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    except OSError as error:
        warnings.warn(f"Cannot write to the MMODA cache folder {directory}: {error.strerror or error}",
                      AstropyUserWarning)
        return False
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        _replace(temporary, directory / name)
    except OSError as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, FileNotFoundError):
            # The temporary file vanished: a concurrent clear() removed it.
            log.debug(f"MMODA cache: write of {name[:12]} abandoned (folder cleared meanwhile)")
        else:
            warnings.warn(f"Cannot write to the MMODA cache folder {directory}: "
                          f"{error.strerror or error}", AstropyUserWarning)
        return False
    return True


def _replace(source, target):
    # On Windows, os.replace fails while another process has the target open;
    # such a reader finishes quickly.
    for attempt in range(10):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 9:
                raise
            time.sleep(0.05 * (attempt + 1))


def read_bytes(path):
    """Bytes of ``path``; None if absent; warns and returns None if unreadable."""
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        warnings.warn(f"Cannot read the MMODA cache file {path}: {error.strerror or error}",
                      AstropyUserWarning)
        return None


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
