"""The wire layer: HTTP exchanges with the MMODA dispatcher.

`DispatcherClient` owns the endpoints and the mapping of HTTP statuses to the
exceptions of `astroquery_mmoda.exceptions`.  How parameters are encoded and
answers read is in `astroquery_mmoda.protocol`; bounded reads, redirects and
retries in `astroquery_mmoda.transport`.  It knows nothing of astropy objects.
"""
import json
import time

import requests
from requests.adapters import HTTPAdapter

from astroquery import log

from . import conf
from .auth import TokenManager, check_server_url
from .exceptions import (DispatcherUnavailable, InvalidQueryError, LoginError, MmodaServiceError,
                         ProtocolError, TokenExpiredError)
# parse_meta_data is re-exported: it lived here before metadata.py.
from .metadata import loads_json, parse_meta_data  # noqa: F401
# The protocol's names are re-exported: they lived here before protocol.py.
from .protocol import (NULL, Envelope, MmodaWarning, encode_params, envelope_from_data,  # noqa: F401
                       _text_field, failure_reason, parse_envelope, raise_for_job_failure,
                       warn_comment)
from .transport import (_CappedRetry, _connection_failure, _error_text, _proxies_for,
                        _read_body, _same_origin_redirect, _short_reason, _timed_out,
                        install_log_redaction)
from .redaction import redact

__all__ = ["Envelope", "DispatcherClient", "encode_params", "MmodaWarning"]

_TRANSIENT_STATUSES = (502, 503, 504)
_MAX_SAME_ORIGIN_REDIRECTS = 3
_CONNECT_TIMEOUT = 30.0


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
                timeout=None, spool=None):
        """One exchange with the dispatcher; returns the `requests.Response` of a 2xx answer.

        ``timeout`` (default ``conf.timeout``) bounds the whole exchange, the
        answer's body included; the body may not exceed ``conf.max_answer_size``.
        A request that carries the token follows no redirect except to the same
        dispatcher (scheme, host and port).  Plain-http requests never use a
        proxy of the environment.  Raises the package's exceptions for
        everything else; they are raised outside any ``except`` block, so no
        exception of the HTTP library (whose text may hold the token) is
        attached to them.  ``spool`` gets the body of a 2xx answer as it
        arrives (see `~astroquery_mmoda.transport._read_body`).
        """
        try:
            outcome = self._exchange(path, params, token, method, allow_redirects, timeout, spool)
        finally:
            token = params = None  # frames of a traceback keep their locals
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _exchange(self, path, params, token, method, allow_redirects, timeout, spool=None):
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
                outcome = self._send(method, url, params, files, allow_redirects, timeout, deadline,
                                     spool)
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

    def _send(self, method, url, params, files, allow_redirects, timeout, deadline, spool=None):
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
        # Only a final, successful answer is worth spooling (not a redirect or an error page).
        body = _read_body(response, deadline, spool if 200 <= response.status_code < 300 else None)
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

    def run_analysis(self, params, *, token=None, timeout=None, spool=None):
        """Send a product query (new or a poll); returns the parsed `Envelope`.

        A job's failure is NOT raised here: see `raise_for_job_failure`.
        ``timeout`` bounds this exchange (at most ``conf.timeout``); ``spool``
        gets the answer's body as it arrives (see `request`).
        """
        params = dict(params, api="True")
        try:
            response = self.request("run_analysis", params, token=token, allow_redirects=False,
                                    timeout=timeout, spool=spool)
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
