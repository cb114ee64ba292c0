"""A real notebook service (nb2workflow's ``nb2service``) on 127.0.0.1, for the current dispatcher.

``LocalDispatcher(server="current", notebook_service=True)`` starts `NotebookService`
with the notebooks of `~astroquery_mmoda.testing.service_notebooks` and exposes
them through the dispatcher's nb2workflow plugin as the instrument
`INSTRUMENT`, one product per notebook, as the public MMODA exposes its
notebook-based services.

Offline, nb2workflow (in the service and in every notebook kernel it starts)
would fetch the ODA ontology from ``http://odahub.io/ontology/ontology.ttl``.
The service is given a loopback HTTP proxy, `OntologyProxy`, that answers that
address with the small ontology shipped here (`ONTOLOGY_FILE`) and refuses every
other one, so that nothing leaves the machine; the plugin reads the same file
through ``$ODA_ONTOLOGY_PATH``.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .service_notebooks import write_notebooks
from .sky.services import _LoopbackService

__all__ = ["INSTRUMENT", "ONTOLOGY_FILE", "OntologyProxy", "NotebookService",
           "start_notebook_service"]

#: The dispatcher's name of the notebook service.
INSTRUMENT = "notebooks"
#: The ontology terms the test notebooks use (Turtle).
ONTOLOGY_FILE = Path(__file__).parent / "data" / "oda-ontology-subset.ttl"
ONLINE_ONTOLOGY = ("odahub.io", "/ontology/ontology.ttl")
_LAUNCHER = Path(__file__).parent / "_nb2service_launcher.py"

_PLUGIN_CONF = """\
instruments:
  {instrument}:
    data_server_url: {url}
    dummy_cache: ""
    restricted_access: false
ontology_path: {ontology}
"""


class OntologyProxy(_LoopbackService):
    """An HTTP proxy on 127.0.0.1 that serves the ODA ontology from `ONTOLOGY_FILE`.

    Every other address is answered with 403, and recorded in ``refused``.
    """

    name = "ontology-proxy"

    def __init__(self, ontology=ONTOLOGY_FILE):
        super().__init__()
        self._ontology = Path(ontology).read_bytes()
        self.refused = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _dispatch(self, method, path, query, body, headers):
        host = (headers.get("Host") or "").split(":")[0]
        if method == "GET" and (host, path) == ONLINE_ONTOLOGY:
            return 200, "text/turtle", self._ontology
        with self._lock:
            self.refused.append(f"{method} {host}{path}")
        return 403, "text/plain", b"offline: only the ODA ontology is served here"


class NotebookService:
    """``nb2service`` serving a folder of notebooks on a free port of 127.0.0.1.

    Parameters
    ----------
    python : path-like
        The interpreter of an environment with nb2workflow (the current
        dispatcher's).
    workdir : path-like
        Where the notebooks are written and the service runs (its log is
        ``nb2service.log`` there).
    notebooks : list of str, optional
        Names from `~astroquery_mmoda.testing.service_notebooks.NOTEBOOKS`
        (default: all).
    startup_timeout : float
        Seconds to wait for the service to answer.
    """

    def __init__(self, python, workdir, *, notebooks=None, startup_timeout=120.0):
        self.python = str(python)
        self.workdir = Path(workdir)
        self.notebooks = notebooks
        self.startup_timeout = startup_timeout
        self.port = None
        self.proxy = None
        self._process = None
        self._log = None

    @property
    def url(self):
        """Root URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self):
        return self.workdir / "nb2service.log"

    def start(self):
        """Write the notebooks, start the proxy and the service; returns ``self`` once it answers."""
        from .local_dispatcher import _free_port, server_environment

        folder = self.workdir / "notebooks"
        write_notebooks(folder, self.notebooks)
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        self.proxy = OntologyProxy().start()
        env = server_environment()
        env.update(http_proxy=self.proxy.url, HTTP_PROXY=self.proxy.url, https_proxy=self.proxy.url,
                   HTTPS_PROXY=self.proxy.url, no_proxy="127.0.0.1,localhost",
                   NO_PROXY="127.0.0.1,localhost", NB2W_CACHE=str(self.workdir / "nb2w-cache"),
                   HOME=str(self.workdir), TMPDIR=str(tmp))  # kernels and jobs write here only
        self.port = _free_port()
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [self.python, "-W", "ignore", str(_LAUNCHER), "--parent-pid", str(os.getpid()),
             str(folder), "--host", "127.0.0.1", "--port", str(self.port), "--async-workers", "2"],
            cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        import requests

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nb2service exited with code {self._process.returncode}:\n"
                                   + self.log_text()[-4000:])
            try:
                if requests.get(f"{self.url}/api/v1.0/options", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"nb2service did not answer within {self.startup_timeout} s:\n"
                           + self.log_text()[-4000:])

    def log_text(self):
        """The service's log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Stop the service (and the kernels it started) and the proxy."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None


def start_notebook_service(workdir, python):
    """Start a `NotebookService` and write the nb2workflow plugin's configuration.

    Returns
    -------
    services : list
        The running `NotebookService` (it has ``stop()``).
    env : dict
        The dispatcher's environment: the plugin's configuration file and the
        ontology.
    """
    workdir = Path(workdir)
    service = NotebookService(python, workdir / "notebook-service")
    service.workdir.mkdir(parents=True, exist_ok=True)
    service.start()
    conf = workdir / "nb2w_plugin_conf.yml"
    conf.write_text(_PLUGIN_CONF.format(instrument=INSTRUMENT, url=json.dumps(service.url),
                                        ontology=json.dumps(str(ONTOLOGY_FILE))))
    return [service], {"CDCI_NB2W_PLUGIN_CONF_FILE": str(conf), "ODA_ONTOLOGY_PATH": str(ONTOLOGY_FILE)}
