"""A real MMODA dispatcher on the loopback interface, for tests and offline work.

`LocalDispatcher` installs the dispatcher (``cdci-data-analysis`` 1.3.3, the
last release on PyPI) into a virtual environment of its own, from a lock file of
exact versions shipped with this package, starts it on a free port of
127.0.0.1 with a random token secret, and stops it again.  It mints tokens
signed with that secret and drives the dispatcher's built-in asynchronous test
back-end, so that a pipeline written against MMODA can be tested offline.
"""
import contextlib
import datetime
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["LocalDispatcher", "DispatcherStartError", "ProvisioningError",
           "provision_dispatcher_venv", "default_venv_dir", "DISPATCHER_VERSION"]

DISPATCHER_VERSION = "1.3.3"
LOCK_FILE = Path(__file__).parent / "data" / f"dispatcher-{DISPATCHER_VERSION}.lock.txt"
LAUNCHER = Path(__file__).parent / "_launcher.py"
_READY_MARKER = ".provisioned"
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


class ProvisioningError(RuntimeError):
    """The dispatcher's virtual environment could not be installed.

    Examples
    --------
    >>> from astroquery_mmoda.testing import ProvisioningError, provision_dispatcher_venv
    >>> try:
    ...     venv = provision_dispatcher_venv()
    ... except ProvisioningError as error:  # e.g. no network: pip's output is in the message
    ...     print(error)  # doctest: +SKIP
    """


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


def _lock_digest():
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:12]


def default_venv_dir():
    """Where the dispatcher's virtual environment is kept between runs.

    ``$MMODA_DISPATCHER_VENV`` when set, else a folder named after the
    dispatcher version, the lock file's digest and the Python version under
    ``$XDG_CACHE_HOME/astroquery_mmoda`` (``~/.cache/astroquery_mmoda``).

    Examples
    --------
    >>> from astroquery_mmoda.testing import default_venv_dir
    >>> venv = default_venv_dir()  # nothing is installed or created
    >>> venv.name  # doctest: +SKIP
    'dispatcher-1.3.3-2fd2558927a7-py311'
    """
    if os.environ.get("MMODA_DISPATCHER_VENV"):
        return Path(os.environ["MMODA_DISPATCHER_VENV"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache / "astroquery_mmoda" / f"dispatcher-{DISPATCHER_VERSION}-{_lock_digest()}-{py}"


@contextlib.contextmanager
def _file_lock(path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _venv_python(venv_dir):
    return Path(venv_dir) / "bin" / "python"


def provision_dispatcher_venv(venv_dir=None, *, python=None, timeout=1200):
    """Install the dispatcher into ``venv_dir`` unless it is already there.

    The second call with the same lock file returns at once.  Concurrent calls
    (several test processes) wait for each other.

    Parameters
    ----------
    venv_dir : path-like, optional
        Defaults to `default_venv_dir`.
    python : str, optional
        Interpreter that creates the environment (default: the running one).
    timeout : float
        Seconds allowed for the installation.

    Returns
    -------
    pathlib.Path
        The environment's folder.

    Raises
    ------
    ProvisioningError
        With pip's output when the installation fails.

    Examples
    --------
    >>> from astroquery_mmoda.testing import LocalDispatcher, provision_dispatcher_venv
    >>> venv = provision_dispatcher_venv()  # minutes the first time, then at once  # doctest: +SKIP
    >>> with LocalDispatcher(venv_dir=venv) as dispatcher:  # doctest: +SKIP
    ...     token = dispatcher.mint_token(roles="general")
    """
    venv_dir = Path(venv_dir) if venv_dir else default_venv_dir()
    marker = venv_dir / _READY_MARKER
    digest = _lock_digest()
    if marker.exists() and marker.read_text().strip() == digest:
        return venv_dir
    with _file_lock(venv_dir.with_name(venv_dir.name + ".lock")):
        if marker.exists() and marker.read_text().strip() == digest:
            return venv_dir
        if venv_dir.exists():
            shutil.rmtree(venv_dir)
        steps = [
            [python or sys.executable, "-m", "venv", str(venv_dir)],
            [str(_venv_python(venv_dir)), "-m", "pip", "install", "--no-deps",
             "--disable-pip-version-check", "--no-input", "-r", str(LOCK_FILE)],
            [str(_venv_python(venv_dir)), "-W", "ignore", "-c",
             "import cdci_data_analysis, cdci_osa_plugin, dispatcher_plugin_integral_all_sky"],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=timeout,
                                      stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ProvisioningError(
                    f"could not provision the MMODA dispatcher in {venv_dir}: {exc}") from None
            if done.returncode != 0:
                output = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                                   if "is ignored: it is neither a file nor" not in line)
                raise ProvisioningError(
                    f"could not provision the MMODA dispatcher in {venv_dir}; "
                    f"'{' '.join(step[:4])} ...' exited with {done.returncode}:\n{output[-6000:]}")
        marker.write_text(digest)
    return venv_dir


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
    venv_dir : path-like, optional
        The dispatcher's virtual environment (see `default_venv_dir`); it is
        installed on first use.
    workdir : path-like, optional
        The server's working directory (job scratch folders, log).  A fresh
        temporary folder, removed on `stop`, by default.
    startup_timeout : float
        Seconds to wait for the server to answer.
    """

    def __init__(self, *, integral=False, venv_dir=None, workdir=None, startup_timeout=90.0):
        self.integral = integral
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
        return f"<LocalDispatcher cdci-data-analysis {DISPATCHER_VERSION}, {state}>"

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
        self.venv_dir = provision_dispatcher_venv(self.venv_dir)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="mmoda-dispatcher-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items()
               if key.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env["DISPATCHER_DEBUG_MODE"] = "yes"
        env["PYTHONUNBUFFERED"] = "1"
        if self.integral:
            env.update(self._start_integral_services())
        for attempt in range(3):
            self.port = _free_port()
            conf = self.workdir / "conf_env.yml"
            conf.write_text(_CONFIG_TEMPLATE.format(url=f"http://127.0.0.1:{self.port}",
                                                    secret=self._secret, port=self.port))
            self._log_handle = open(self.log_path, "ab")
            command = [str(_venv_python(self.venv_dir)), "-W", "ignore", str(LAUNCHER),
                       "--conf-file", str(conf)]
            if self.integral:
                command.append("--integral")
            self._process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                self._wait_ready()
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
        """Stop the server (and only it) and remove its temporary working folder."""
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

    # -- INTEGRAL test sky (extended by astroquery_mmoda.testing.integral_sky) -------

    def _start_integral_services(self):
        from .integral_sky import start_integral_services

        services, env = start_integral_services(self.workdir)
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
