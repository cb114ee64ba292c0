"""Local cache of finished MMODA results, and the journal of unfinished jobs.

Both live under the client's cache folder (``Mmoda.cache_location``), in the
sub-folders ``results`` and ``jobs``:

* `ResultCache` keeps the answers of jobs that ended ``done`` with exit status
  0, keyed by `cache_key`, so that repeating a query does not ask the
  dispatcher again.  It follows astroquery's ``cache_conf.cache_active`` and
  ``cache_conf.cache_timeout``.
* `JobJournal` remembers every submitted job that has not finished yet, so
  that an interrupted query can be resumed with the same job and session.

Neither stores tokens: everything is passed through `~astroquery_mmoda.auth.scrub`
before it is written.  Files are JSON, written to a temporary file in the same
folder and moved into place with `os.replace`, so a reader never sees a
partial file, even with several threads or processes writing the same entry.
Problems with the folder (missing, read-only, unreadable files) never raise:
they are warnings, and the cache then behaves as if it were empty.
"""
import hashlib
import json
import math
import numbers
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from astropy.utils.exceptions import AstropyUserWarning
from astroquery import cache_conf, log
from astroquery.exceptions import CorruptDataWarning

from .auth import redact, scrub

__all__ = ["cache_key", "is_finished", "ResultCache", "DescriptionCache", "JobJournal",
           "IGNORED_PARAMETERS", "JOURNAL_COLUMNS"]

#: Parameters that never enter a cache key: secrets, job bookkeeping, protocol
#: switches, and the three names given as separate arguments of `cache_key`.
IGNORED_PARAMETERS = frozenset({
    "token", "session_id", "job_id", "query_status", "api", "oda_api_version", "dry_run",
    "off_line", "async_dispatcher", "instrument", "product_type", "query_type",
})

#: Columns of `JobJournal.as_table`.
JOURNAL_COLUMNS = ("job_id", "session_id", "instrument", "product", "status", "submitted",
                   "updated", "url")

_KEY_VERSION = 1
_RESULT_FORMAT = "astroquery_mmoda-result"
_RESULT_VERSION = 1
_JOB_FORMAT = "astroquery_mmoda-job"
_JOB_VERSION = 1
_KEY_RE = re.compile(r"[0-9a-f]{16,128}")
_SUFFIX = ".json"
# Integers beyond this are not exactly representable as floats: keep them apart.
_MAX_EXACT_FLOAT_INT = 2 ** 53
# Read-modify-write of journal entries is serialised within the process;
# across processes the last complete write wins.
_journal_lock = threading.RLock()


# ---------------------------------------------------------------------------
# Keys

def _normalise_url(url):
    url = str(url).strip().rstrip("/")
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       parts.query, parts.fragment))


