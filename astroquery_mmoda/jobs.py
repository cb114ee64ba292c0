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
from .dispatcher import raise_for_job_failure, warn_comment
from .exceptions import InvalidQueryError, TimeoutError

__all__ = ["Job", "new_session_id"]

_SCW_RE = re.compile(r"\d{12}\.\d{3}")


def new_session_id():
    """A fresh session id: 16 characters from ``[A-Z0-9]`` (the dispatcher's pattern)."""
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
        self._envelope = None
        self._result = None
        self._error = None
        self._on_finish = on_finish
        self._next_interval = float(conf.poll_interval)

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
        envelope = self._client._dispatcher.run_analysis(self._wire_params(), token=self._token)
        self._absorb(envelope)
        return self.status

    def _absorb(self, envelope):
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
        if self.status != previous or self.status == "progress" and envelope.reports:
            self._log_state(previous)
        if self.finished:
            self._finish(envelope)

    def _log_state(self, previous):
        summary = summarize_reports(self.reports) if self.status in ("progress", "ready") else ""
        if self.status == previous and not summary:
            return
        log.info(f"MMODA job {self.job_id} ({self.instrument}/{self.product}): {self.status}"
                 + (f" — {summary}" if summary else ""))

    def _finish(self, envelope):
        try:
            raise_for_job_failure(envelope)
        except Exception as exc:
            self.status = "failed"
            self._error = exc
        else:
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
            from .products import decode_products

            self._result = decode_products(self._envelope.products, job_id=self.job_id)
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
