"""The wire layer: HTTP exchanges with the MMODA dispatcher.

Everything here speaks the dispatcher's protocol and nothing else: parameter
encoding, the endpoints, the JSON envelope of answers, and the mapping of HTTP
statuses and failed jobs to the exceptions of `astroquery_mmoda.exceptions`.
It knows nothing of astropy objects.
"""
import json
import logging
import math
import re
import numbers
import time
import warnings
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from astroquery import log

from . import conf
from .auth import TokenManager, check_server_url
from .callers import user_stacklevel
from .exceptions import _shorten
from .exceptions import (DispatcherUnavailable, InvalidQueryError, JobFailedError, LoginError,
                         MmodaServiceError, NoDataError, ProtocolError, TokenExpiredError)
# parse_meta_data is re-exported: it lived here before metadata.py.
from .metadata import loads_json, parse_meta_data  # noqa: F401
from .redaction import RedactingFilter, redact, scrub

__all__ = ["Envelope", "DispatcherClient", "encode_params", "MmodaWarning"]

#: Value the dispatcher reads as "explicitly empty optional parameter".
NULL = "\x00"
# Sent as given, never JSON-encoded: the server parses these itself.
_COMMA_LISTS = ("scw_list", "catalog_selected_objects")
_TRANSIENT_STATUSES = (502, 503, 504)
_MAX_SAME_ORIGIN_REDIRECTS = 3
_CONNECT_TIMEOUT = 30.0
_READ_CHUNK = 1 << 20
# Messages of jobs that ran but found nothing to work on.
_NO_DATA_MARKERS = ("failed: get dataserver products", "no usable data", "nodata", "no data")
_TERMINAL = ("done", "failed")
# Paragraphs of the dispatcher's failure texts that say nothing about the failure.
_BOILERPLATE_RE = re.compile(r"support team has been notified|write a feedback|investigating to resolve",
                             re.IGNORECASE)
_STATUS_RE = re.compile(r"[a-z][a-z_-]{0,31}")


class MmodaWarning(UserWarning):
    """Something the dispatcher said that the user should know.

    Examples
    --------
    >>> import warnings
    >>> from astroquery_mmoda import Mmoda
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", MmodaWarning)  # e.g. comments on unused parameters
    ...     products = Mmoda.get_product("spi_acs", "spi_acs_lc", RA=83.63, DEC=22.01,
    ...                                  T1="2003-03-15T23:27:40", T2="2003-03-15T23:32:40",
    ...                                  time_bin=2)  # doctest: +SKIP
    """


