"""A real MMODA dispatcher on the loopback interface, for tests and offline work.

`LocalDispatcher` installs a dispatcher (``cdci-data-analysis`` 1.3.3 from PyPI,
or the current 1.3.6 from its sources; see `astroquery_mmoda.testing.servers`)
into a virtual environment of its own, from a lock file of exact versions
shipped with this package, starts it on a free port of
127.0.0.1 with a random token secret, and stops it again.  It mints tokens
signed with that secret and drives the dispatcher's built-in asynchronous test
back-end, so that a pipeline written against MMODA can be tested offline.
"""
import atexit
import contextlib
import datetime
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from .servers import (DEFAULT_SERVER, ProvisioningError, default_venv_dir, get_server,
                      provision_dispatcher_venv, venv_python)

__all__ = ["LocalDispatcher", "DispatcherStartError", "ProvisioningError",
           "provision_dispatcher_venv", "default_venv_dir", "DISPATCHER_VERSION"]

DISPATCHER_VERSION = get_server(DEFAULT_SERVER).version
LOCK_FILE = get_server(DEFAULT_SERVER).lock_file
LAUNCHER = Path(__file__).parent / "_launcher.py"
# The dummy back-end of the test instruments reads its state from this file in
# the server's working directory (missing file: the job is still running).
BACKEND_STATE_FILE = "DataServerQuery-status.state"
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

_CONFIG_TEMPLATE = """\
dispatcher:
    dummy_cache: dummy-cache
    products_url: PRODUCTS_URL
    dispatcher_callback_url_base: {url}
    sentry_url:
    logstash_host:
    logstash_port:
    secret_key: '{secret}'
    bind_options:
        bind_host: 127.0.0.1
        bind_port: {port}
    email_options:
        smtp_server: '127.0.0.1'
        sender_email_address: 'team@example.org'
        cc_receivers_email_addresses: []
        bcc_receivers_email_addresses: []
        smtp_port: 1
        smtp_server_password: ''
        email_sending_timeout: False
        email_sending_timeout_default_threshold: 1800
        email_sending_job_submitted: False
        email_sending_job_submitted_default_interval: 60
        sentry_for_email_sending_check: False
        incident_report_email_options:
            incident_report_sender_email_address: 'postmaster@example.org'
            incident_report_receivers_email_addresses: ['team@example.org']
"""


