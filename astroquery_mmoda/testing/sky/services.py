"""Loopback stand-ins: the SPI-ACS light-curve service, the DDA back-end, a replaying
dispatcher; and the start-up of them all with the plugins' configuration."""
import gzip
import hashlib
import http.server
import json
import re
import tempfile
import threading
import urllib.parse
from pathlib import Path

from .acs import acs_light_curve_text
from .dummy import write_dummy_products
from .lightcurves import write_isgri_lightcurve
from .model import (DEFAULT_DETECTION_THRESHOLD, DUMMY_FOLDER, LIGHTCURVE_SCW, SUBMITTED_SCW,
                    campaign_observation, sky_sources)


class _Handler(http.server.BaseHTTPRequestHandler):
    service = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _serve(self, method):
        split = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, content_type, payload = self.service._dispatch(method, split.path,
                                                                   split.query, body, self.headers)
        except Exception as exc:  # a stand-in must answer, whatever happens
            status, content_type, payload = 500, "text/plain", repr(exc).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")


class _LoopbackService:
    """An HTTP service on 127.0.0.1 (free port) in a background thread."""

    name = "service"

    def __init__(self):
        self._server = None
        self._thread = None
        self._lock = threading.Lock()
        self._served = 0

    def start(self):
        """Start listening; returns ``self``."""
        if self._server is not None:
            return self
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"service": self})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self.name}-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=10)

    @property
    def port(self):
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError(f"the {self.name} stand-in is not started")
        return self._server.server_address[1]

    @property
    def root_url(self):
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests_served(self):
        """How many requests it has answered."""
        with self._lock:
            return self._served

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = f"at {self.root_url}" if self._server is not None else "stopped"
        return f"<{type(self).__name__} {state}, {self.requests_served} requests served>"

    def _dispatch(self, method, path, query, body, headers):
        with self._lock:
            self._served += 1
        return self.handle(method, path, query, body, headers)

    def handle(self, method, path, query, body, headers):  # pragma: no cover - abstract
        raise NotImplementedError


def _campaign_scws(assume):
    """The campaign observations of the ScWs an analysis names, in time order, when all are campaign ScWs."""
    scws = sorted(set(re.findall(r"\d{12}\.\d{3}", assume)))
    observations = [campaign_observation(scw) for scw in scws]
    if not observations or any(observation is None for observation in observations):
        return []
    return sorted(observations, key=lambda observation: observation.tstart)


def _json_answer(obj, status=200):
    return status, "application/json", json.dumps(obj).encode()


def _analysis_exception(message):
    return {"exception_type": "analysis",
            "exception": ["dataanalysis.core.AnalysisException", message]}


class AcsService(_LoopbackService):
    """Stand-in of the SPI-ACS light-curve web service.

    Answers ``GET /genlc/ACS/{t0_isot}/{dt_s}`` (the plugin also repeats both in
    the query string) with `acs_light_curve_text`.
    """

    name = "spi-acs"

    @property
    def url(self):
        """The URL template the ``spi_acs`` plugin is configured with."""
        return self.root_url + "/genlc/ACS/{t0_isot}/{dt_s}"

    def handle(self, method, path, query, body, headers):
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if len(parts) != 4 or parts[:2] != ["genlc", "ACS"]:
            return 404, "text/plain", b"unknown resource"
        try:
            text = acs_light_curve_text(parts[2], parts[3])
        except ValueError as exc:
            return 400, "text/plain", str(exc).encode()
        return 200, "text/plain", text.encode()


