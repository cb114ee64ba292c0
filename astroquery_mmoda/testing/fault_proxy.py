"""A loopback HTTP proxy that injects faults between a client and a dispatcher.

`FaultProxy` listens on 127.0.0.1, forwards every request to an upstream
server (typically a `~astroquery_mmoda.testing.LocalDispatcher`) and follows a
scriptable *fault plan*: answer some requests with a gateway error (502, 503,
504 with an HTML body, as a front-end web server does), close the connection
without an answer, answer late, or answer with a body of your choice.  It
counts the requests it receives by path and by ``query_status``.

Use it to test how code behaves when the dispatcher is overloaded, restarted
or misbehaving::

    from astroquery_mmoda.core import MmodaClass
    from astroquery_mmoda.testing import LocalDispatcher
    from astroquery_mmoda.testing.fault_proxy import FaultProxy

    with LocalDispatcher() as dispatcher, FaultProxy(dispatcher.url) as proxy:
        client = MmodaClass(server=proxy.url)
        proxy.fail(503, times=2, path="run_analysis")   # two 503s, then forward
        ...
        proxy.count(path="run_analysis")                # requests received

Faults are consumed in the order they were added: each request takes the
first fault whose filters (``path``, ``query_status``, and a ``when``
predicate on the request's parameters) match it and that has uses left; a
request that matches none is forwarded.  When the upstream server cannot be
reached the proxy answers 502 (or 504 when it does not answer in time), as a
gateway would; so a dispatcher restart looks like the real one behind its
web server: stop the `~astroquery_mmoda.testing.LocalDispatcher` (built with
a ``workdir`` of yours, so that its jobs survive), start it again, and point
`FaultProxy.upstream_url` at its new port.

Every request is recorded as a `ProxyRecord` (time, path, ``query_status``,
parameters, what the proxy did, and the ``query_status`` and job id of JSON
answers): `FaultProxy.count`, `FaultProxy.requests_by_path` and
`FaultProxy.requests_by_query_status` summarize them.

The proxy never logs nor records the ``token`` parameter.  Only loopback
addresses are accepted, for both the proxy and its upstream.
"""
import collections
import http.client
import socket
import threading
import time
from urllib.parse import urlsplit

from ._proxy_server import _HOP_BY_HOP, ProxyRecord, _check_loopback, _Fault, _Handler, _Server, gateway_page

