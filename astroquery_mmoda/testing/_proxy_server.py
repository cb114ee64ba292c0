"""The plumbing of `~astroquery_mmoda.testing.fault_proxy.FaultProxy`: records, faults, the
threaded loopback server and its request handler."""
import http.client
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from ..server_urls import is_loopback_address

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailers", "transfer-encoding", "upgrade", "host", "content-length"})
_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
# Answers larger than this are not parsed for their query_status and job_id.
_INSPECT_LIMIT = 2_000_000


def gateway_page(status):
    """The HTML body a front-end web server sends with a gateway error."""
    reason = _REASONS.get(status, http.client.responses.get(status, "Error"))
    return (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n").encode("ascii")


def _check_loopback(host, what):
    """Refuse a host that is not a literal loopback address ("localhost" is resolved by DNS)."""
    if not is_loopback_address(host):
        raise ValueError(f"the {what} must be a literal loopback address such as 127.0.0.1, not {host!r}")


@dataclass(frozen=True)
class ProxyRecord:
    """One request received by a `FaultProxy`.

    Attributes
    ----------
    time : float
        Seconds since the proxy started (monotonic clock).
    method : str
        ``GET``, ``POST``, ...
    path : str
        The path relative to the proxy's root, without a leading slash
        (``run_analysis``, ``api/meta-data``).
    query_status : str or None
        The request's ``query_status`` parameter.
    params : dict
        The request's parameters (query string or form body), without
        ``token``.
    action : str
        What the proxy did: ``forward``, ``status``, ``drop``, ``delay``
        (then forwarded), ``replace``, ``upstream-down`` (answered 502) or
        ``upstream-timeout`` (answered 504).
    status : int or None
        The HTTP status sent back (None when the connection was dropped, or
        while the request is still being handled).
    answer_query_status, answer_job_id : str or None
        ``query_status`` and ``job_monitor.job_id`` of a JSON answer.
    """
    time: float
    method: str
    path: str
    query_status: str = None
    params: dict = field(default_factory=dict, repr=False)
    action: str = "forward"
    status: int = None
    answer_query_status: str = None
    answer_job_id: str = None


@dataclass
class _Fault:
    kind: str
    times: int = 1           # None: until cleared
    path: str = None
    query_status: str = None
    status: int = None
    body: object = None
    content_type: str = "text/html"
    headers: dict = None
    seconds: float = 0.0
    when: object = None

    def matches(self, path, query_status, params):
        if self.path is not None and path != self.path.strip("/"):
            return False
        if self.query_status is not None and query_status != self.query_status:
            return False
        if self.when is not None and not self.when(params):
            return False
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, proxy):
        self.proxy = proxy
        self.open_sockets = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that went away (timeout, dropped connection) is part of the
        # game: never print tracebacks from the handler threads.
        self.proxy._errors += 1

    def close_all(self):
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are closed after this
    server_version = "FaultProxy"
    sys_version = ""

    def log_message(self, format, *args):
        pass  # request lines carry tokens: never print them

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _handle(self):
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        path = split.path.lstrip("/")
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            try:
                params.update(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
            except ValueError:
                pass
        params.pop("token", None)
        query_status = params.get("query_status")
        fault = proxy._take_fault(path, query_status, params)
        kind = fault.kind if fault else "forward"
        record = dict(time=proxy._elapsed(), method=self.command, path=path,
                      query_status=query_status, params=params, action=kind)
        # Counted on arrival; completed just before the answer goes out, so
        # that a client that got its answer finds the request fully recorded.
        slot = proxy._record(ProxyRecord(**record))

        def done(**fields):
            record.update(fields)
            proxy._complete(slot, ProxyRecord(**record))

        if kind == "drop":
            done(status=None)
            self.close_connection = True
            return
        if kind == "status":
            page = fault.body if fault.body is not None else gateway_page(fault.status)
            payload = _as_bytes(page, record)
            done(status=fault.status)
            self._answer(fault.status, payload, fault.content_type, fault.headers)
            return
        if kind == "replace":
            payload = _as_bytes(fault.body, record)
            done(status=fault.status or 200, **_inspect(payload))
            self._answer(fault.status or 200, payload, fault.content_type, fault.headers)
            return
        if kind == "delay" and proxy._stopping.wait(fault.seconds):
            self.close_connection = True
            return
        status, headers, payload, action = proxy._forward(self.command, self.path,
                                                          self.headers, body)
        done(action=action, status=status, **_inspect(payload, headers))
        self._answer(status, payload, None, None, upstream_headers=headers)

    def _answer(self, status, payload, content_type, headers, *, upstream_headers=None):
        self.send_response(status, _REASONS.get(status))
        if upstream_headers is not None:
            for name, value in upstream_headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("date", "server"):
                    self.send_header(name, self.server.proxy._rewrite_location(name, value))
        else:
            self.send_header("Content-Type", content_type or "application/octet-stream")
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _as_bytes(body, record):
    if callable(body):
        body = body(ProxyRecord(**record))
    if isinstance(body, str):
        body = body.encode("utf-8")
    return bytes(body or b"")


def _inspect(payload, headers=None):
    if headers is not None:
        kinds = [value for name, value in headers if name.lower() == "content-type"]
        if kinds and "json" not in kinds[0]:
            return {}
    if len(payload) > _INSPECT_LIMIT or not payload.lstrip()[:1] == b"{":
        return {}
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    monitor = data.get("job_monitor") if isinstance(data.get("job_monitor"), dict) else {}
    status, job_id = data.get("query_status"), monitor.get("job_id")
    return {"answer_query_status": status if isinstance(status, str) else None,
            "answer_job_id": job_id if isinstance(job_id, str) else None}