class DdaService(_LoopbackService):
    """Stand-in of the DDA back-end of the ``isgri`` and ``jemx`` plugins (Real mode).

    ``poke`` succeeds.  An analysis naming the science window `SUBMITTED_SCW` is
    delegated: its job stays ``submitted``.  The ISGRI light-curve analysis
    (``isgri_lc``) of `LIGHTCURVE_SCW`, or of synthetic campaign ScWs only (see
    `~astroquery_mmoda.testing.sky.model.campaign_observation`: one stretch of bins
    per ScW), succeeds, with one light curve per source
    of the request's catalog (``selected_catalog``; by default the ISGRI sources
    above `DEFAULT_DETECTION_THRESHOLD`), made by `write_isgri_lightcurve` with
    the requested time bin.  Every other analysis answers a DDA
    ``AnalysisException`` ("no data found for <target> ..."), which the
    dispatcher reports as a failed query.  Attribute ``targets`` lists the
    analysis targets requested so far.
    """

    name = "dda"

    def __init__(self):
        super().__init__()
        self.targets = []
        self._files = {}

    @property
    def url(self):
        """The service URL, as the plugins' ``data_server_url`` wants it (without ``public=``)."""
        return self.root_url + "/dda"

    def handle(self, method, path, query, body, headers):
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["dda", "api"]:
            return 404, "text/plain", b"unknown resource"
        target = parts[-1]
        if target == "poke":
            return _json_answer({"result": "poke OK", "status": "ok"})
        if target == "fetch-file":
            wanted = dict(urllib.parse.parse_qsl(query))
            with self._lock:
                content = self._files.get((wanted.get("cached_path"), wanted.get("filename")))
            if content is None:
                return 404, "text/plain", b"no such file"
            return 200, "application/octet-stream", content
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = dict(urllib.parse.parse_qsl(query))
        with self._lock:
            self.targets.append(target)
        assume = str(params.get("assume", ""))
        answer = {"data": None, "cached_path": [], "result": {"status": "done", "output": ""}}
        if SUBMITTED_SCW in assume:
            answer["exceptions"] = {"exception_type": "delegation", "delegation_state": "submitted"}
            answer["result"]["status"] = "submitted"
        elif target == "ISGRILCSum" and (LIGHTCURVE_SCW in assume or _campaign_scws(assume)):
            try:
                answer.update(self._light_curves(assume, params.get("inject"), _campaign_scws(assume)),
                              exceptions=[])
            except Exception as exc:  # any other answer makes the client retry for minutes
                answer["exceptions"] = _analysis_exception(f"light curves failed: {exc!r}")
        else:
            answer["exceptions"] = _analysis_exception(
                f"no data found for {target} (offline DDA stand-in, no INTEGRAL archive)")
        return _json_answer(answer)

    def _light_curves(self, assume, inject, observations=None):
        found = re.search(r"use_time_bin_seconds=([0-9.eE+-]+)", assume)
        time_bin = float(found.group(1)) if found else 1000.0
        if not 1.0 <= time_bin <= 86400.0:
            raise ValueError(f"time bin {time_bin:g} s out of the stand-in's range [1, 86400] s")
        sources = sky_sources("isgri", min_significance=DEFAULT_DETECTION_THRESHOLD)
        try:
            catalog = json.loads(inject) if isinstance(inject, str) else inject
            names = [row["NAME"] for item in catalog or [] if item[0] == "SourceCatalog"
                     for row in item[1]["catalog"]]
        except (ValueError, TypeError, KeyError, IndexError):
            names = []
        if names:
            known = {s.name: s for s in sky_sources("isgri")}
            sources = [known[name] for name in names if name in known]
        scws = [observation.scw_id for observation in observations or []]
        request = json.dumps([time_bin, [s.name for s in sources], scws])
        key = hashlib.sha256(request.encode()).hexdigest()[:16]
        cached_path = f"data/reduced/ddcache/ISGRILCSum.v2/{key}"
        data = {"extracted_sources": []}
        with tempfile.TemporaryDirectory(prefix="mmoda-dda-") as folder:
            for index, source in enumerate(sources):
                filename = f"isgri_lc_{index}.fits"
                path = write_isgri_lightcurve(Path(folder) / filename, source, time_bin=time_bin,
                                              observations=observations)
                with self._lock:
                    self._files[(cached_path, filename)] = gzip.compress(path.read_bytes(), mtime=0)
                data[f"lc_{index}"] = ["DataFile", filename]
                data["extracted_sources"].append([source.name, f"lc_{index}"])
        return {"data": data, "cached_path": [cached_path]}


