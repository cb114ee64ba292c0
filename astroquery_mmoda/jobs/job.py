"""One MMODA job: submit, poll with back-off, wait, resume.

See `astroquery_mmoda.jobs` for the states a job goes through.
"""
import random
import re
import string
import time

from astropy.units import UnitsError
from astroquery import log

from .. import conf
from ..display import html_table as _html_table
from ..exceptions import DispatcherUnavailable, InvalidQueryError, ProtocolError, TimeoutError
from ..products import decode_products
from ..protocol import envelope_from_data, raise_for_job_failure, warn_comment

__all__ = ["Job", "new_session_id", "summarize_reports"]

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
    nodes = {node for node in (r.get("node") or r.get("node_id") for r in reports)
             if isinstance(node, (str, int)) and not isinstance(node, bool)}
    parts = [f"{len(reports)} report{'s' if len(reports) != 1 else ''}"]
    if scws:
        parts.append(f"{len(scws)} ScW")
    if nodes:
        parts.append(f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}")
    last = reports[-1].get("message") if isinstance(reports[-1], dict) else None
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
        # The dispatcher answers return_progress requests with the back-end's
        # progress only and never runs or finishes the job on them: the job is
        # driven by ordinary polls, the progress fetched beside them.
        self._return_progress = str(self._params.pop("return_progress", False)) == "True"
        #: dict or None: the products of the last progress answer (``return_progress=True`` jobs).
        self.progress = None
        self._token = token
        self.session_id = session_id or new_session_id()
        self.job_id = job_id
        self.status = status
        self.reports = []
        self._reports_logged = 0
        self._envelope = None
        self._result = None
        self._released = False
        self._answer_data_released = False  # large data left the answer as they were decoded
        self._error = None
        self._on_finish = on_finish
        self._on_submit = None
        # Set by the client: store a decoded result; drop a stored answer that
        # turned out undecodable.
        self._on_decoded = None
        self._on_undecodable = None
        self._on_forget = None
        # Set by the client when results are cached: a new AnswerSpool per
        # exchange; the finished answer's one is kept until it is stored.
        self._spool_for_answer = None
        self._spool = None
        self._next_interval = float(conf.poll_interval)
        self._since = None       # when the job entered its current state (monotonic)
        self._last_line = time.monotonic()  # when its last INFO line was logged

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

    def update(self, timeout=None):
        """Ask the dispatcher once (submitting first if needed).

        Parameters
        ----------
        timeout : float, optional
            Longest time for the exchange, in seconds (at most ``conf.timeout``).

        Returns
        -------
        str
            The new status.
        """
        if self.finished:
            return self.status
        previous = self.status
        spool = self._spool_for_answer() if self._spool_for_answer is not None else None
        try:
            envelope = self._client._dispatcher.run_analysis(self._wire_params(), token=self._token,
                                                             timeout=timeout, spool=spool)
        except BaseException:
            if spool is not None:
                spool.discard()
            raise
        if spool is not None:
            if envelope.succeeded and envelope.token_echoes is not None:
                spool.seal()
                self._spool = spool
            else:
                spool.discard()
        self._absorb(envelope)
        if previous == "new" and self._on_submit is not None:
            self._on_submit(self)
        if self._return_progress and not self.finished:
            self._fetch_progress(timeout)
        return self.status

    def _fetch_progress(self, timeout=None):
        params = dict(self._wire_params(), return_progress="True")
        answer = self._client._dispatcher.run_analysis(params, token=self._token, timeout=timeout)
        if answer.products:
            self.progress = {key: value for key, value in answer.products.items()
                             if key not in ("analysis_parameters", "api_code")}
            log.debug(f"MMODA job {self.job_id}: progress {sorted(self.progress)}")

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
        now = time.monotonic()
        if self._since is None or self.status != previous:
            self._since = now
        if not quiet and news:
            self._log_state(previous)
            self._reports_logged = len(self.reports)
            self._last_line = now
        elif not quiet and not self.finished and now - self._last_line >= float(conf.heartbeat):
            self._heartbeat(now)
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

    def _heartbeat(self, now):
        """The INFO line that says a long job is alive while its state does not change."""
        summary = summarize_reports(self.reports)
        log.info(f"MMODA {self.product} job {(self.job_id or '')[:8]}: still {self.status} after "
                 f"{_duration(now - self._since)}" + (f"; {summary}" if summary else ""))
        self._last_line = now

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
        fetched_ready = False
        try:
            if self.status == "new":
                self._update_before(deadline, timeout)
            while not self.finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout_error(timeout)
                if self.status == "ready" and not fetched_ready:
                    fetched_ready = True  # the products are ready: fetch them now, once
                else:
                    time.sleep(min(self._next_interval, remaining))
                    self._next_interval = min(self._next_interval * 1.5, float(conf.poll_max))
                self._update_before(deadline, timeout)
        except KeyboardInterrupt:
            if self.job_id:
                log.warning(f"Interrupted; MMODA job {self.job_id} goes on. Resume it with "
                            f"Mmoda.get_job({self.job_id!r}, {self.session_id!r}) or by "
                            "repeating the same call.")
            raise
        return self

    def _timeout_error(self, timeout):
        return TimeoutError(
            f"MMODA job {self.job_id} is still {self.status} after {timeout:g} s; "
            f"wait again with job.wait() or resume it later with "
            f"Mmoda.get_job({self.job_id!r}, {self.session_id!r})",
            job_id=self.job_id, session_id=self.session_id)

    def _update_before(self, deadline, timeout):
        """One poll that ends by ``deadline``; a poll cut short by it is a `TimeoutError`."""
        failure = None
        try:
            self.update(timeout=max(0.05, deadline - time.monotonic()))
        except DispatcherUnavailable as exc:
            if time.monotonic() < deadline:
                raise
            failure = self._timeout_error(timeout)
            failure.__cause__ = None
            del exc
        if failure is not None:
            raise failure

    def _repr_html_(self):
        return _html_table(["instrument", "product", "status", "job id", "session id"],
                           [[self.instrument, self.product, self.status, self.job_id, self.session_id]])

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
        if self._released:
            raise InvalidQueryError(f"the products of MMODA job {self.job_id} were released; "
                                    "ask for them again (the result cache keeps them)")
        if self._result is None:
            try:
                # The large data go as they are decoded, unless the cache will store
                # the decoded answer (the answer as received cannot be kept).
                envelope, spool = self._envelope, self._spool
                self._answer_data_released = self._on_decoded is None or (
                    spool is not None and spool.keeps(envelope.data, envelope.token_echoes))
                self._result = decode_products(envelope.products, job_id=self.job_id,
                                               product=self.product, release=self._answer_data_released)
            except ProtocolError:
                self._drop_spool()
                if self._on_undecodable is not None:
                    self._on_undecodable(self)
                raise
            if self._on_decoded is not None:
                self._on_decoded(self, self._envelope)
            self._drop_spool()
            # The answer's text (about the size of the products) is not needed again.
            self._envelope = None
        return self._result

    def _drop_spool(self):
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.discard()

    def release(self):
        """Forget the job's answer and decoded products (its status stays).

        For callers that keep what they need of the products elsewhere, e.g. a
        campaign that has folded them into its combination; `result` then
        raises `~astroquery.exceptions.InvalidQueryError`.
        """
        self._envelope = self._result = None
        self._released = self.finished
        self._drop_spool()

    def forget(self):
        """Drop the job from the journal of unfinished jobs, so that the same request is submitted anew.

        The dispatcher offers no way to cancel a job: it goes on there, and
        its ids still reach it (``Mmoda.get_job(job_id, session_id, ...)``).
        A finished job is not in the journal; forgetting it does nothing.
        """
        if self._on_forget is not None:
            self._on_forget(self)
        self._on_submit = None  # not journaled again by this object


def _duration(seconds):
    """``"45 s"``, ``"3 min"``, ``"2.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _seconds(value, name):
    try:
        if hasattr(value, "to_value"):
            value = value.to_value("s")
        value = float(value)
    except (TypeError, ValueError, OverflowError, UnitsError):
        raise InvalidQueryError(f"{name} must be a number of seconds or a time Quantity "
                                "(a single one)") from None
    if not value > 0:
        raise InvalidQueryError(f"{name} must be positive, not {value}")
    return value