def _jsonable(value):
    """``value`` as plain JSON types (dict, list, str, int, float, bool, None)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(item) for item in value), key=repr)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist") and not hasattr(value, "unit"):  # numpy scalars and arrays
        return _jsonable(value.tolist())
    return str(value)


def _canonical(value):
    """Canonical form of a parameter value for hashing: equal meaning, equal form."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < _MAX_EXACT_FLOAT_INT:
            return int(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _user_id(user):
    if isinstance(user, Mapping):
        user = user.get("sub") or user.get("email")
    if user is None or user == "":
        return None
    return str(user)


def cache_key(*, url, instrument, product, query_type, params, user):
    """The cache key of one product query.

    Parameters
    ----------
    url : str
        Root URL of the dispatcher; case of scheme and host, and trailing
        slashes, do not matter.
    instrument, product, query_type : str
        What is asked for (``product`` is the wire's ``product_type``).
        ``query_type`` may be None.
    params : dict
        The query parameters.  Keys in `IGNORED_PARAMETERS` (the token,
        ``session_id``, ``job_id``, ``query_status``, ``api``, ...) and keys
        whose value is None are left out, as the dispatcher does for its job
        ids.  Order does not matter.  Numbers are compared by value: ``10``,
        ``10.0`` and ``numpy.int64(10)`` give the same key, while the string
        ``"10"`` does not.  Lists, tuples and dictionaries are compared as
        JSON (sorted keys, list order kept); other objects by their `str`.
    user : str, dict or None
        The ``sub`` claim of the token (or the claims themselves); None or
        empty for anonymous queries.  Different users never share a key.

    Returns
    -------
    key : str
        64 hexadecimal digits (SHA-256).

    Examples
    --------
    >>> query = dict(url="https://www.astro.unige.ch/mmoda/dispatch-data", instrument="isgri",
    ...              product="isgri_image", query_type="Real", user="alice@example.org")
    >>> key = cache_key(params={"RA": 83.63, "DEC": 22.01, "E1_keV": 30}, **query)
    >>> len(key), key == cache_key(params={"E1_keV": 30.0, "DEC": 22.01, "RA": 83.63}, **query)
    (64, True)
    """
    kept = {str(name): _canonical(_jsonable(value)) for name, value in (params or {}).items()
            if value is not None and str(name) not in IGNORED_PARAMETERS}
    document = {
        "version": _KEY_VERSION,
        "url": _normalise_url(url),
        "instrument": None if instrument is None else str(instrument),
        "product": None if product is None else str(product),
        "query_type": None if query_type is None else str(query_type),
        "params": kept,
        "user": _user_id(user),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# Files

def _check_key(key):
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError("cache keys are strings of 16 to 128 lowercase hexadecimal digits, "
                         "as made by cache_key()")
    return key


def _short(key):
    return key[:12]


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _atomic_write(directory, name, data):
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


def _read(path):
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


def _discard(path, what, reason):
    try:
        path.unlink()
    except OSError:
        pass
    warnings.warn(f"The cached MMODA {what} {path.name[:12]} was unreadable ({reason}) and has been "
                  "removed; it will be fetched again.", CorruptDataWarning)


def _entry_files(directory):
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
                  if name.endswith(_SUFFIX) and _KEY_RE.fullmatch(name[:-len(_SUFFIX)]))


def _clear(directory):
    removed = 0
    for path in _entry_files(directory):
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
        if name.startswith(".") and name.endswith(".tmp") and _KEY_RE.match(name[1:]):
            try:
                os.unlink(directory / name)
            except OSError:
                pass
    return removed


def is_finished(envelope):
    """Whether a dispatcher answer is a finished, successful job (worth caching).

    Examples
    --------
    >>> is_finished({"query_status": "done", "exit_status": {"status": 0}})
    True
    >>> is_finished({"query_status": "done", "exit_status": {"status": 1, "message": "failed"}})
    False
    """
    if not isinstance(envelope, Mapping) or envelope.get("query_status") != "done":
        return False
    exit_status = envelope.get("exit_status")
    if not isinstance(exit_status, Mapping):
        return False
    status = exit_status.get("status")
    return isinstance(status, (int, float)) and not isinstance(status, bool) and status == 0


# ---------------------------------------------------------------------------
# Results

class ResultCache:
    """Finished, successful dispatcher answers, one JSON file per key.

    Parameters
    ----------
    location : str or `~pathlib.Path`
        The client's cache folder; entries go to its sub-folder ``results``,
        created on the first write.

    Notes
    -----
    Entries are plain (uncompressed) JSON: with large products, mostly
    base64 text that hardly compresses, gzip made writing about three times
    slower for a 10 % smaller file.  NaN and infinities are kept.

    Examples
    --------
    >>> import tempfile
    >>> answer = {"query_status": "done", "exit_status": {"status": 0}, "products": {}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cache = ResultCache(folder)
    ...     print(cache.put("0123456789abcdef", answer), cache.get("0123456789abcdef") == answer)
    True True
    """

    def __init__(self, location):
        self.directory = Path(location) / "results"

    def __repr__(self):
        return f"<{type(self).__name__} {self.directory}>"

    def _path(self, key):
        return self.directory / (_check_key(key) + _SUFFIX)

    def put(self, key, envelope):
        """Store a finished answer.

        Parameters
        ----------
        key : str
            From `cache_key`.
        envelope : dict
            The dispatcher's JSON answer.  Only answers with ``query_status``
            ``"done"`` and ``exit_status.status`` 0 are stored; tokens are
            removed first.

        Returns
        -------
        stored : bool
            False if the answer was not stored: not finished or failed,
            caching is off (``cache_conf.cache_active``), or the folder cannot
            be written (a warning says so).
        """
        path = self._path(key)
        if not cache_conf.cache_active:
            log.debug(f"MMODA cache off: result {_short(key)} not stored")
            return False
        if not is_finished(envelope):
            log.debug(f"MMODA cache: result {_short(key)} not stored (not a finished, successful job)")
            return False
        document = {"format": _RESULT_FORMAT, "version": _RESULT_VERSION, "key": key,
                    "stored": _now(), "envelope": scrub(envelope)}
        try:
            data = json.dumps(document, allow_nan=True).encode("utf-8")
        except (TypeError, ValueError) as error:
            warnings.warn(f"MMODA result {_short(key)} not cached: not JSON ({error})",
                          AstropyUserWarning)
            return False
        if not _atomic_write(self.directory, path.name, data):
            return False
        log.debug(f"MMODA cache: stored result {_short(key)} ({len(data)} bytes)")
        return True

    def get(self, key):
        """The stored answer for ``key``.

        Returns
        -------
        envelope : dict or None
            None if caching is off, there is no entry, or it is older than
            ``cache_conf.cache_timeout`` seconds (None or a negative value:
            entries never expire; 0: they always have).  An unreadable entry
            is removed with a `~astroquery.exceptions.CorruptDataWarning`.
        """
        path = self._path(key)
        if not cache_conf.cache_active:
            log.debug(f"MMODA cache off: result {_short(key)} not looked up")
            return None
        try:
            written = path.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            log.debug(f"MMODA cache miss: result {_short(key)}")
            return None
        except OSError as error:
            warnings.warn(f"Cannot read the MMODA cache file {path}: {error.strerror or error}",
                          AstropyUserWarning)
            return None
        timeout = cache_conf.cache_timeout
        if timeout is not None and timeout >= 0 and time.time() - written > timeout:
            log.debug(f"MMODA cache: result {_short(key)} expired")
            return None
        data = _read(path)
        if data is None:
            log.debug(f"MMODA cache miss: result {_short(key)}")
            return None
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError
            _discard(path, "result", f"{type(error).__name__}")
            return None
        if (isinstance(document, dict) and document.get("format") == _RESULT_FORMAT
                and document.get("version") != _RESULT_VERSION):
            log.debug(f"MMODA cache: result {_short(key)} has an old format; removed")
            try:
                path.unlink()
            except OSError:
                pass
            return None
        if (not isinstance(document, dict) or document.get("format") != _RESULT_FORMAT
                or document.get("key") != key or not is_finished(document.get("envelope"))):
            _discard(path, "result", "unexpected content")
            return None
        log.debug(f"MMODA cache hit: result {_short(key)}")
        return document["envelope"]

    def remove(self, key):
        """Remove the entry of ``key`` (e.g. an answer that could not be decoded).

        Returns
        -------
        removed : bool
            False if there was no entry.
        """
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        log.debug(f"MMODA cache: removed result {_short(key)}")
        return True

    def clear(self):
        """Remove every stored result (and nothing else in the folder).

        Returns
        -------
        count : int
            How many entries were removed.
        """
        removed = _clear(self.directory)
        log.debug(f"MMODA cache: cleared {removed} results")
        return removed

    def keys(self):
        """Keys of the stored results, expired ones included."""
        return [path.name[:-len(_SUFFIX)] for path in _entry_files(self.directory)]

    def __len__(self):
        return len(self.keys())


# ---------------------------------------------------------------------------
# Instrument descriptions

class DescriptionCache:
    """The dispatchers' descriptions of their instruments (``api/meta-data``).

    Kept for a day (or ``cache_conf.cache_timeout`` if shorter), so that the
    parameter check of a new Python session needs no request, and a cached
    result no request at all.  Follows ``cache_conf.cache_active``.

    Parameters
    ----------
    location : path-like
        The cache folder; descriptions go to its ``descriptions`` sub-folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     descriptions = DescriptionCache(folder)
    ...     descriptions.put("https://example.org/dispatch-data", "isgri", [["..."]])
    ...     descriptions.get("https://example.org/dispatch-data", "isgri")
    True
    [['...']]
    """

    max_age = 86400

    def __init__(self, location):
        self.directory = Path(location) / "descriptions"

    def _path(self, server, instrument):
        name = hashlib.sha256(f"{_normalise_url(server)}\n{instrument}".encode()).hexdigest()
        return self.directory / f"{name}.json"

    def get(self, server, instrument):
        """The stored description, or None (absent, too old, unreadable, caching off)."""
        if not cache_conf.cache_active:
            return None
        path = self._path(server, instrument)
        timeout = cache_conf.cache_timeout
        max_age = self.max_age if timeout is None or timeout < 0 else min(timeout, self.max_age)
        try:
            if time.time() - path.stat().st_mtime > max_age:
                return None
        except OSError:
            return None
        data = _read(path)
        try:
            return json.loads(data) if data is not None else None
        except (ValueError, RecursionError):
            _discard(path, "description", "not JSON")
            return None

    def put(self, server, instrument, description):
        """Store a description; returns whether it was written."""
        if not cache_conf.cache_active:
            return False
        path = self._path(server, instrument)
        return _atomic_write(self.directory, path.name, json.dumps(scrub(description)).encode())


# ---------------------------------------------------------------------------
# Journal

class JobJournal:
    """Submitted jobs that have not finished yet, one small JSON file per key.

    The journal is independent of ``cache_conf``: it is what lets an
    interrupted query be resumed.  Finished and failed jobs leave it through
    `remove`.

    Parameters
    ----------
    location : str or `~pathlib.Path`
        The client's cache folder; entries go to its sub-folder ``jobs``,
        created on the first write.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     journal = JobJournal(folder)
    ...     stored = journal.record("0123456789abcdef", url="https://www.astro.unige.ch/mmoda/dispatch-data",
    ...                             instrument="isgri", product="isgri_image", job_id="d0c4a1e2",
    ...                             session_id="ABCDEFGH12345678", status="submitted")
    ...     print(stored, journal.find("d0c4a1e2")["session_id"], len(journal))
    True ABCDEFGH12345678 1
    """

    def __init__(self, location):
        self.directory = Path(location) / "jobs"

    def __repr__(self):
        return f"<{type(self).__name__} {self.directory}>"

    def _path(self, key):
        return self.directory / (_check_key(key) + _SUFFIX)

    def _write(self, entry):
        document = {"format": _JOB_FORMAT, "version": _JOB_VERSION, **entry}
        data = json.dumps(document, allow_nan=True, indent=1).encode("utf-8")
        return _atomic_write(self.directory, entry["key"] + _SUFFIX, data)

    def _load(self, path):
        data = _read(path)
        if data is None:
            return None
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as error:
            _discard(path, "job entry", type(error).__name__)
            return None
        if (not isinstance(document, dict) or document.get("format") != _JOB_FORMAT
                or document.get("key") != path.name[:-len(_SUFFIX)]
                or not isinstance(document.get("job_id"), str)):
            _discard(path, "job entry", "unexpected content")
            return None
        document.pop("format")
        document.pop("version", None)
        return document

    def record(self, key, *, url, instrument, product, job_id, session_id, status, params=None):
        """Remember a submitted job.

        Recording the same key again replaces the entry; the submission time
        is kept if the job id is unchanged.

        Parameters
        ----------
        key : str
            From `cache_key`.
        url : str
            Root URL of the dispatcher.
        instrument, product : str
            What was asked for.
        job_id, session_id : str
            The dispatcher's identifiers of the job (needed to resume it).
        status : str
            The last ``query_status``, e.g. ``"submitted"``.
        params : dict, optional
            The query parameters, stored without tokens (for resuming).

        Returns
        -------
        stored : bool
            False if the folder cannot be written (a warning says so).
        """
        path = self._path(key)
        now = _now()
        with _journal_lock:
            previous = self._load(path)
            submitted = now
            if previous is not None and previous.get("job_id") == job_id and previous.get("submitted"):
                submitted = previous["submitted"]
            entry = {
                "key": key,
                "job_id": str(job_id),
                "session_id": None if session_id is None else str(session_id),
                "instrument": None if instrument is None else str(instrument),
                "product": None if product is None else str(product),
                "status": None if status is None else str(status),
                "submitted": submitted,
                "updated": now,
                "url": redact(_normalise_url(url)),
                "params": scrub(_jsonable(params)) if params is not None else None,
            }
            stored = self._write(entry)
        if stored:
            log.debug(f"MMODA journal: recorded job {entry['job_id']} ({entry['status']})")
        return stored

    def lookup(self, key):
        """The entry of ``key`` as a dict, or None if there is none.

        The dict has the keys ``key``, ``job_id``, ``session_id``,
        ``instrument``, ``product``, ``status``, ``submitted``, ``updated``
        (UTC, ISO 8601), ``url`` and ``params``.
        """
        entry = self._load(self._path(key))
        log.debug(f"MMODA journal {'hit' if entry else 'miss'}: {_short(key)}")
        return entry

    def update(self, key, status):
        """Set the status (and the update time) of a recorded job.

        Returns
        -------
        updated : bool
            False if the job is not in the journal or cannot be written.
        """
        path = self._path(key)
        with _journal_lock:
            entry = self._load(path)
            if entry is None:
                return False
            entry["status"] = None if status is None else str(status)
            entry["updated"] = _now()
            stored = self._write(entry)
        if stored:
            log.debug(f"MMODA journal: job {entry['job_id']} is {entry['status']}")
        return stored

    def remove(self, key):
        """Forget a job (it finished or failed).

        Returns
        -------
        removed : bool
            False if it was not in the journal.
        """
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        log.debug(f"MMODA journal: removed {_short(key)}")
        return True

    def entries(self):
        """All recorded jobs, oldest submission first, as dicts (see `lookup`)."""
        found = (self._load(path) for path in _entry_files(self.directory))
        return sorted((entry for entry in found if entry is not None),
                      key=lambda entry: (str(entry.get("submitted")), entry["job_id"]))

    def find(self, job_id, session_id=None):
        """The most recently submitted entry with this job id (and session id, if given), or None."""
        matches = [entry for entry in self.entries() if entry["job_id"] == job_id
                   and (session_id is None or entry.get("session_id") == session_id)]
        return matches[-1] if matches else None

    def as_table(self):
        """The recorded jobs as a `~astropy.table.Table`.

        Columns are `JOURNAL_COLUMNS` (all strings; missing values are empty
        strings); the table is empty, with these columns, when no job is
        recorded.
        """
        from astropy.table import Table

        rows = [tuple("" if entry.get(name) is None else str(entry.get(name))
                      for name in JOURNAL_COLUMNS) for entry in self.entries()]
        if not rows:
            return Table(names=JOURNAL_COLUMNS, dtype=[str] * len(JOURNAL_COLUMNS))
        return Table(rows=rows, names=JOURNAL_COLUMNS)

    def clear(self):
        """Forget every recorded job.

        Returns
        -------
        count : int
            How many entries were removed.
        """
        with _journal_lock:
            removed = _clear(self.directory)
        log.debug(f"MMODA journal: cleared {removed} jobs")
        return removed

    def __len__(self):
        return len(_entry_files(self.directory))
