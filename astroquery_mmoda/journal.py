"""The journal of unfinished MMODA jobs, so that an interrupted query can be resumed.

It lives in the sub-folder ``jobs`` of the client's cache folder
(``Mmoda.cache_location``).  Nothing of it holds a token: everything is passed
through `~astroquery_mmoda.redaction.scrub` before it is written.
"""
import json
import threading
from pathlib import Path

from astroquery import log

from .cache_files import (SUFFIX, atomic_write, check_key, clear_entries, discard, entry_files,
                          jsonable, normalise_url, now_utc, read_bytes, short_key)
from .redaction import redact, scrub

__all__ = ["JobJournal", "JOURNAL_COLUMNS"]

#: Columns of `JobJournal.as_table`.
JOURNAL_COLUMNS = ("job_id", "session_id", "instrument", "product", "status", "submitted",
                   "updated", "url")

_JOB_FORMAT = "astroquery_mmoda-job"
_JOB_VERSION = 1
# Read-modify-write of journal entries is serialised within the process;
# across processes the last complete write wins.
_journal_lock = threading.RLock()


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
        return self.directory / (check_key(key) + SUFFIX)

    def _write(self, entry):
        document = {"format": _JOB_FORMAT, "version": _JOB_VERSION, **entry}
        data = json.dumps(document, allow_nan=True, indent=1).encode("utf-8")
        return atomic_write(self.directory, entry["key"] + SUFFIX, data)

    def _load(self, path):
        data = read_bytes(path)
        if data is None:
            return None
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as error:
            discard(path, "job entry", type(error).__name__)
            return None
        if (not isinstance(document, dict) or document.get("format") != _JOB_FORMAT
                or document.get("key") != path.name[:-len(SUFFIX)]
                or not isinstance(document.get("job_id"), str)):
            discard(path, "job entry", "unexpected content")
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
        now = now_utc()
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
                "url": redact(normalise_url(url)),
                "params": scrub(jsonable(params)) if params is not None else None,
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
        log.debug(f"MMODA journal {'hit' if entry else 'miss'}: {short_key(key)}")
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
            entry["updated"] = now_utc()
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
        log.debug(f"MMODA journal: removed {short_key(key)}")
        return True

    def entries(self):
        """All recorded jobs, oldest submission first, as dicts (see `lookup`)."""
        found = (self._load(path) for path in entry_files(self.directory))
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
            removed = clear_entries(self.directory)
        log.debug(f"MMODA journal: cleared {removed} jobs")
        return removed

    def __len__(self):
        return len(entry_files(self.directory))
