"""Bounded HTTP for the dispatcher client: reads, redirects, retries, failures.

Every read has a size limit (``conf.max_answer_size``) and a deadline; a
redirect is followed only to the same dispatcher; urllib3's log lines are
token-free.  `astroquery_mmoda.dispatcher` builds its exchanges on these.
"""
import json
import logging
import time
from urllib.parse import urljoin

import requests
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from astroquery import log

from . import conf
from .exceptions import DispatcherUnavailable, InvalidQueryError, ProtocolError, _shorten
from .redaction import RedactingFilter, redact
from .server_urls import check_server_url

_READ_CHUNK = 1 << 20


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
    except (ValueError, RecursionError, MemoryError):  # not JSON, nested too deeply, too large
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


def _read_body(response, deadline, spool=None):
    """The whole (decoded) body, or the exception to raise: too large, too slow, broken.

    ``spool`` (e.g. a `~astroquery_mmoda.cache.AnswerSpool`), if given, gets
    every piece of the body as it arrives.
    """
    limit = int(float(conf.max_answer_size) * 2 ** 20)
    if getattr(response, "_content_consumed", False):  # a response hook read it already
        body = response.content or b""
        if len(body) > limit:
            return ProtocolError("the MMODA dispatcher's answer is larger than conf.max_answer_size "
                                 f"({float(conf.max_answer_size):g} MiB)", status_code=response.status_code)
        if spool is not None:
            spool.write(body)
        return body
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: what has arrived, not a full chunk
    sock = _socket_of(raw)
    # One growing buffer, returned as it is: a list of chunks joined at the end needs twice the memory.
    body, problem = bytearray(), None
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
            if len(body) + len(chunk) > limit:
                problem = "large"
                break
            body += chunk
            if spool is not None:
                spool.write(chunk)
    except MemoryError:
        problem = "memory"
    except Exception as exc:  # socket timeouts, urllib3's ProtocolError, DecodeError, ...
        problem = "slow" if time.monotonic() >= deadline or _timed_out(exc) or "timed out" in str(exc) \
            else f"broken ({type(exc).__name__})"
    size = len(body)
    if problem is None:
        return body
    del body
    response.close()
    if problem == "memory":
        return ProtocolError(f"the MMODA dispatcher's answer needs more memory than is available "
                             f"(after {size / 2 ** 20:.0f} MiB)", status_code=response.status_code)
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
