"""MMODA jobs: submit, poll with back-off, wait, resume.

A job goes ``new → submitted → progress → ready → done`` (or ``failed``); a
synchronous product answers ``done`` at once.  The dispatcher keeps the job in
the scratch folder named by its session id and job id, so a `Job` can be
resumed from another process with the same parameters and token.
"""
import random
import re
import string
import time

from astroquery import log

from . import conf
from .dispatcher import envelope_from_data, raise_for_job_failure, warn_comment
from .exceptions import DispatcherUnavailable, InvalidQueryError, ProtocolError, TimeoutError
from .products import decode_products

__all__ = ["Job", "JobGroup", "new_session_id"]

_SCW_RE = re.compile(r"\d{12}\.\d{3}")


def new_session_id():
    """A fresh session id: 16 characters from ``[A-Z0-9]`` (the dispatcher's pattern).

    Examples
    --------
    >>> import string
    >>> session_id = new_session_id()
    >>> len(session_id), set(session_id) <= set(string.ascii_uppercase + string.digits)
    (16, True)
    """
    alphabet = string.ascii_uppercase + string.digits
    return "".join(random.SystemRandom().choice(alphabet) for _ in range(16))


def summarize_reports(reports):
    """One short phrase about back-end progress reports (ScW and node counts)."""
    if not reports:
        return ""
    scws = {r.get("scwid") for r in reports if isinstance(r.get("scwid"), str)
            and _SCW_RE.fullmatch(r.get("scwid"))}
    nodes = {r.get("node") or r.get("node_id") for r in reports} - {None}
    parts = [f"{len(reports)} report{'s' if len(reports) != 1 else ''}"]
    if scws:
        parts.append(f"{len(scws)} ScW")
    if nodes:
        parts.append(f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}")
    last = reports[-1].get("message")
    if isinstance(last, str) and last.strip():
        parts.append(f"last: {last.strip()[:80]!r}")
    return ", ".join(parts)


