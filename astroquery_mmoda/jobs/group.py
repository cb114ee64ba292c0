"""Many MMODA jobs polled together: `JobGroup`."""
import html
import threading
import time

from astroquery import log

from .. import conf
from ..display import html_table as _html_table
from ..exceptions import DispatcherUnavailable, TimeoutError
from ..progress import Progress, interactive
from .job import _duration, _seconds

__all__ = ["JobGroup"]


class JobGroup:
    """Many MMODA jobs polled together from one loop.

    Made by ``Mmoda.submit_many``.  Each job keeps its own back-off; at most
    ``conf.max_concurrent`` requests are in flight at once.  Failures are
    collected, not raised.

    Parameters
    ----------
    jobs : list of `Job`
    on_finished : callable, optional
        Called as ``on_finished(index, job)`` once per job as soon as `wait`
        sees it finished (done, failed, or ended with an error listed in
        ``errors``), jobs finished before `wait` included.  It runs in the
        thread that polled the job, one of up to ``conf.max_concurrent``: it
        must be thread-safe.  Handling each answer there bounds memory to the
        answers in flight.

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

    def __init__(self, jobs, *, on_finished=None):
        self.jobs = list(jobs)
        self.errors = {}
        self.on_finished = on_finished
        self._notified = set()
        self._notified_lock = threading.Lock()

    def __len__(self):
        return len(self.jobs)

    def __iter__(self):
        return iter(self.jobs)

    def __repr__(self):
        return f"<JobGroup of {len(self.jobs)} jobs: {self.summary()}>"

    def _repr_html_(self):
        rows = [[index, job.instrument, job.product,
                 "failed" if index in self.errors else job.status, job.job_id]
                for index, job in enumerate(self.jobs)]
        return (f"<p>JobGroup: {html.escape(self.summary())}</p>"
                + _html_table(["#", "instrument", "product", "status", "job id"], rows))

    def summary(self):
        """A one-line count such as ``"12/40 done, 3 failed"``."""
        done = sum(job.status == "done" for job in self.jobs)
        failed = sum(job.status == "failed" or index in self.errors
                     for index, job in enumerate(self.jobs))
        return f"{done}/{len(self.jobs)} done, {failed} failed"

    def _pending(self):
        return [index for index, job in enumerate(self.jobs)
                if not job.finished and index not in self.errors]

    def _notify_finished(self, index):
        job = self.jobs[index]
        if self.on_finished is None or not (job.finished or index in self.errors):
            return
        with self._notified_lock:
            if index in self._notified:
                return
            self._notified.add(index)
        self.on_finished(index, job)

    def _poll(self, index, deadline=None):
        job = self.jobs[index]
        timeout = None if deadline is None else max(0.05, deadline - time.monotonic())
        try:
            job.update(timeout)  # submits a new job, polls a running one
            if job.status == "ready":  # products are ready: fetch them at once (once)
                job.update(None if deadline is None else max(0.05, deadline - time.monotonic()))
        except KeyboardInterrupt:
            raise
        except DispatcherUnavailable as exc:
            # Still unreachable after the request's own retries: the job goes on
            # on the server, so poll it again later (until the group's deadline).
            log.warning(f"MMODA job {job.job_id or '(not submitted yet)'}: {exc}; will try again")
        except Exception as exc:  # collected per job, reported by errors/results
            self.errors[index] = exc
        self._notify_finished(index)

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
        show_progress = interactive() if show_progress is None else show_progress
        due = {index: 0.0 for index in self._pending()}
        intervals = {index: float(conf.poll_interval) for index in due}
        last_summary = None
        last_line = since = time.monotonic()
        bar = Progress(len(self.jobs)) if show_progress else None
        try:
            with ThreadPoolExecutor(max_workers=max(1, int(conf.max_concurrent))) as pool:
                for index in range(len(self.jobs)):
                    self._notify_finished(index)
                while True:
                    pending = self._pending()
                    summary = self.summary()
                    now = time.monotonic()
                    if summary != last_summary:
                        log.info(f"MMODA jobs: {summary}")
                        last_summary, last_line, since = summary, now, now
                        if bar is not None:
                            bar.update(len(self.jobs) - len(pending), summary)
                    elif now - last_line >= float(conf.heartbeat):
                        log.info(f"MMODA jobs: still {summary} after {_duration(now - since)}")
                        last_line = now
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
                    list(pool.map(lambda index: self._poll(index, deadline), ready))
                    for index in ready:
                        due[index] = time.monotonic() + intervals[index]
                        intervals[index] = min(intervals[index] * 1.5, float(conf.poll_max))
        except KeyboardInterrupt:
            log.warning(f"Interrupted ({self.summary()}); the jobs go on: call wait() again, "
                        "or repeat the same submit_many call to resume them.")
            raise
        finally:
            if bar is not None:
                bar.close()
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