# What the server must not inherit from the process that starts it: a notebook's
# ``MPLBACKEND=module://matplotlib_inline...`` kills it, and the client's Python
# settings, proxies and virtual environment are not the server's.
_NOT_INHERITED = ("MPLBACKEND", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH",
                  "VIRTUAL_ENV", "CONDA_PREFIX", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
# Servers of this process that are running: stopped when it exits.
_RUNNING = weakref.WeakSet()


def server_environment(environ=None):
    """The environment of a local server: this process's, cleaned of what would break it.

    Examples
    --------
    >>> env = server_environment({"PATH": "/usr/bin", "MPLBACKEND": "module://matplotlib_inline.x",
    ...                           "https_proxy": "http://proxy:3128"})
    >>> sorted(env.items())
    [('DISPATCHER_DEBUG_MODE', 'yes'), ('MPLBACKEND', 'agg'), ('PATH', '/usr/bin'), ('PYTHONUNBUFFERED', '1')]
    """
    environ = os.environ if environ is None else environ
    env = {key: value for key, value in environ.items()
           if key.upper() not in _NOT_INHERITED and not key.upper().startswith(("JPY_", "JUPYTER_"))}
    env.update(MPLBACKEND="agg", DISPATCHER_DEBUG_MODE="yes", PYTHONUNBUFFERED="1")
    return env


@atexit.register
def _stop_running_servers():
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


class DispatcherStartError(RuntimeError):
    """The dispatcher did not start (its log is in the message).

    Examples
    --------
    >>> from astroquery_mmoda.testing import DispatcherStartError, LocalDispatcher
    >>> try:
    ...     dispatcher = LocalDispatcher().start()
    ... except DispatcherStartError as error:  # the exit code and the tail of the server's log
    ...     print(error)  # doctest: +SKIP
    """


def redact_tokens(text):
    """Replace every JWT-looking string in ``text`` by ``<token>``."""
    return _JWT_RE.sub("<token>", text)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalDispatcher:
    """A real MMODA dispatcher running on 127.0.0.1.

    Use it as a context manager (or call `start` and `stop`)::

        with LocalDispatcher() as dispatcher:
            token = dispatcher.mint_token(roles="general")
            # point the client at dispatcher.url

    Parameters
    ----------
    integral : bool
        Also serve the INTEGRAL instruments (``isgri``, ``jemx``, ``spi_acs``)
        from a synthetic test sky.  Without it only the dispatcher's own test
        instruments (``empty``, ``empty-async``, ``empty-semi-async``) exist.
    notebook_service : bool
        Also serve the instrument ``notebooks``: a real notebook service
        (nb2workflow's ``nb2service``) running the test notebooks of
        `astroquery_mmoda.testing.service_notebooks`, through the dispatcher's
        nb2workflow plugin (see `astroquery_mmoda.testing.notebook_service`).
        Only the ``"current"`` server has that plugin.
    server : str
        Which dispatcher: ``"1.3.3"`` (default, from PyPI) or ``"current"``
        (1.3.6, from ``sources``); see `astroquery_mmoda.testing.servers`.
    sources : str, optional
        For ``server="current"``: a folder of the upstream source archives or pip
        requirements (default: ``$MMODA_DISPATCHER_SOURCES``).
    venv_dir : path-like, optional
        The dispatcher's virtual environment (see `default_venv_dir`); it is
        installed on first use.
    workdir : path-like, optional
        The server's working directory (job scratch folders, log).  A fresh
        temporary folder, removed on `stop`, by default.
    startup_timeout : float
        Seconds to wait for the server to answer.
    """

    def __init__(self, *, integral=False, notebook_service=False, server=None, sources=None,
                 venv_dir=None, workdir=None, startup_timeout=90.0):
        self.integral = integral
        self.notebook_service = notebook_service
        self.server = get_server(server)
        if notebook_service and "dispatcher_plugin_nb2workflow" not in self.server.modules:
            raise ValueError(f"the MMODA server {self.server} has no nb2workflow plugin: "
                             "notebook_service=True needs server='current'")
        self.sources = sources
        self.venv_dir = Path(venv_dir) if venv_dir else None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.startup_timeout = startup_timeout
        self.port = None
        self._secret = secrets.token_urlsafe(48)
        self._process = None
        self._log_handle = None
        self._services = []

    def __repr__(self):
        state = f"running at {self.url}" if self.running else "stopped"
        return f"<LocalDispatcher cdci-data-analysis {self.server.version}, {state}>"

    # -- life cycle -----------------------------------------------------------------

    @property
    def url(self):
        """Root URL of the dispatcher (``http://127.0.0.1:PORT``)."""
        if self.port is None:
            raise RuntimeError("the local dispatcher is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self):
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self):
        """The server's log file."""
        return self.workdir / "dispatcher.log"

    def start(self):
        """Provision (first time only), configure and start the server.

        Returns
        -------
        LocalDispatcher
            ``self``, ready to answer.
        """
        if self.running:
            return self
        self.venv_dir = provision_dispatcher_venv(self.venv_dir, server=self.server,
                                                  sources=self.sources)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="mmoda-dispatcher-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = server_environment()
        if self.integral:
            env.update(self._start_integral_services())
        if self.notebook_service:
            env.update(self._start_notebook_service())
        for attempt in range(3):
            self.port = _free_port()
            conf = self.workdir / "conf_env.yml"
            conf.write_text(_CONFIG_TEMPLATE.format(url=f"http://127.0.0.1:{self.port}",
                                                    secret=self._secret, port=self.port))
            self._log_handle = open(self.log_path, "ab")
            command = [str(venv_python(self.venv_dir)), "-W", "ignore", str(LAUNCHER),
                       "--conf-file", str(conf), "--parent-pid", str(os.getpid()),
                       *self.server.launcher_options]
            if self._own_workdir:  # a server whose parent died removes its temporary folder
                command += ["--remove-when-orphaned", str(self.workdir)]
            if self.integral:
                command.append("--integral")
            if self.notebook_service:
                command.append("--notebooks")
            self._process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                self._wait_ready()
                _RUNNING.add(self)
                return self
            except DispatcherStartError:
                log = self.log_text()
                self._terminate()
                if "Address already in use" not in log or attempt == 2:
                    self._stop_services()
                    raise
        return self  # pragma: no cover

    def _wait_ready(self):
        import requests

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DispatcherStartError(
                    f"the dispatcher exited with code {self._process.returncode}; its log:\n"
                    + self.log_text(tail=6000))
            try:
                answer = requests.get(f"{self.url}/api/instr-list",
                                      params={"instrument": "mock"}, timeout=5)
                if answer.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise DispatcherStartError(
            f"the dispatcher did not answer within {self.startup_timeout} s; its log:\n"
            + self.log_text(tail=6000))

    def _terminate(self):
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # The server runs in its own session: signal its group, which holds
            # only this server and any helpers it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def stop(self):
        """Stop the server (and only it) and remove its temporary working folder.

        Servers still running when this process exits are stopped then; a
        server whose parent was killed stops itself within about a second.
        """
        _RUNNING.discard(self)
        self._terminate()
        self._stop_services()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.port = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def log_text(self, *, tail=None):
        """The server's log so far, with tokens redacted.

        Parameters
        ----------
        tail : int, optional
            Only the last ``tail`` characters.
        """
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, TypeError):
            return ""
        text = redact_tokens(text)
        return text[-tail:] if tail else text

    # -- INTEGRAL test sky (astroquery_mmoda.testing.sky) ---------------------------

    def _start_integral_services(self):
        from .sky import start_integral_services

        services, env = start_integral_services(self.workdir)
        self._services.extend(services)
        return env

    def _start_notebook_service(self):
        from .notebook_service import start_notebook_service

        try:
            services, env = start_notebook_service(self.workdir, venv_python(self.venv_dir))
        except BaseException:
            self._stop_services()
            raise
        self._services.extend(services)
        return env

    def _stop_services(self):
        while self._services:
            self._services.pop().stop()

    # -- tokens -----------------------------------------------------------------

    def mint_token(self, roles="general", *, expires_in=86400, sub="tester@example.org",
                   email=None, name="Test User", **claims):
        """A token that this dispatcher accepts.

        Parameters
        ----------
        roles : str or list of str
            Comma-separated roles, or a list; ``""`` for none.
        expires_in : float or `~astropy.units.Quantity`
            Lifetime in seconds (negative for an expired token); 24 hours by
            default, like the tokens of the MMODA web site.
        sub, email, name : str
            Identity claims; ``email`` defaults to ``sub``.
        **claims
            Further claims (they override the defaults).

        Returns
        -------
        str
            The HS256-signed JWT.
        """
        import jwt

        if hasattr(expires_in, "to_value"):
            expires_in = expires_in.to_value("s")
        if not isinstance(roles, str):
            roles = ",".join(roles)
        now = datetime.datetime.now(datetime.timezone.utc)
        payload = {
            "sub": sub, "email": email or sub, "name": name, "roles": roles,
            "iat": int(now.timestamp()),
            "exp": int((now + datetime.timedelta(seconds=float(expires_in))).timestamp()),
            # E-mail options off: otherwise each submitted job waits for an SMTP server.
            "mssub": False, "msdone": False, "msfail": False, "mstout": False,
            "tem": 0, "intsub": 5,
        }
        payload.update(claims)
        return jwt.encode(payload, self._secret, algorithm="HS256")

    # -- the dummy asynchronous back-end ------------------------------------------

    def call_back(self, job_id, session_id, *, action="progress", instrument="empty-async",
                  node_id="node_1", message="progressing", **extra):
        """Send a back-end report to the dispatcher's ``/call_back`` route.

        This is how a computing back-end tells the dispatcher about a job's
        progress (``action="progress"``) or end (``action="done"``).
        """
        import requests

        params = dict(job_id=job_id, session_id=session_id, instrument_name=instrument,
                      action=action, node_id=node_id, message=message, **extra)
        answer = requests.get(f"{self.url}/call_back", params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def set_backend_status(self, status):
        """Make the dummy back-end report ``status`` ("done", "failed") for every job.

        ``None`` restores the default, "submitted" (the job keeps running).
        The state is global to the server: tests that change it must not run
        in parallel against one server.
        """
        path = self.workdir / BACKEND_STATE_FILE
        if status is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(status)

    def finish_job(self, job_id, session_id, *, instrument="empty-async"):
        """Let the dummy back-end finish a job: state "done" and a final call-back."""
        self.set_backend_status("done")
        return self.call_back(job_id, session_id, action="done", instrument=instrument,
                              node_id="node_final", message="done")
