"""Local cache of finished MMODA results and of the dispatchers' instrument descriptions.

Both live under the client's cache folder (``Mmoda.cache_location``), in the
sub-folders ``results`` and ``descriptions``:

* `ResultCache` keeps the answers of jobs that ended ``done`` with exit status
  0, keyed by `cache_key`, so that repeating a query does not ask the
  dispatcher again.  It follows astroquery's ``cache_conf.cache_active`` and
  ``cache_conf.cache_timeout``.
* `DescriptionCache` keeps the ``api/meta-data`` answers for a day.

The journal of unfinished jobs (`JobJournal`, in the sub-folder ``jobs``) is
`astroquery_mmoda.journal`; its names are re-exported here.  Nothing stores
tokens: everything is passed through `~astroquery_mmoda.redaction.scrub`
before it is written.  How entries are written and read back (atomically, and
never raising for a bad folder) is `astroquery_mmoda.cache_files`.
"""
import hashlib
import json
import math
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from astropy.utils.exceptions import AstropyUserWarning
from astroquery import cache_conf, log

from .cache_files import (SUFFIX, atomic_write, check_key, clear_entries, discard, entry_files,
                          entry_mtime, jsonable, normalise_url, now_utc, read_bytes, short_key,
                          write_failed)
from .journal import JOURNAL_COLUMNS, JobJournal
from .json_decoding import decode_json
from .redaction import contains_secret, known_secrets, scrub
from .writing import Spool

__all__ = ["cache_key", "is_finished", "ResultCache", "AnswerSpool", "DescriptionCache", "JobJournal",
           "IGNORED_PARAMETERS", "JOURNAL_COLUMNS"]

#: Parameters that never enter a cache key: secrets, job bookkeeping, protocol
#: switches, and the three names given as separate arguments of `cache_key`.
IGNORED_PARAMETERS = frozenset({
    "token", "session_id", "job_id", "query_status", "api", "oda_api_version", "dry_run",
    "off_line", "async_dispatcher", "instrument", "product_type", "query_type",
})

_KEY_VERSION = 2
_RESULT_FORMAT = "astroquery_mmoda-result"
_RESULT_VERSION = 1
# Answers up to this size are kept in memory until stored; larger ones are
# spooled to a temporary file in the cache folder as they arrive.
_SPOOL_IN_MEMORY = 2 ** 20
_REDACTED = b"<token>"
_QUEUED_PIECES = 16
# Integers beyond this are not exactly representable as floats: keep them apart.
_MAX_EXACT_FLOAT_INT = 2 ** 53


# ---------------------------------------------------------------------------
# Keys

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


def _identity(user):
    """What the cache keys on of the user: who (``sub``, else ``email``) and which roles.

    ``user`` is None (anonymous), an identity string, the token's claims, or
    a `~astroquery_mmoda.tokens.TokenInfo`.  A token with neither ``sub``
    nor ``email`` gets an identity of its own (a hash of all its claims):
    its results are never shared with another token.
    """
    if user is None or user == "":
        return None
    if isinstance(user, str):
        return {"id": user, "roles": []}
    claims = user.claims if hasattr(user, "claims") and hasattr(user, "roles") else user
    if not isinstance(claims, Mapping):
        return {"id": str(user), "roles": []}
    roles = _roles_of(claims.get("roles"))
    who = claims.get("sub") or claims.get("email")
    if who in (None, ""):
        digest = hashlib.sha256(json.dumps(jsonable(claims), sort_keys=True).encode()).hexdigest()
        return {"id": None, "token": digest, "roles": roles}
    return {"id": str(who), "roles": roles}