def _encode_value(key, value):
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "True" if value else "False"
    if key in _COMMA_LISTS and isinstance(value, (list, tuple, set)):
        items = [str(item).strip() for item in value]
        return ",".join(items)
    if isinstance(value, (dict, list, tuple, set)):
        if isinstance(value, set):
            value = sorted(value)
        return json.dumps(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise InvalidQueryError(f"parameter {key!r} must be a finite number, not {value}")
        return repr(value)
    if isinstance(value, bytes):
        raise InvalidQueryError(f"parameter {key!r}: bytes cannot be sent, give a str")
    return str(value)


def encode_params(params):
    """Encode parameters the way the dispatcher parses them.

    * ``None`` → ``"\\x00"`` (an explicitly empty optional parameter);
    * booleans → ``"True"``/``"False"``;
    * ``scw_list`` and ``catalog_selected_objects`` given as sequences → one
      comma-separated string (repeated keys would lose all values but one);
    * other lists, tuples, sets and dicts → JSON (``selected_catalog`` must be
      given as its JSON string or dict);
    * numbers → their shortest exact decimal form; NaN and infinities refused.

    Parameters
    ----------
    params : dict
        Parameter names and Python values.

    Returns
    -------
    dict
        Parameter names and strings.

    Examples
    --------
    >>> encode_params({"flag": True, "scw_list": ["066500230010.001", "066500240010.001"],
    ...                "E1_keV": 30, "RA": 83.63, "selected_catalog": None})
    {'flag': 'True', 'scw_list': '066500230010.001,066500240010.001', 'E1_keV': '30', 'RA': '83.63',
     'selected_catalog': '\\x00'}
    """
    encoded = {}
    for key, value in params.items():
        if key == "scw_list" and isinstance(value, str) and " " in value.strip():
            raise InvalidQueryError(
                "scw_list must be comma-separated (or a list), not separated by spaces")
        encoded[key] = _encode_value(key, value)
    return encoded


@dataclass
class Envelope:
    """A parsed ``run_analysis`` answer, tokens removed.

    Attributes
    ----------
    query_status : str
        ``submitted``, ``progress``, ``ready``, ``done`` or ``failed``.
    job_id, session_id : str or None
    exit_status : dict
    reports : list of dict
        The back-end's progress reports (``job_monitor.full_report_dict_list``).
    products : dict
        The encoded products (decoded by `astroquery_mmoda.products`).
    data : dict
        The whole answer (its token echoes removed), as cached.

    Examples
    --------
    >>> envelope = parse_envelope('{"query_status": "done", "exit_status": {"status": 0}, '
    ...                           '"job_monitor": {"job_id": "d0c4a1e2", "session_id": "ABCDEFGH12345678"}}')
    >>> envelope.job_id, envelope.session_id, envelope.finished, envelope.succeeded
    ('d0c4a1e2', 'ABCDEFGH12345678', True, True)
    """
    query_status: str
    job_id: str = None
    session_id: str = None
    exit_status: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)
    products: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict, repr=False)

    @property
    def finished(self):
        return self.query_status in _TERMINAL

    @property
    def succeeded(self):
        return self.query_status == "done" and self.exit_status.get("status", 0) == 0

    @property
    def comment(self):
        return (self.exit_status.get("comment") or "").strip()


def _strip_token_echoes(data):
    """Remove the token that the dispatcher echoes back in its answers.

    Only the small, known places are scrubbed: product data are never copied.
    """
    data = dict(data)
    for key in ("job_monitor", "exit_status", "analysis_parameters"):
        if key in data:
            data[key] = scrub(data[key])
    products = data.get("products")
    if isinstance(products, dict):
        products = dict(products)
        for key in ("analysis_parameters", "api_code", "instrument_parameters", "input_param_dict"):
            if key in products:
                products[key] = scrub(products[key])
        data["products"] = products
    return data


def parse_envelope(content):
    """Parse and check a ``run_analysis`` answer.

    Parameters
    ----------
    content : bytes or str
        The HTTP body.

    Returns
    -------
    Envelope

    Raises
    ------
    ProtocolError
        If the body is not JSON or lacks the fields every answer has.
    """
    return envelope_from_data(loads_json(content))


def envelope_from_data(data):
    """Check a decoded ``run_analysis`` answer (see `parse_envelope`) and wrap it."""
    if not isinstance(data, dict):
        raise ProtocolError(f"the dispatcher's answer is a JSON {type(data).__name__}, not an object")
    data = _strip_token_echoes(data)
    status = data.get("query_status")
    if not isinstance(status, str) or not status:
        raise ProtocolError("the dispatcher's answer has no query_status")
    if not _STATUS_RE.fullmatch(status):
        raise ProtocolError(f"the dispatcher's answer has an unknown query_status "
                            f"{_shorten(status, 40)!r}")
    exit_status, monitor, products = (
        {} if data.get(key) is None else data[key] for key in ("exit_status", "job_monitor", "products"))
    if not isinstance(exit_status, dict) or not isinstance(monitor, dict) \
            or not isinstance(products, dict):
        raise ProtocolError("the dispatcher's answer has exit_status, job_monitor or products "
                            "of the wrong type")
    exit_code = exit_status.get("status", 0)
    if isinstance(exit_code, bool) or not isinstance(exit_code, (int, float)):
        raise ProtocolError(f"exit_status.status is {exit_code!r}, not a number")
    job_id = monitor.get("job_id")
    session_id = monitor.get("session_id") or data.get("session_id")
    for name, value in (("job_id", job_id), ("session_id", session_id)):
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"{name} is {type(value).__name__}, not a string")
    reports = monitor.get("full_report_dict_list") or []
    if not isinstance(reports, list):
        reports = []
    return Envelope(query_status=status, job_id=job_id, session_id=session_id,
                    exit_status=exit_status, reports=[r for r in reports if isinstance(r, dict)],
                    products=products, data=data)


