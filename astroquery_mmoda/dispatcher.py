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
import warnings
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from astroquery import log

from . import conf
from .auth import TokenManager
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
# Messages of jobs that ran but found nothing to work on.
_NO_DATA_MARKERS = ("failed: get dataserver products", "no usable data", "nodata", "no data")
_TERMINAL = ("done", "failed")
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


def raise_for_job_failure(envelope):
    """Raise `JobFailedError` (or `NoDataError`) if the envelope reports a failure.

    A ``done`` answer whose ``exit_status.status`` is not 0 is a failure too.
    """
    failed = envelope.query_status == "failed" or (
        envelope.query_status == "done" and envelope.exit_status.get("status", 0) != 0)
    if not failed:
        return
    exit_status = envelope.exit_status
    message = (exit_status.get("message") or "").strip()
    error = (exit_status.get("error_message") or "").strip()
    text = "; ".join(part for part in (message, error) if part) or "the job failed"
    lowered = text.lower().replace(" ", "")
    kind = NoDataError if any(marker.replace(" ", "") in lowered for marker in _NO_DATA_MARKERS) \
        else JobFailedError
    raise kind(f"MMODA job failed: {text}", job_id=envelope.job_id,
               status_code=envelope.data.get("status_code"),
               debug_message=exit_status.get("debug_message", ""))


_URLLIB3_FILTER = RedactingFilter()


def install_log_redaction():
    """Make urllib3's DEBUG lines (which show full URLs) token-free."""
    for name in ("urllib3.connectionpool", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        if _URLLIB3_FILTER not in logger.filters:
            logger.addFilter(_URLLIB3_FILTER)


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
                policy = Retry(backoff_max=8, **options)
            except TypeError:  # urllib3 < 2 has a fixed maximum back-off
                policy = Retry(**options)
            adapter = HTTPAdapter(max_retries=policy, pool_maxsize=max(int(conf.max_concurrent), 10))
            self._query._session.mount("http://", adapter)
            self._query._session.mount("https://", adapter)
            self._retries = retries

    def request(self, path, params, *, token=None, method=None, allow_redirects=True,
                timeout=None):
        """One exchange with the dispatcher; returns the `requests.Response` of a 2xx answer.

        Raises the package's exceptions for everything else.
        """
        self._mount_retries()
        url = f"{self.url}/{path}"
        params = dict(params)
        if token:
            TokenManager.check_transport(url)
            params["token"] = token
        # File parameters (astroquery_mmoda.uploads.Upload) go as multipart parts, by POST.
        files = {name: params.pop(name).multipart for name in
                 [name for name, value in params.items() if hasattr(value, "multipart")]}
        if files:
            method = "POST"
        if method is None:
            method = "POST" if len(json.dumps(params)) > int(conf.post_threshold) else "GET"
        send = {"data": params, "files": files or None} if method == "POST" else {"params": params}
        log.debug(f"MMODA {method} {path} ({', '.join(sorted(k for k in params if k != 'token'))})")
        timeout = timeout or float(conf.timeout)
        try:
            # The astroquery session (its hooks, user agent and retrying adapter)
            # without BaseQuery._request: with cache=False that toggles the
            # process-wide cache_conf.cache_active, which other threads see.
            # Answers are never cached here: finished results go to cache.py.
            response = self._query._session.request(method, url, timeout=timeout, stream=True,
                                                    allow_redirects=allow_redirects, **send)
            # One pass in large chunks: a 50 MB product in 10 kB reads is slow.
            response._content = b"".join(response.iter_content(chunk_size=1 << 20))
        except requests.exceptions.RetryError as exc:
            raise DispatcherUnavailable(f"the MMODA dispatcher at {self.url} keeps failing "
                                        f"({redact(_short_reason(exc))}); try again later") from None
        except requests.exceptions.RequestException as exc:
            if _timed_out(exc):
                raise DispatcherUnavailable(
                    f"the MMODA dispatcher at {self.url} timed out: no answer within {timeout:g} s "
                    f"(after {conf.max_retries} retries)") from None
            if isinstance(exc, requests.exceptions.ConnectionError):
                raise DispatcherUnavailable(f"cannot reach the MMODA dispatcher at {self.url}: "
                                            f"{redact(_short_reason(exc))}") from None
            raise DispatcherUnavailable(f"request to the MMODA dispatcher failed: "
                                        f"{redact(_short_reason(exc))}") from None
        self._raise_for_status(response, path)
        return response

    def _raise_for_status(self, response, path):
        status = response.status_code
        if 200 <= status < 300:
            return
        message, body = _error_text(response)
        debug = redact(str(body.get("debug_message") or "")) if isinstance(body, dict) else ""
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

    def run_analysis(self, params, *, token=None):
        """Send a product query (new or a poll); returns the parsed `Envelope`.

        A job's failure is NOT raised here: see `raise_for_job_failure`.
        """
        params = dict(params, api="True")
        response = self.request("run_analysis", params, token=token, allow_redirects=False)
        envelope = parse_envelope(response.content)
        log.debug(f"MMODA job {envelope.job_id}: {envelope.query_status}")
        return envelope

    def json_request(self, path, params, *, token=None):
        response = self.request(path, params, token=token)
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