def _roles_of(value):
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        return []
    return sorted({str(role).strip() for role in value if str(role).strip()})


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
        ``session_id``, ``job_id``, ``query_status``, ``api``, ...) are left
        out; None values are kept (they are sent as the explicit-empty
        marker).  Order does not matter.  Numbers are compared by value: ``10``,
        ``10.0`` and ``numpy.int64(10)`` give the same key, while the string
        ``"10"`` does not.  Lists, tuples and dictionaries are compared as
        JSON (sorted keys, list order kept); other objects by their `str`.
    user : `~astroquery_mmoda.tokens.TokenInfo`, dict, str or None
        The token's description (or its claims, or an identity string); None
        or empty for anonymous queries.  The identity is ``sub``, else
        ``email``; the token's roles count too, so a result fetched with a
        role is never served to a token without it.  Different users never
        share a key; a token with no identity shares with no other token.

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
    # None stays: it is sent as the explicit-empty marker, which the server reads differently.
    kept = {str(name): _canonical(jsonable(value)) for name, value in (params or {}).items()
            if str(name) not in IGNORED_PARAMETERS}
    document = {
        "version": _KEY_VERSION,
        "url": normalise_url(url),
        "instrument": None if instrument is None else str(instrument),
        "product": None if product is None else str(product),
        "query_type": None if query_type is None else str(query_type),
        "params": kept,
        "user": _identity(user),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    slower for a 10 % smaller file.  NaN and infinities are kept.  An answer
    received through a `spool` is stored as the server sent it, embedded in
    the entry's JSON without being decoded and encoded again, unless it holds
    a token (then the answer is scrubbed and written anew).

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
        return self.directory / (check_key(key) + SUFFIX)

    def _prefix(self, key):
        """The entry's JSON up to its ``envelope`` value."""
        header = json.dumps({"format": _RESULT_FORMAT, "version": _RESULT_VERSION, "key": key,
                             "stored": now_utc()})
        return (header[:-1] + ', "envelope": ').encode("utf-8")

    def spool(self, key):
        """An `AnswerSpool` for the answer about to be received for ``key``, or None if caching is off."""
        path = self._path(key)
        if not cache_conf.cache_active:
            return None
        return AnswerSpool(path, self._prefix(key), known_secrets())

    def put(self, key, envelope, *, spool=None, token_echoes=0, complete=True):
        """Store a finished answer.

        Parameters
        ----------
        key : str
            From `cache_key`.
        envelope : dict
            The dispatcher's JSON answer.  Only answers with ``query_status``
            ``"done"`` and ``exit_status.status`` 0 are stored; tokens are
            removed first.
        spool : `AnswerSpool`, optional
            The same answer as received (from `spool`), its tokens replaced as
            they arrived: stored as it is if it replaced all of them, else
            discarded.
        token_echoes : int or None
            How often the answer as received held a token
            (`~astroquery_mmoda.protocol.Envelope.token_echoes`).
        complete : bool
            False if ``envelope`` lost data as it was decoded (see
            `~astroquery_mmoda.products.decode_products`): it is then only
            stored through ``spool``.

        Returns
        -------
        stored : bool
            False if the answer was not stored: not finished or failed,
            caching is off (``cache_conf.cache_active``), or the folder cannot
            be written (a warning says so).
        """
        path = self._path(key)
        if not cache_conf.cache_active:
            log.debug(f"MMODA cache off: result {short_key(key)} not stored")
            return False
        if not is_finished(envelope):
            log.debug(f"MMODA cache: result {short_key(key)} not stored (not a finished, successful job)")
            if spool is not None:
                spool.discard()
            return False
        if spool is not None:
            spool.wait()
            if spool.failed:  # the folder cannot be written: said once, not tried again
                spool.discard()
                return False
            if spool.keeps(envelope, token_echoes):
                stored = spool.commit()
                if stored:
                    log.debug(f"MMODA cache: stored result {short_key(key)} as received "
                              f"({spool.size} bytes)")
                return stored
            spool.discard()
        if not complete:
            log.debug(f"MMODA cache: result {short_key(key)} not stored (its data were released as they "
                      "were decoded and the answer as received could not be kept)")
            return False
        try:
            data = self._prefix(key) + json.dumps(scrub(envelope), allow_nan=True).encode("utf-8") + b"}"
        except (TypeError, ValueError) as error:
            warnings.warn(f"MMODA result {short_key(key)} not cached: not JSON ({error})",
                          AstropyUserWarning)
            return False
        if not atomic_write(self.directory, path.name, data):
            return False
        log.debug(f"MMODA cache: stored result {short_key(key)} ({len(data)} bytes)")
        return True

    def get(self, key):
        """The stored answer for ``key``.

        Returns
        -------
        envelope : dict or None
            The answer as `~astroquery_mmoda.json_decoding.decode_json` reads
            it (large base64 data as `~astroquery_mmoda.json_decoding.Base64Data`).
            None if caching is off, there is no entry, or it is older than
            ``cache_conf.cache_timeout`` seconds (None or a negative value:
            entries never expire; 0: they always have).  An unreadable entry
            is removed with a `~astroquery.exceptions.CorruptDataWarning`.
        """
        path = self._path(key)
        if not cache_conf.cache_active:
            log.debug(f"MMODA cache off: result {short_key(key)} not looked up")
            return None
        written = entry_mtime(path)
        if written is None:
            log.debug(f"MMODA cache miss: result {short_key(key)}")
            return None
        timeout = cache_conf.cache_timeout
        if timeout is not None and timeout >= 0 and time.time() - written > timeout:
            log.debug(f"MMODA cache: result {short_key(key)} expired")
            return None
        data = read_bytes(path)
        if data is None:
            log.debug(f"MMODA cache miss: result {short_key(key)}")
            return None
        try:
            document = decode_json(data)
        except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError
            discard(path, "result", f"{type(error).__name__}")
            return None
        if (isinstance(document, dict) and document.get("format") == _RESULT_FORMAT
                and document.get("version") != _RESULT_VERSION):
            log.debug(f"MMODA cache: result {short_key(key)} has an old format; removed")
            try:
                path.unlink()
            except OSError:
                pass
            return None
        if (not isinstance(document, dict) or document.get("format") != _RESULT_FORMAT
                or document.get("key") != key or not is_finished(document.get("envelope"))):
            discard(path, "result", "unexpected content")
            return None
        log.debug(f"MMODA cache hit: result {short_key(key)}")
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
        log.debug(f"MMODA cache: removed result {short_key(key)}")
        return True

    def clear(self):
        """Remove every stored result (and nothing else in the folder).

        Returns
        -------
        count : int
            How many entries were removed.
        """
        removed = clear_entries(self.directory)
        log.debug(f"MMODA cache: cleared {removed} results")
        return removed

    def keys(self):
        """Keys of the stored results, expired ones included."""
        return [path.name[:-len(SUFFIX)] for path in entry_files(self.directory)]

    def __len__(self):
        return len(self.keys())


class AnswerSpool:
    """The body of one dispatcher answer, copied into a result-cache entry as it arrives.

    Made by `ResultCache.spool` and fed by the transport, piece by piece, while
    the answer is read: storing a large answer then costs a rename, not a
    second encoding of its products or a second copy of them in memory.  Up to
    ``_SPOOL_IN_MEMORY`` bytes are kept in memory; beyond that the pieces go to
    a temporary file in the cache folder (`~astroquery_mmoda.writing.Spool`),
    written by one background thread while the answer is read and decoded
    (at most ``_QUEUED_PIECES`` pieces wait for it, and none longer than
    ``conf.timeout``: a writer that does not keep up ends the spooling).  Each of ``secrets``
    (texts) is replaced by ``<token>`` on the way; `redacted` counts them.
    Writing problems never fail the request: the spool just stops (warned once).
    """

    def __init__(self, path, prefix, secrets=()):
        self._path = path
        self._buffer = bytearray(prefix)
        self._file = None          # the Spool, once the answer outgrows the buffer
        self._slots = threading.BoundedSemaphore(_QUEUED_PIECES)
        self._last = None          # the future of the last piece handed to the writer
        self._error = None         # the writer's failure, if any
        self._reported = False
        self._secrets = tuple(secret.encode("utf-8") for secret in secrets)
        # The end of the last piece, held back: it may be the start of a secret.
        self._held = b""
        self._hold = max((len(secret) for secret in self._secrets), default=1) - 1
        self.redacted = 0
        self._opened = False       # the answer's first character was seen (must be "{")
        self._sealed = False
        self._ok = True
        self.size = 0

    @property
    def failed(self):
        """Whether writing the answer to the cache folder failed."""
        return self._error is not None

    @property
    def usable(self):
        """Whether the spool holds an answer that can be stored as it is (so far)."""
        return self._ok and self._opened and self._error is None

    def keeps(self, envelope, token_echoes):
        """Whether the answer can be stored as it arrived, ``envelope`` being it decoded.

        Every token was replaced as it arrived: as many as the decoded answer
        held where tokens are echoed (``token_echoes``), and none elsewhere.
        """
        return self.usable and self.redacted == token_echoes and not contains_secret(envelope)

    def write(self, chunk):
        """Append a piece of the answer's body."""
        if not self._ok or not chunk or self._sealed:
            return
        if not self._opened:
            start = bytes(chunk[:64]).lstrip()
            if not start:
                return  # whitespace before the answer
            self._opened = True
            self._ok = start.startswith(b"{")  # a JSON object in UTF-8, no BOM
            if not self._ok:
                return
        self.size += len(chunk)
        if self._secrets:
            for piece in self._redacted(bytes(chunk)):
                self._store(piece)
        else:
            self._store(chunk)

    def _redacted(self, chunk):
        """The pieces to store for ``chunk``: secrets replaced, a possible start of one held back."""
        held, hold, secrets = self._held, self._hold, self._secrets
        if len(chunk) >= hold:
            boundary = held + chunk[:hold]
            if not any(secret in boundary or secret in chunk for secret in secrets):
                # No secret here (the usual case): no copy of the piece.
                self._held = chunk[len(chunk) - hold:]
                return [held, memoryview(chunk)[:len(chunk) - hold]]
        data = held + chunk
        for secret in secrets:
            if secret in data:
                self.redacted += data.count(secret)
                data = data.replace(secret, _REDACTED)
        cut = max(0, len(data) - hold)
        self._held = data[cut:]
        return [data[:cut]]

    def _store(self, piece):
        if not self._ok or not len(piece) or self._error is not None:
            return
        if self._file is None:
            if len(self._buffer) + len(piece) <= _SPOOL_IN_MEMORY:
                self._buffer += piece
                return
            self._file = Spool(self._path)
            first, self._buffer = self._buffer, None
            self._hand_over(first)
        self._hand_over(piece)

    def _hand_over(self, piece):
        if not self._slots.acquire(timeout=_writer_timeout()):
            self._error = TimeoutError(f"writing fell {_writer_timeout():g} s behind")
            return
        try:
            self._last = _cache_writer().submit(self._write_piece, piece)
        except RuntimeError as error:  # the interpreter is shutting down
            self._slots.release()
            self._error = error

    def _write_piece(self, piece):
        # In the writer thread: the only one that touches the file until `wait` returns.
        try:
            if piece is _CLOSE:
                self._file.close()  # even after a failure: no file stays open
            elif self._error is None:
                if not self._file.size:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                self._file.write(piece)
        except Exception as error:
            if self._error is None:
                self._error = error
        finally:
            self._slots.release()

    def wait(self):
        """Wait until the background writer has written (or closed) everything handed to it."""
        last, self._last = self._last, None
        if last is None:
            return
        from concurrent.futures import TimeoutError as FutureTimeout  # imported with the writer

        try:
            last.result(timeout=_writer_timeout())
        except FutureTimeout:
            if self._error is None:
                self._error = TimeoutError(f"writing took longer than {_writer_timeout():g} s")

    def seal(self):
        """The whole answer has arrived: complete the entry and close its file until `commit`.

        A job group may hold many finished answers before it decodes them: none
        keeps a file open.
        """
        if self._sealed:
            return
        self._sealed = True
        if self.usable:
            self._store(self._held + b"}")
        self._held = b""
        if self._file is not None:
            self._hand_over(_CLOSE)

    def _fail(self, error):
        if self._error is None:
            self._error = error
        self.discard()

    def _report(self):
        if self._error is not None and not self._reported:
            self._reported = True
            write_failed(self._path.parent, self._path.name, self._error)

    def commit(self):
        """Make the answer the entry; returns False (with a warning) if it cannot be written."""
        self.seal()
        self.wait()
        if not self.usable:
            self.discard()
            return False
        self._ok = False
        if self._file is None:
            return atomic_write(self._path.parent, self._path.name, self._buffer)
        try:
            self._file.commit()
        except OSError as error:
            self._fail(error)
            return False
        return True

    def discard(self):
        """Drop what was received (never raises); a writing problem is reported (warned) once."""
        self._ok = False
        self._buffer = None
        try:
            self.wait()
        except Exception:  # the writer records its failures; only a cancelled future could raise
            pass
        if self._file is not None:
            self._file.discard()
        self._report()


_CLOSE = object()  # the writer's signal: the spool is complete, close its file
_writer_lock = threading.Lock()
_writer = []


def _writer_timeout():
    from . import conf

    return float(conf.timeout)


def _cache_writer():
    """The one thread that writes spooled answers (started on first use)."""
    from concurrent.futures import ThreadPoolExecutor  # only where a large answer is cached

    with _writer_lock:
        if not _writer:
            _writer.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="astroquery_mmoda-cache"))
        return _writer[0]


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

    def _path(self, server, instrument, user=None):
        identity = _identity(user)
        text = f"{normalise_url(server)}\n{instrument}"
        if identity is not None:  # what a server describes depends on who asks
            text += "\n" + json.dumps(identity, sort_keys=True)
        name = hashlib.sha256(text.encode()).hexdigest()
        return self.directory / f"{name}.json"

    def get(self, server, instrument, user=None):
        """The stored description, or None (absent, too old, unreadable, caching off).

        ``user`` is as for `cache_key`: descriptions fetched with a token are
        kept apart from anonymous ones and from other users' and roles'.
        """
        if not cache_conf.cache_active:
            return None
        path = self._path(server, instrument, user)
        timeout = cache_conf.cache_timeout
        max_age = self.max_age if timeout is None or timeout < 0 else min(timeout, self.max_age)
        written = entry_mtime(path)
        if written is None or time.time() - written > max_age:
            return None
        data = read_bytes(path)
        try:
            return json.loads(data) if data is not None else None
        except (ValueError, RecursionError):
            discard(path, "description", "not JSON")
            return None

    def put(self, server, instrument, description, user=None):
        """Store a description (for ``user``, see `get`); returns whether it was written."""
        if not cache_conf.cache_active:
            return False
        path = self._path(server, instrument, user)
        return atomic_write(self.directory, path.name, json.dumps(scrub(description)).encode())