class ReplayDispatcher(_LoopbackService):
    """A loopback server answering ``run_analysis`` with prepared envelopes.

    Parameters
    ----------
    envelopes : dict or list of dict
        The JSON answer(s) to ``/run_analysis``; a list is served in order, its
        last element repeated.
    routes : dict, optional
        Further ``{path: JSON object}`` answers (e.g. ``"/api/instr-list"``).

    Attributes
    ----------
    requests : list of dict
        The parameters (query string and form) of each ``run_analysis`` request.
    """

    name = "replay-dispatcher"

    def __init__(self, envelopes, *, routes=None):
        super().__init__()
        self._envelopes = list(envelopes) if isinstance(envelopes, (list, tuple)) else [envelopes]
        if not self._envelopes:
            raise ValueError("ReplayDispatcher needs at least one envelope")
        self._routes = dict(routes or {})
        self.requests = []

    @property
    def url(self):
        """Root URL to point a client at."""
        return self.root_url

    def handle(self, method, path, query, body, headers):
        if path.rstrip("/").endswith("/run_analysis") or path.rstrip("/") == "run_analysis":
            params = dict(urllib.parse.parse_qsl(query))
            if body and "json" not in (headers.get("Content-Type") or ""):
                params.update(urllib.parse.parse_qsl(body.decode(errors="replace")))
            with self._lock:
                self.requests.append(params)
                envelope = self._envelopes[min(len(self.requests), len(self._envelopes)) - 1]
            return _json_answer(envelope)
        if path in self._routes:
            return _json_answer(self._routes[path])
        return _json_answer({"error": f"no recorded answer for {path}"}, status=404)


# -- start-up -------------------------------------------------------------------------

_OSA_CONF = """\
instruments:
  isgri:
    dispatcher_mnt_point: .
    data_server_cache: reduced/ddcache
    dummy_cache: {dummy}
    data_server_url: {dda}
    data_server_port:
  jemx:
    dispatcher_mnt_point: .
    data_server_cache: reduced/ddcache
    dummy_cache: {dummy}
    data_server_url: {dda}
    data_server_port:
"""

_SPIACS_CONF = """\
instruments:
  spi_acs:
    dispatcher_mnt_point:
    data_server_cache:
    dummy_cache: {dummy}
    data_server_url: {acs}
"""


def start_integral_services(workdir):
    """Write the test sky and the plugins' configuration; start both stand-ins.

    Parameters
    ----------
    workdir : path-like
        The dispatcher's working directory.

    Returns
    -------
    services : list
        The running `AcsService` and `DdaService` (each has ``stop()``).
    env : dict
        Environment variables for the dispatcher: the plugins' configuration
        files, and a placeholder DDA credential (so that the DDA client reads no
        credential file of the user's).
    """
    workdir = Path(workdir)
    dummy = workdir / DUMMY_FOLDER
    write_dummy_products(dummy)
    services = []
    try:
        acs = AcsService().start()
        services.append(acs)
        dda = DdaService().start()
        services.append(dda)
        osa_conf = workdir / "osa_plugin_conf.yml"
        # ddaclient looks the public back-end up by the name "public".
        osa_conf.write_text(_OSA_CONF.format(dummy=json.dumps(str(dummy)),
                                             dda=json.dumps(f"public={dda.url}")))
        spiacs_conf = workdir / "spiacs_plugin_conf.yml"
        spiacs_conf.write_text(_SPIACS_CONF.format(dummy=json.dumps(str(dummy)),
                                                   acs=json.dumps(acs.url)))
    except BaseException:
        for service in services:
            service.stop()
        raise
    env = {"CDCI_OSA_PLUGIN_CONF_FILE": str(osa_conf),
           "CDCI_SPIACS_PLUGIN_CONF_FILE": str(spiacs_conf),
           "DDA_TOKEN": "offline-test-sky"}
    return services, env