def _text_field(mapping, name):
    value = mapping.get(name) if isinstance(mapping, dict) else None
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _useful(text):
    """``text`` without the dispatcher's boilerplate paragraphs (support team, feedback button)."""
    kept = [part.strip() for part in re.split(r"\n\s*\n", text)
            if part.strip() and not _BOILERPLATE_RE.search(part)]
    return " ".join(" ".join(kept).split())


def failure_reason(exit_status):
    """What a failed job's ``exit_status`` says, as one line, and whether it means "no data".

    Dispatcher 1.3.3 puts the reason in ``message`` and ``error_message``;
    1.3.6 puts the plugin's exception in ``debug_message`` (e.g.
    ``SpiacsAnalysisException('no usable data found')``) next to a generic
    "the support team has been notified" text.  All three are read.

    Returns
    -------
    text : str
        The distinct useful parts joined by "; " (tokens removed, shortened).
    no_data : bool
        Whether any of them carries a no-data marker.

    Examples
    --------
    >>> failure_reason({"message": "Error when getting query products",
    ...                 "error_message": "The support team has been notified",
    ...                 "debug_message": "SpiacsAnalysisException('no usable data found')"})
    ("Error when getting query products; SpiacsAnalysisException('no usable data found')", True)
    """
    parts = []
    for name in ("message", "error_message", "debug_message"):
        text = _useful(redact(_shorten(_text_field(exit_status, name), 4000)))
        if text and not any(text in seen for seen in parts):
            parts.append(_shorten(text, 1000))
    joined = "; ".join(parts)
    lowered = joined.lower().replace(" ", "")
    no_data = any(marker.replace(" ", "") in lowered for marker in _NO_DATA_MARKERS)
    return joined, no_data


def raise_for_job_failure(envelope):
    """Raise `JobFailedError` (or `NoDataError`) if the envelope reports a failure.

    A ``done`` answer whose ``exit_status.status`` is not 0 is a failure too.
    The message is `failure_reason`'s.
    """
    failed = envelope.query_status == "failed" or (
        envelope.query_status == "done" and envelope.exit_status.get("status", 0) != 0)
    if not failed:
        return
    text, no_data = failure_reason(envelope.exit_status)
    kind = NoDataError if no_data else JobFailedError
    error = kind(f"MMODA job failed: {text or 'the job failed'}", job_id=envelope.job_id,
                 status_code=envelope.data.get("status_code"),
                 debug_message=_text_field(envelope.exit_status, "debug_message"))
    raise error


_URLLIB3_FILTER = RedactingFilter()


class _RetryNoticeFilter(logging.Filter):
    """urllib3's "Retrying (...)" warnings become DEBUG lines of ours (the error says it all)."""

    def filter(self, record):
        if record.levelno >= logging.WARNING and str(record.msg).startswith(("Retrying", "Connection pool")):
            log.debug(f"MMODA: {redact(record.getMessage())[:300]}")
            return False
        return True


_RETRY_NOTICE_FILTER = _RetryNoticeFilter()