class Job:
    """One MMODA job.

    Made by ``Mmoda.submit`` (or ``Mmoda.get_job`` to resume one); do not
    build it directly.

    Attributes
    ----------
    job_id : str or None
        The dispatcher's job id (known after the first answer).
    session_id : str
        The session id sent with every poll.
    status : str
        ``new``, ``submitted``, ``progress``, ``ready``, ``done`` or ``failed``.
    reports : list of dict
        The back-end's progress reports so far.
    instrument, product, query_type : str

    Examples
    --------
    >>> from astroquery_mmoda import Mmoda
    >>> job = Mmoda.submit("spi_acs", "spi_acs_lc", RA=83.63, DEC=22.01, T1="2003-03-15T23:27:40",
    ...                    T2="2003-03-15T23:32:40", time_bin=2)  # doctest: +SKIP
    >>> job.job_id, job.session_id  # keep them to resume with Mmoda.get_job  # doctest: +SKIP
    >>> products = job.result(timeout=600)  # doctest: +SKIP
    """

    def __init__(self, client, instrument, product, query_type, params, *, token=None,
                 session_id=None, job_id=None, status="new", on_finish=None):
        self._client = client
        self.instrument = instrument
        self.product = product
        self.query_type = query_type
        self._params = dict(params)
        self._token = token
        self.session_id = session_id or new_session_id()
        self.job_id = job_id
        self.status = status
        self.reports = []
        self._reports_logged = 0
        self._envelope = None
        self._result = None
        self._error = None
        self._on_finish = on_finish
        self._on_submit = None
        # Set by the client: store a decoded result; drop a stored answer that
        # turned out undecodable.
        self._on_decoded = None
        self._on_undecodable = None
        self._next_interval = float(conf.poll_interval)

    @classmethod
    def from_answer(cls, client, instrument, product, query_type, params, data):
        """A finished job made from a stored answer (no request)."""
        job = cls(client, instrument, product, query_type, params)
        job._absorb(envelope_from_data(data), quiet=True)
        return job

    def __repr__(self):
        return (f"<Job {self.instrument}/{self.product} job_id={self.job_id} "
                f"session_id={self.session_id} status={self.status}>")

    @property
    def finished(self):
        """Whether the job is ``done`` or ``failed``."""
        return self.status in ("done", "failed")

    def _wire_params(self):
        params = dict(self._params, instrument=self.instrument, product_type=self.product,
                      query_type=self.query_type, session_id=self.session_id)
        if self.status == "new" or self.job_id is None:
            params["query_status"] = "new"
        else:
            params["query_status"] = self.status
            params["job_id"] = self.job_id
        return params

    def update(self):
        """Ask the dispatcher once (submitting first if needed).

        Returns
        -------
        str
            The new status.
        """
        if self.finished:
            return self.status
        previous = self.status
        envelope = self._client._dispatcher.run_analysis(self._wire_params(), token=self._token)
        self._absorb(envelope)
        if previous == "new" and self._on_submit is not None:
            self._on_submit(self)
        return self.status

    def _absorb(self, envelope, *, quiet=False):
        previous = self.status
        if envelope.job_id:
            if self.job_id and envelope.job_id != self.job_id:
                log.warning(f"MMODA answered for job {envelope.job_id} while polling {self.job_id}")
            self.job_id = envelope.job_id
        if envelope.session_id:
            self.session_id = envelope.session_id
        self.status = envelope.query_status
        if envelope.reports:
            self.reports = envelope.reports
        self._envelope = envelope
        news = self.status != previous or len(self.reports) != self._reports_logged
        if not quiet and news:
            self._log_state(previous)
            self._reports_logged = len(self.reports)
        if self.finished:
            self._finish(envelope, quiet=quiet)

    def _log_state(self, previous):
        summary = summarize_reports(self.reports) if self.status in ("progress", "ready") else ""
        if self.status == previous and not summary:
            return
        # Progress of long jobs is news (INFO); a job answered at once is not.
        level = log.debug if previous == "new" and self.finished else log.info
        level(f"MMODA job {self.job_id} ({self.instrument}/{self.product}): {self.status}"
              + (f" — {summary}" if summary else ""))

    def _finish(self, envelope, *, quiet=False):
        try:
            raise_for_job_failure(envelope)
        except Exception as exc:
            self.status = "failed"
            self._error = exc
        else:
            if not quiet:
                warn_comment(envelope)
        if self._on_finish is not None:
            self._on_finish(self, envelope)

    def wait(self, timeout=None):
        """Poll until the job is done or failed.

        Polls start ``conf.poll_interval`` apart and slow down by half each
        time, up to ``conf.poll_max`` seconds.

        Parameters
        ----------
        timeout : float or `~astropy.units.Quantity`, optional
            Longest wait in seconds (default ``conf.job_timeout``).

        Returns
        -------
        Job
            ``self``.

        Raises
        ------
        astroquery_mmoda.exceptions.TimeoutError
            When time is up; the job goes on and can be waited for again.
        """
        timeout = _seconds(timeout if timeout is not None else conf.job_timeout, "timeout")
        deadline = time.monotonic() + timeout
        try:
            if self.status == "new":
                self.update()
            while not self.finished:
                if self.status == "ready":
                    self.update()  # the products are ready: fetch them now
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"MMODA job {self.job_id} is still {self.status} after {timeout:g} s; "
                        f"wait again with job.wait() or resume it later with "
                        f"Mmoda.get_job({self.job_id!r}, {self.session_id!r})",
                        job_id=self.job_id, session_id=self.session_id)
                time.sleep(min(self._next_interval, remaining))
                self._next_interval = min(self._next_interval * 1.5, float(conf.poll_max))
                self.update()
        except KeyboardInterrupt:
            if self.job_id:
                log.warning(f"Interrupted; MMODA job {self.job_id} goes on. Resume it with "
                            f"Mmoda.get_job({self.job_id!r}, {self.session_id!r}) or by "
                            "repeating the same call.")
            raise
        return self

    def result(self, timeout=None):
        """The job's products, waiting for them if needed.

        Returns
        -------
        `~astroquery_mmoda.products.ProductSet`

        Raises
        ------
        astroquery_mmoda.exceptions.JobFailedError
            If the job failed (`~astroquery_mmoda.exceptions.NoDataError` when
            it found no data).
        """
        if not self.finished:
            self.wait(timeout)
        if self._error is not None:
            raise self._error
        if self._result is None:
            try:
                self._result = decode_products(self._envelope.products, job_id=self.job_id,
                                               product=self.product)
            except ProtocolError:
                if self._on_undecodable is not None:
                    self._on_undecodable(self)
                raise
            if self._on_decoded is not None:
                self._on_decoded(self, self._envelope)
        return self._result


def _seconds(value, name):
    if hasattr(value, "to_value"):
        value = value.to_value("s")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidQueryError(f"{name} must be a number of seconds or a time Quantity") from None
    if not value > 0:
        raise InvalidQueryError(f"{name} must be positive, not {value}")
    return value


def _interactive():
    import sys

    try:
        from IPython import get_ipython
        if get_ipython() is not None:
            return True
    except ImportError:
        pass
    return sys.stdout.isatty()