__all__ = ["FaultProxy", "ProxyRecord", "gateway_page"]


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 with a scriptable fault plan.

    Parameters
    ----------
    upstream_url : str
        Root URL of the server to forward to (a loopback address, e.g.
        ``LocalDispatcher.url``); requests to ``<proxy.url>/<path>`` go to
        ``<upstream_url>/<path>``.  It can be changed later (`upstream_url`),
        e.g. when the upstream server was restarted on another port.
    port : int
        Port to listen on; 0 (the default) picks a free one.
    upstream_timeout : float
        Seconds the proxy waits for the upstream server before it answers 504.

    Examples
    --------
    >>> from astroquery_mmoda.testing.fault_proxy import FaultProxy
    >>> with FaultProxy("http://127.0.0.1:9") as proxy:   # nothing listens on port 9
    ...     _ = proxy.fail(503, times=1)
    ...     import requests
    ...     first = requests.get(f"{proxy.url}/run_analysis", timeout=5).status_code
    ...     second = requests.get(f"{proxy.url}/run_analysis", timeout=5).status_code
    >>> first, second   # the planned 503, then the 502 of an unreachable upstream
    (503, 502)
    >>> proxy.count(path="run_analysis")
    2
    """

    def __init__(self, upstream_url, *, port=0, upstream_timeout=120.0):
        self.upstream_url = upstream_url
        self.upstream_timeout = float(upstream_timeout)
        self._port = int(port)
        self._lock = threading.Lock()
        self._faults = []
        self._records = []
        self._generation = 0
        self._errors = 0
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self._t0 = time.monotonic()

    def __repr__(self):
        state = f"at {self.url}" if self._server else "stopped"
        return f"<FaultProxy {state} -> {self.upstream_url}, {len(self._records)} requests>"

    # -- life cycle -------------------------------------------------------------

    @property
    def upstream_url(self):
        """str: root URL of the upstream server (settable)."""
        return self._upstream

    @upstream_url.setter
    def upstream_url(self, url):
        parts = urlsplit(str(url))
        if parts.scheme != "http":
            raise ValueError(f"the upstream must be a plain http:// URL, not {url!r}")
        _check_loopback(parts.hostname, "upstream server")
        self._upstream = str(url).rstrip("/")
        self._upstream_parts = (parts.hostname, parts.port or 80, parts.path.rstrip("/"))

    @property
    def url(self):
        """str: root URL of the proxy (``http://127.0.0.1:PORT``)."""
        if self._server is None:
            raise RuntimeError("the fault proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self):
        """Start listening (in a background thread); returns ``self``."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", self._port), _Handler, self)
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name="FaultProxy", daemon=True)
            self._thread.start()
            self._t0 = time.monotonic()
        return self

    def stop(self):
        """Stop listening and close every open connection (pending delays end at once)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_all()
        server.server_close()
        self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- the fault plan ---------------------------------------------------------------

    def _add(self, fault):
        if fault.times is not None and int(fault.times) < 1:
            raise ValueError("times must be a positive number of requests, or None for all")
        with self._lock:
            self._faults.append(fault)
        return self

    def fail(self, status=503, *, times=1, path=None, query_status=None, when=None, body=None,
             headers=None):
        """Answer the next ``times`` matching requests with ``status`` and an HTML page.

        Parameters
        ----------
        status : int
            The HTTP status, typically 502, 503 or 504.
        times : int or None
            How many requests get this answer (None: all, until `clear`).
        path : str, optional
            Only requests to this path (e.g. ``"run_analysis"``).
        query_status : str, optional
            Only requests with this ``query_status`` (e.g. ``"submitted"``
            for the polls of a job).
        when : callable, optional
            Only requests for which ``when(params)`` is true; ``params`` is the
            dict of the request's parameters (without ``token``).
        body : bytes or str, optional
            The body instead of a gateway page.
        headers : dict, optional
            Extra headers (e.g. ``{"Retry-After": "0"}``).

        Returns
        -------
        FaultProxy
            ``self``.
        """
        return self._add(_Fault("status", times, path, query_status, status=int(status),
                                body=body, headers=headers, when=when))

    def drop(self, *, times=1, path=None, query_status=None, when=None):
        """Close the connection of the next ``times`` matching requests without answering.

        The filters are those of `fail`.
        """
        return self._add(_Fault("drop", times, path, query_status, when=when))

    def delay(self, seconds, *, times=1, path=None, query_status=None, when=None):
        """Hold the next ``times`` matching requests ``seconds`` before forwarding them.

        The filters are those of `fail`.  When the proxy stops, held requests
        end at once, unanswered.
        """
        return self._add(_Fault("delay", times, path, query_status, seconds=float(seconds),
                                when=when))

    def replace(self, body, *, status=200, content_type="application/json", times=1, path=None,
                query_status=None, when=None, headers=None):
        """Answer the next ``times`` matching requests with ``body`` instead of forwarding them.

        Parameters
        ----------
        body : bytes, str or callable
            The answer; a callable gets the `ProxyRecord` of the request and
            returns the body.
        status : int
            The HTTP status.
        content_type : str
            The ``Content-Type`` header.

        The other arguments are those of `fail`.
        """
        return self._add(_Fault("replace", times, path, query_status, status=int(status),
                                body=body, content_type=content_type, headers=headers, when=when))

    def clear(self):
        """Forget the faults not used yet: every request is forwarded again."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self):
        """int: faults with uses left (those with ``times=None`` count once)."""
        with self._lock:
            return len(self._faults)

    def _take_fault(self, path, query_status, params):
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, query_status, params):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # -- forwarding ---------------------------------------------------------------------

    def _forward(self, method, target, headers, body):
        host, port, base = self._upstream_parts
        forwarded = {name: value for name, value in headers.items()
                     if name.lower() not in _HOP_BY_HOP}
        forwarded["Host"] = f"{host}:{port}"
        forwarded["Connection"] = "close"
        if body:
            forwarded["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(host, port, timeout=self.upstream_timeout)
        try:
            connection.request(method, base + target, body=body or None, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload, "forward"
        except socket.timeout:
            return 504, [("Content-Type", "text/html")], gateway_page(504), "upstream-timeout"
        except (OSError, http.client.HTTPException):
            return 502, [("Content-Type", "text/html")], gateway_page(502), "upstream-down"
        finally:
            connection.close()

    def _rewrite_location(self, name, value):
        # Redirects that point at the upstream server must come back through the proxy.
        if name.lower() == "location" and value.startswith(self._upstream):
            return self.url + value[len(self._upstream):]
        return value

    # -- what was received ---------------------------------------------------------------

    def _elapsed(self):
        return time.monotonic() - self._t0

    def _record(self, record):
        with self._lock:
            self._records.append(record)
            return (self._generation, len(self._records) - 1)

    def _complete(self, slot, record):
        with self._lock:
            generation, index = slot
            if generation == self._generation:
                self._records[index] = record

    @property
    def requests(self):
        """list of `ProxyRecord`: every request received so far, in order."""
        with self._lock:
            return list(self._records)

    def count(self, *, path=None, query_status=None, action=None, method=None):
        """How many requests matched all the given filters.

        Parameters
        ----------
        path : str, optional
            E.g. ``"run_analysis"``.
        query_status : str, optional
            The request's ``query_status``.
        action : str, optional
            See `ProxyRecord`.
        method : str, optional
            ``GET`` or ``POST``.
        """
        path = path.strip("/") if path is not None else None
        return sum(1 for r in self.requests
                   if (path is None or r.path == path)
                   and (query_status is None or r.query_status == query_status)
                   and (action is None or r.action == action)
                   and (method is None or r.method == method))

    @property
    def requests_by_path(self):
        """`collections.Counter`: requests received per path."""
        return collections.Counter(r.path for r in self.requests)

    @property
    def requests_by_query_status(self):
        """`collections.Counter`: requests received per ``query_status`` (None: without one)."""
        return collections.Counter(r.query_status for r in self.requests)

    def reset_counts(self):
        """Forget the requests received so far (the fault plan is kept)."""
        with self._lock:
            self._records = []
            self._generation += 1