def install_log_redaction():
    """Make urllib3's DEBUG lines (which show full URLs) token-free, and its retry warnings quiet."""
    for name in ("urllib3.connectionpool", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        for wanted in (_URLLIB3_FILTER, _RETRY_NOTICE_FILTER):
            if wanted not in logger.filters:
                logger.addFilter(wanted)


def _error_text(response):
    """The dispatcher's own message from an error answer, tokens removed."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        exit_status = body.get("exit_status") if isinstance(body.get("exit_status"), dict) else {}
        for text in (exit_status.get("message"), body.get("error_message"), body.get("error"),
                     body.get("message")):
            if isinstance(text, str) and text.strip():
                return _shorten(redact(text.strip()), 2000), body
    text = response.text.strip() if response.text else ""
    if "<html" in text.lower():
        text = f"HTTP {response.status_code} {response.reason or ''}".strip()
    return redact(text[:500]), body if isinstance(body, dict) else {}


class DispatcherClient:
    """HTTP exchanges with one dispatcher, through an astroquery query object.

    Parameters
    ----------
    query : `astroquery.query.BaseQuery`
        Its ``_request`` and session carry every request.
    server : callable
        Returns the dispatcher's root URL (read at each request).

    Examples
    --------
    >>> from astroquery.query import BaseQuery
    >>> client = DispatcherClient(BaseQuery(), lambda: "https://www.astro.unige.ch/mmoda/dispatch-data/")
    >>> client.url
    'https://www.astro.unige.ch/mmoda/dispatch-data'
    >>> client.instruments()  # the names visible without a token  # doctest: +SKIP
    >>> client.parameter_names("spi_acs", "spi_acs_lc")  # doctest: +SKIP
    """

    def __init__(self, query, server):
        self._query = query
        self._server = server
        self._retries = None
        install_log_redaction()

    @property
    def url(self):
        return self._server().rstrip("/")

    def _mount_retries(self):
        # urllib3 does the retrying: exponential back-off on connection errors
        # and gateway statuses; re-mounted when conf.max_retries changes.
        retries = int(conf.max_retries)
        if retries != self._retries:
            options = dict(total=retries, connect=retries, read=retries, status=retries,
                           backoff_factor=0.5, status_forcelist=_TRANSIENT_STATUSES,
                           allowed_methods=frozenset({"GET", "POST"}),
                           raise_on_status=False, respect_retry_after_header=True)
            try:
                policy = _CappedRetry(backoff_max=8, **options)
            except TypeError:  # urllib3 < 2 has a fixed maximum back-off
                policy = _CappedRetry(**options)
            adapter = HTTPAdapter(max_retries=policy, pool_maxsize=max(int(conf.max_concurrent), 10))
            self._query._session.mount("http://", adapter)
            self._query._session.mount("https://", adapter)
            self._retries = retries

    def request(self, path, params, *, token=None, method=None, allow_redirects=True,
                timeout=None):
        """One exchange with the dispatcher; returns the `requests.Response` of a 2xx answer.

        ``timeout`` (default ``conf.timeout``) bounds the whole exchange, the
        answer's body included; the body may not exceed ``conf.max_answer_size``.
        A request that carries the token follows no redirect except to the same
        dispatcher (scheme, host and port).  Plain-http requests never use a
        proxy of the environment.  Raises the package's exceptions for
        everything else; they are raised outside any ``except`` block, so no
        exception of the HTTP library (whose text may hold the token) is
        attached to them.
        """
        try:
            outcome = self._exchange(path, params, token, method, allow_redirects, timeout)
        finally:
            token = params = None  # frames of a traceback keep their locals
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _exchange(self, path, params, token, method, allow_redirects, timeout):
        """The response, or the exception to raise (built outside the HTTP library's ``except``)."""
        self._mount_retries()
        url = f"{self.url}/{path}"
        check_server_url(url)
        params = dict(params)
        if token:
            TokenManager.check_transport(url)
            params["token"] = token
            allow_redirects = False  # same-origin redirects are followed below
        # File parameters (astroquery_mmoda.uploads.Upload) go as multipart parts, by POST.
        files = {name: params.pop(name).multipart for name in
                 [name for name, value in params.items() if hasattr(value, "multipart")]}
        if files:
            method = "POST"
        if method is None:
            method = "POST" if len(json.dumps(params)) > int(conf.post_threshold) else "GET"
        log.debug(f"MMODA {method} {path} ({', '.join(sorted(k for k in params if k != 'token'))})")
        timeout = min(float(timeout), float(conf.timeout)) if timeout else float(conf.timeout)
        deadline = time.monotonic() + timeout
        try:
            for _ in range(_MAX_SAME_ORIGIN_REDIRECTS + 1):
                outcome = self._send(method, url, params, files, allow_redirects, timeout, deadline)
                if isinstance(outcome, BaseException):
                    return outcome
                target = _same_origin_redirect(url, outcome) if token else None
                if target is None:
                    break
                outcome.close()
                url = target
        finally:
            params = token = None
        if isinstance(outcome, requests.Response):
            self._raise_for_status(outcome, path)
        return outcome

    def _send(self, method, url, params, files, allow_redirects, timeout, deadline):
        send = {"data": params, "files": files or None} if method == "POST" else {"params": params}
        failure = None
        try:
            # The astroquery session (its hooks, user agent and retrying adapter)
            # without BaseQuery._request: with cache=False that toggles the
            # process-wide cache_conf.cache_active, which other threads see.
            # Answers are never cached here: finished results go to cache.py.
            response = self._query._session.request(
                method, url, timeout=(min(timeout, _CONNECT_TIMEOUT), timeout), stream=True,
                allow_redirects=allow_redirects, proxies=_proxies_for(url), **send)
        except requests.exceptions.RequestException as exc:
            failure = self._failure(exc, timeout)
        finally:
            send = params = None
        if failure is not None:
            return failure
        body = _read_body(response, deadline)
        if isinstance(body, BaseException):
            return body
        response._content = body
        return response

    def _failure(self, exc, timeout):
        """The package's exception for a failed exchange (the library's is not kept)."""
        kind = _connection_failure(exc)
        reason = redact(_short_reason(exc))
        if isinstance(exc, requests.exceptions.RetryError):
            return DispatcherUnavailable(f"the MMODA dispatcher at {self.url} keeps failing "
                                         f"({reason}); try again later")
        if kind is not None:
            return DispatcherUnavailable(f"cannot connect to the MMODA dispatcher at {self.url} "
                                         f"({kind}, after {conf.max_retries} retries)")
        if _timed_out(exc):
            return DispatcherUnavailable(
                f"the MMODA dispatcher at {self.url} timed out: no answer within {timeout:g} s "
                f"(after {conf.max_retries} retries)")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return DispatcherUnavailable(f"cannot reach the MMODA dispatcher at {self.url}: {reason}")
        return DispatcherUnavailable(f"request to the MMODA dispatcher failed: {reason}")

    def _raise_for_status(self, response, path):
        status = response.status_code
        if 200 <= status < 300:
            return
        message, body = _error_text(response)
        exit_status = body.get("exit_status") if isinstance(body, dict) else None
        debug = _text_field(exit_status, "debug_message") or _text_field(body, "debug_message")
        if isinstance(exit_status, dict) and status >= 500:
            message = failure_reason(exit_status)[0] or message
        job_id = None
        if isinstance(body, dict) and isinstance(body.get("job_monitor"), dict):
            job_id = body["job_monitor"].get("job_id")
        if status in (301, 302, 303, 307, 308):
            raise MmodaServiceError(
                f"the MMODA dispatcher moved to {response.headers.get('Location')}; "
                "set astroquery_mmoda.conf.server (or Mmoda.server) to the new URL",
                status_code=status)
        if status == 400:
            raise InvalidQueryError(f"the MMODA dispatcher rejected the request: {message}")
        if status in (401, 403):
            if "expired" in message.lower():
                raise TokenExpiredError(
                    f"the MMODA dispatcher refused the token: {message} "
                    "Get a new token from the MMODA web site, or refresh it before it expires "
                    "(Mmoda.refresh_token).")
            raise LoginError(f"the MMODA dispatcher refused the request (HTTP {status}): {message}")
        if status == 404:
            raise MmodaServiceError(f"the MMODA dispatcher has no route '{path}' (HTTP 404)",
                                    status_code=status)
        if status in _TRANSIENT_STATUSES:
            raise DispatcherUnavailable(
                f"the MMODA dispatcher at {self.url} is unavailable (HTTP {status}) after "
                f"{conf.max_retries} retries; try again later", status_code=status)
        raise MmodaServiceError(f"the MMODA dispatcher failed (HTTP {status}): {message}",
                                job_id=job_id, status_code=status, debug_message=debug)

    # -- endpoints --------------------------------------------------------------

    def run_analysis(self, params, *, token=None, timeout=None):
        """Send a product query (new or a poll); returns the parsed `Envelope`.

        A job's failure is NOT raised here: see `raise_for_job_failure`.
        ``timeout`` bounds this exchange (at most ``conf.timeout``).
        """
        params = dict(params, api="True")
        try:
            response = self.request("run_analysis", params, token=token, allow_redirects=False,
                                    timeout=timeout)
        finally:
            token = params = None  # frames of a traceback keep their locals
        envelope = parse_envelope(response.content)
        log.debug(f"MMODA job {envelope.job_id}: {envelope.query_status}")
        return envelope

    def json_request(self, path, params, *, token=None):
        try:
            response = self.request(path, params, token=token)
        finally:
            token = None  # frames of a traceback keep their locals
        return loads_json(response.content)

    def instruments(self, *, token=None):
        """Names of the instruments visible to the token's roles."""
        # 1.3.3 wants some instrument= value; 1.3.6 redirects to /instr-list.
        names = self.json_request("api/instr-list", {"instrument": "mock"}, token=token)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ProtocolError("the instrument list is not a list of names")
        return names

    def meta_data(self, instrument, product=None, *, token=None):
        """The raw ``api/meta-data`` description of an instrument (or one product)."""
        params = {"instrument": instrument}
        if product:
            params["product_type"] = product
        data = self.json_request("api/meta-data", params, token=token)
        if not isinstance(data, list) or not data:
            raise ProtocolError(f"the meta-data of {instrument!r} is not a non-empty list")
        return data

    def parameter_names(self, instrument, product, *, token=None):
        """The argument names ``api/par-names`` accepts for a product."""
        names = self.json_request("api/par-names",
                                  {"instrument": instrument, "product_type": product}, token=token)
        if not isinstance(names, list):
            raise ProtocolError("par-names did not answer a list")
        return [n for n in names if isinstance(n, str)]

    def refresh_token(self, token):
        """A new token with a later expiry (needs the ``refresh-tokens`` role)."""
        # The server reads this route's token from the query string only.
        try:
            response = self.request("refresh_token", {"query_status": "new"}, token=token,
                                    method="GET")
        except MmodaServiceError as exc:
            if exc.status_code == 404:
                raise MmodaServiceError(
                    f"the MMODA dispatcher at {self.url} cannot refresh tokens (it has no "
                    "refresh_token route; dispatchers older than 1.3.6 lack it)",
                    status_code=404) from None
            raise
        new_token = response.text.strip()
        if new_token.count(".") != 2 or " " in new_token:
            raise ProtocolError("the refresh_token answer is not a token")
        return new_token


class _CappedRetry(Retry):
    """urllib3's retry policy, honouring a server's Retry-After up to ``conf.max_retry_after`` s."""

    def parse_retry_after(self, retry_after):
        return min(super().parse_retry_after(retry_after), max(0.0, float(conf.max_retry_after)))


def _proxies_for(url):
    """No proxy of the environment for plain http: the token would cross it in clear."""
    if url.lower().startswith("http://"):
        return {"http": None, "all": None}
    return None


def _same_origin_redirect(url, response):
    """Where a redirect to the same dispatcher (scheme, host, port) points, else None."""
    location = response.headers.get("Location")
    if response.status_code not in (301, 302, 303, 307, 308) or not location:
        return None
    try:
        target = check_server_url(urljoin(url, location))
        origin = parse_url(url)
    except InvalidQueryError:
        return None
    same = ((target.scheme or "").lower(), (target.host or "").lower(), target.port) == \
        ((origin.scheme or "").lower(), (origin.host or "").lower(), origin.port)
    if not same:
        return None
    return target._replace(query=None, fragment=None).url


def _socket_of(raw):
    """The socket under a streamed urllib3 response, or None."""
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        sock = getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    return sock if hasattr(sock, "settimeout") else None


def _read_body(response, deadline):
    """The whole (decoded) body, or the exception to raise: too large, too slow, broken."""
    limit = int(float(conf.max_answer_size) * 2 ** 20)
    if getattr(response, "_content_consumed", False):  # a response hook read it already
        body = response.content or b""
        if len(body) > limit:
            return ProtocolError("the MMODA dispatcher's answer is larger than conf.max_answer_size "
                                 f"({float(conf.max_answer_size):g} MiB)", status_code=response.status_code)
        return body
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: what has arrived, not a full chunk
    sock = _socket_of(raw)
    chunks, size, problem = [], 0, None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problem = "slow"
                break
            if sock is not None:
                try:
                    sock.settimeout(max(0.05, min(remaining, float(conf.timeout))))
                except OSError:  # closed once the whole body has arrived
                    sock = None
            chunk = read(_READ_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                problem = "large"
                break
            chunks.append(chunk)
    except Exception as exc:  # socket timeouts, urllib3's ProtocolError, DecodeError, ...
        problem = "slow" if time.monotonic() >= deadline or _timed_out(exc) or "timed out" in str(exc) \
            else f"broken ({type(exc).__name__})"
    if problem is None:
        return b"".join(chunks)
    response.close()
    if problem == "large":
        return ProtocolError(f"the MMODA dispatcher's answer is larger than conf.max_answer_size "
                             f"({float(conf.max_answer_size):g} MiB); not read further",
                             status_code=response.status_code)
    if problem == "slow":
        return DispatcherUnavailable(f"the MMODA dispatcher's answer did not arrive completely in time "
                                     f"(after {size} bytes)")
    return DispatcherUnavailable(f"the MMODA dispatcher's answer was cut off: {problem}")


def _connection_failure(exc):
    """"connection refused", "name not resolved", ... when no connection could be made, else None."""
    from urllib3.exceptions import NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if not isinstance(reason, NewConnectionError):
        return None
    text = str(reason).lower()
    if type(reason).__name__ == "NameResolutionError" or any(
            marker in text for marker in ("name or service not known", "nodename nor servname",
                                          "name resolution", "getaddrinfo", "no address associated")):
        return "name not resolved"
    if "refused" in text:
        return "connection refused"
    if "unreachable" in text:
        return "network unreachable"
    return "no connection"


def _short_reason(exc):
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return str(reason)[:300]


def _timed_out(exc):
    """Whether a requests exception is a timeout, however deeply urllib3 wrapped it."""
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    if isinstance(exc, requests.exceptions.Timeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), Urllib3Timeout)


def warn_comment(envelope):
    """Emit the dispatcher's comment (e.g. unused arguments) as one warning."""
    if envelope.comment:
        warnings.warn(f"MMODA: {_shorten(redact(envelope.comment), 2000)}", MmodaWarning,
                      stacklevel=user_stacklevel())