class JobGroup:
    """Many MMODA jobs polled together from one loop.

    Made by ``Mmoda.submit_many``.  Each job keeps its own back-off; at most
    ``conf.max_concurrent`` requests are in flight at once.  Failures are
    collected, not raised.

    Attributes
    ----------
    jobs : list of `Job`
        In submission order.

    Examples
    --------
    >>> from astroquery_mmoda import Mmoda
    >>> queries = [("spi_acs", "spi_acs_lc", dict(RA=83.63, DEC=22.01, T1=t1, T2=t2, time_bin=2))
    ...            for t1, t2 in [("2003-03-15T23:27:40", "2003-03-15T23:32:40"),
    ...                           ("2003-03-16T01:00:00", "2003-03-16T01:05:00")]]
    >>> group = Mmoda.submit_many(queries)  # doctest: +SKIP
    >>> group.wait(timeout=3600).summary()  # doctest: +SKIP
    '2/2 done, 0 failed'
    >>> products = group.results()  # a ProductSet or an exception per job  # doctest: +SKIP
    """

    def __init__(self, jobs):
        self.jobs = list(jobs)
        self.errors = {}

    def __len__(self):
        return len(self.jobs)

    def __iter__(self):
        return iter(self.jobs)

    def __repr__(self):
        return f"<JobGroup: {self.summary()}>"

    def summary(self):
        """A one-line count such as ``"12/40 done, 3 failed"``."""
        done = sum(job.status == "done" for job in self.jobs)
        failed = sum(job.status == "failed" or index in self.errors
                     for index, job in enumerate(self.jobs))
        return f"{done}/{len(self.jobs)} done, {failed} failed"

    def _pending(self):
        return [index for index, job in enumerate(self.jobs)
                if not job.finished and index not in self.errors]

    def _poll(self, index):
        job = self.jobs[index]
        try:
            job.update()  # submits a new job, polls a running one
            while job.status == "ready":  # products are ready: fetch them at once
                job.update()
        except KeyboardInterrupt:
            raise
        except DispatcherUnavailable as exc:
            # Still unreachable after the request's own retries: the job goes on
            # on the server, so poll it again later (until the group's deadline).
            log.warning(f"MMODA job {job.job_id or '(not submitted yet)'}: {exc}; will try again")
        except Exception as exc:  # collected per job, reported by errors/results
            self.errors[index] = exc

    def wait(self, timeout=None, *, show_progress=None):
        """Poll every job until all are finished (or time is up).

        Parameters
        ----------
        timeout : float or `~astropy.units.Quantity`, optional
            Longest wait in seconds (default ``conf.job_timeout``).
        show_progress : bool, optional
            Show a progress bar (default: when the session is interactive).

        Returns
        -------
        JobGroup
            ``self``.

        Raises
        ------
        astroquery_mmoda.exceptions.TimeoutError
            When time is up; every unfinished job can still be waited for.
        """
        from concurrent.futures import ThreadPoolExecutor

        timeout = _seconds(timeout if timeout is not None else conf.job_timeout, "timeout")
        deadline = time.monotonic() + timeout
        show_progress = _interactive() if show_progress is None else show_progress
        due = {index: 0.0 for index in self._pending()}
        intervals = {index: float(conf.poll_interval) for index in due}
        last_summary = None
        bar = None
        if show_progress:
            from astropy.utils.console import ProgressBar
            bar = ProgressBar(len(self.jobs))
        try:
            with ThreadPoolExecutor(max_workers=max(1, int(conf.max_concurrent))) as pool:
                while True:
                    pending = self._pending()
                    summary = self.summary()
                    if summary != last_summary:
                        log.info(f"MMODA jobs: {summary}")
                        last_summary = summary
                        if bar is not None:
                            bar.update(len(self.jobs) - len(pending))
                    if not pending:
                        break
                    now = time.monotonic()
                    if now >= deadline:
                        raise TimeoutError(
                            f"{len(pending)} of {len(self.jobs)} MMODA jobs are not finished after "
                            f"{timeout:g} s ({summary}); call wait() again to go on")
                    ready = [index for index in pending if due.get(index, 0.0) <= now]
                    if not ready:
                        time.sleep(max(0.0, min(min(due[i] for i in pending), deadline) - now))
                        continue
                    list(pool.map(self._poll, ready))
                    for index in ready:
                        due[index] = time.monotonic() + intervals[index]
                        intervals[index] = min(intervals[index] * 1.5, float(conf.poll_max))
        except KeyboardInterrupt:
            log.warning(f"Interrupted ({self.summary()}); the jobs go on: call wait() again, "
                        "or repeat the same submit_many call to resume them.")
            raise
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        return self

    def results(self):
        """Each job's products, or the exception it ended with, in submission order.

        Returns
        -------
        list
            Per job: a `~astroquery_mmoda.products.ProductSet`, the exception
            it failed with, or None if it is not finished.
        """
        out = []
        for index, job in enumerate(self.jobs):
            if index in self.errors:
                out.append(self.errors[index])
            elif not job.finished:
                out.append(None)
            else:
                try:
                    out.append(job.result())
                except Exception as exc:  # a failed job's error, returned in its place
                    out.append(exc)
        return out

    @property
    def failures(self):
        """``{index: exception}`` of the jobs that failed."""
        return {index: result for index, result in enumerate(self.results())
                if isinstance(result, Exception)}
