"""Where a request becomes a `~astroquery_mmoda.jobs.Job`: the result cache and the job journal.

A request with a finished result in the cache is answered from it (no HTTP);
an unfinished job of the same request, journaled earlier (even by another
process), is resumed; otherwise a new job is submitted.  Finished jobs leave
the journal and their decoded answers are stored.  `Submitter` does this for
`~astroquery_mmoda.core.MmodaClass`, which gives it what it needs as
functions (the server, the token, the user, the cache folder).
"""
from astroquery import log

from .cache import JobJournal, ResultCache, cache_key
from .exceptions import InvalidQueryError
from .jobs import Job
from .uploads import Upload

__all__ = ["Submitter"]


class Submitter:
    """Jobs of one client: from the result cache, resumed from the journal, or new.

    Parameters
    ----------
    client : `~astroquery_mmoda.core.MmodaClass`
        What the jobs send their requests through.
    server, token, user, cache_location : callable
        Called without arguments: the dispatcher URL, the token (or None), the
        user the cache keys belong to (or None) and the cache folder, as they
        are at the time of the call.
    on_journaled : callable, optional
        Called without arguments when a job with a token is journaled (it
        will take a while: e.g. to warn that the token expires soon).
    """

    def __init__(self, client, *, server, token, user, cache_location, on_journaled=None):
        self._client = client
        self._server = server
        self._token = token
        self._user = user
        self._cache_location = cache_location
        self._on_journaled = on_journaled

    @property
    def results(self):
        """The `~astroquery_mmoda.cache.ResultCache` in use."""
        return ResultCache(self._cache_location())

    @property
    def journal(self):
        """The `~astroquery_mmoda.cache.JobJournal` of unfinished jobs."""
        return JobJournal(self._cache_location())

    def key(self, instrument, product, query_type, params):
        """The cache and journal key of a request (converted parameters)."""
        return cache_key(url=self._server(), instrument=instrument, product=product,
                         query_type=query_type, params=params, user=self._user())

    def submit(self, instrument, product, query_type, converted, wire, *, cache=True):
        """The job of a request, its status refreshed (submitted when it is new).

        Parameters
        ----------
        instrument, product, query_type : str
        converted : dict
            The converted parameters (they make the cache key).
        wire : dict
            The same as sent (encoded).
        cache : bool
            Use the result cache.

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        key = self.key(instrument, product, query_type, converted)
        job = self._cached(key, instrument, product, query_type, wire) if cache else None
        if job is not None:
            return job
        job = self._new_job(key, instrument, product, query_type, wire, cache=cache)
        try:
            job.update()
        except InvalidQueryError as exc:
            if job.status == "new":
                raise
            # The dispatcher no longer knows the journaled job (e.g. its scratch
            # data were cleaned): forget it and submit the request again.
            log.warning(f"MMODA job {job.job_id} cannot be resumed ({exc}); submitting again")
            self.journal.remove(key)
            job = self._new_job(key, instrument, product, query_type, wire, cache=cache)
            job.update()
        return job

    def prepare(self, instrument, product, query_type, converted, wire, *, cache=True):
        """The job of a request without any request: from the cache, journaled or new (not sent)."""
        key = self.key(instrument, product, query_type, converted)
        job = self._cached(key, instrument, product, query_type, wire) if cache else None
        if job is None:
            job = self._new_job(key, instrument, product, query_type, wire, cache=cache)
        return job

    def _cached(self, key, instrument, product, query_type, wire):
        stored = self.results.get(key)
        if stored is None:
            return None
        log.debug(f"MMODA {instrument}/{product}: result from the cache")
        job = Job.from_answer(self._client, instrument, product, query_type, wire, stored)
        job._on_undecodable = lambda job: self.results.remove(key)
        return job

    def find(self, job_id, session_id=None):
        """The journal entry of a job, or None."""
        return self.journal.find(job_id, session_id)

    def attach(self, job_id, session_id, instrument, product, query_type, wire, *, key=None,
               status="submitted"):
        """A `~astroquery_mmoda.jobs.Job` for a job submitted earlier (not yet polled).

        With ``key`` (of the journal), the job leaves the journal when it
        finishes and its answer is stored in the result cache.
        """
        job = Job(self._client, instrument, product, query_type, wire, token=self._token(),
                  session_id=session_id, job_id=job_id, status=status,
                  on_finish=self._finisher(key) if key else None)
        if key:
            self._store_results(job, key)
            job._on_forget = lambda job: self.journal.remove(key)
        return job

    def _new_job(self, key, instrument, product, query_type, wire, *, cache):
        """A job for this request: the journaled one if it is unfinished, else a new one."""
        job = Job(self._client, instrument, product, query_type, wire, token=self._token(),
                  on_finish=self._finisher(key))
        if cache:
            self._store_results(job, key)
        entry = self.journal.lookup(key)
        # The key includes the server, so the entry is this server's job.
        if entry and entry.get("job_id") and entry.get("session_id"):
            job.job_id, job.session_id = entry["job_id"], entry["session_id"]
            job.status = entry.get("status") or "submitted"
            log.info(f"MMODA job {job.job_id} ({instrument}/{product}) was submitted before: "
                     "resuming it")

        def record(job):
            if any(isinstance(value, Upload) for value in wire.values()):
                return  # an uploaded file cannot be resumed from the journal's text
            if not job.finished:
                if job._token and self._on_journaled is not None:
                    self._on_journaled()
                self.journal.record(key, url=self._server(), instrument=instrument, product=product,
                                    job_id=job.job_id, session_id=job.session_id,
                                    status=job.status, params=dict(wire, query_type=query_type))
        job._on_submit = record
        job._on_forget = lambda job: self.journal.remove(key)
        return job

    def _finisher(self, key):
        def finished(job, envelope):
            self.journal.remove(key)
        return finished

    def _store_results(self, job, key):
        """Make ``job`` spool its answer as it arrives and store it once it has decoded."""
        job._on_decoded = self._storer(key)
        job._spool_for_answer = lambda: self.results.spool(key)

    def _storer(self, key):
        # Only answers that decoded are stored: a broken one is never replayed.
        def store(job, envelope):
            spool, job._spool = job._spool, None
            if envelope.succeeded:
                # decoded with its large data released: only the spool holds them still
                self.results.put(key, envelope.data, spool=spool, token_echoes=envelope.token_echoes,
                                 complete=not job._answer_data_released)
            elif spool is not None:
                spool.discard()
        return store
