"""The MMODA dispatcher versions that `LocalDispatcher` can run, and their virtual environments.

Two servers are known:

``"1.3.3"``
    ``cdci-data-analysis`` 1.3.3, the last release on PyPI, with the 1.0 INTEGRAL
    plugins; installed from PyPI with the lock file shipped in this package.  The
    default, since it needs nothing but PyPI.
``"current"``
    ``cdci-data-analysis`` 1.3.6, what the public MMODA runs, with the INTEGRAL plugin
    2.0, the all-sky plugin and the nb2workflow plugin (with nb2workflow, the notebook
    service, from PyPI).  They are not on PyPI: they come from a folder of
    their source archives or from pip requirements (``$MMODA_DISPATCHER_SOURCES``,
    see `server_sources`); every other package is pinned by this server's own lock file.

Each server gets a cached virtual environment of its own, named after the server,
a digest of its lock file (and sources) and the Python version.
"""
import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["SERVERS", "DEFAULT_SERVER", "SOURCES_ENV", "ServerSpec", "ProvisioningError",
           "get_server", "server_sources", "available_servers", "default_venv_dir",
           "provision_dispatcher_venv"]

SOURCES_ENV = "MMODA_DISPATCHER_SOURCES"
VENV_ENV = "MMODA_DISPATCHER_VENV"
_DATA = Path(__file__).parent / "data"
_READY_MARKER = ".provisioned"
# Written first into every environment this module creates: only such folders are
# ever removed (to re-install), never a folder somebody else made.
_OWNER_MARKER = ".made-by-astroquery-mmoda"


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


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """One dispatcher version and how to install and start it.

    Attributes
    ----------
    name : str
        The name given to ``LocalDispatcher(server=...)``.
    version : str
        The ``cdci-data-analysis`` version.
    lock_file : pathlib.Path
        Exact versions of every package installed from PyPI.
    source_archives : tuple of str
        For a server that is not on PyPI: the upstream repository names whose
        ``git archive`` snapshots (``NAME-COMMIT.tar.gz``) provide it.
    launcher_options : tuple of str
        The launcher's work-arounds this version still needs.
    modules : tuple of str
        What must import once installed (checked at the end of provisioning).
    """

    name: str
    version: str
    lock_file: Path
    source_archives: tuple = ()
    launcher_options: tuple = ()
    modules: tuple = ("cdci_data_analysis", "cdci_osa_plugin", "dispatcher_plugin_integral_all_sky")

    def __str__(self):
        return f"{self.name} (cdci-data-analysis {self.version})"


SERVERS = {
    "1.3.3": ServerSpec("1.3.3", "1.3.3", _DATA / "dispatcher-1.3.3.lock.txt",
                        launcher_options=("--numpy-aliases",)),
    "current": ServerSpec("current", "1.3.6", _DATA / "dispatcher-current.lock.txt",
                          source_archives=("dispatcher-app", "dispatcher-plugin-integral",
                                           "dispatcher-plugin-integral-all-sky",
                                           "dispatcher-plugin-nb2workflow"),
                          modules=("cdci_data_analysis", "cdci_osa_plugin",
                                   "dispatcher_plugin_integral_all_sky", "dispatcher_plugin_nb2workflow",
                                   "nb2workflow.json")),
}
DEFAULT_SERVER = "1.3.3"


def get_server(server=None):
    """The `ServerSpec` named ``server`` (default: `DEFAULT_SERVER`).

    Examples
    --------
    >>> from astroquery_mmoda.testing.servers import get_server
    >>> get_server("current").version
    '1.3.6'
    """
    if isinstance(server, ServerSpec):
        return server
    name = DEFAULT_SERVER if server is None else str(server)
    if name not in SERVERS:
        raise ValueError(f"unknown MMODA server {name!r}; known: {', '.join(SERVERS)}")
    return SERVERS[name]


def _split_requirements(text):
    # Commas separate requirements, except inside extras brackets.
    return [part.strip() for part in re.split(r",(?![^\[]*\])", text) if part.strip()]


def server_sources(server=None, sources=None):
    """What pip installs, besides the lock file, for ``server``; ``None`` when unavailable.

    Parameters
    ----------
    server : str or ServerSpec
    sources : str or path-like, optional
        A folder holding one ``NAME-COMMIT.tar.gz`` archive per entry of the
        server's ``source_archives``, or pip requirements separated by commas
        (e.g. ``cdci-data-analysis @ git+https://github.com/oda-hub/dispatcher-app@955494bf``).
        Default: ``$MMODA_DISPATCHER_SOURCES``.

    Returns
    -------
    list of str or None
        Archive paths or requirements; ``[]`` for a server on PyPI; ``None``
        when the server needs sources that were not given or not found.
    """
    spec = get_server(server)
    if not spec.source_archives:
        return []
    sources = sources if sources is not None else os.environ.get(SOURCES_ENV, "")
    sources = str(sources).strip()
    if not sources:
        return None
    folder = Path(sources).expanduser()
    if not folder.is_dir():
        if os.sep in sources and "@" not in sources:
            return None  # a folder that does not exist
        return _split_requirements(sources)
    found = []
    for name in spec.source_archives:
        pattern = re.compile(re.escape(name) + r"-[0-9a-f]{6,40}\.(tar\.gz|tgz|zip)$")
        matches = sorted(path for path in folder.iterdir() if pattern.match(path.name))
        if not matches:
            return None
        found.append(str(matches[-1]))
    return found


def available_servers(sources=None):
    """Names of the servers that can be provisioned here (PyPI ones always).

    Examples
    --------
    >>> from astroquery_mmoda.testing.servers import available_servers
    >>> "1.3.3" in available_servers()
    True
    """
    return [name for name in SERVERS if server_sources(name, sources) is not None]


def _digest(spec, sources):
    digest = hashlib.sha256(spec.lock_file.read_bytes())
    for source in sources:
        path = Path(source)
        digest.update(path.read_bytes() if path.is_file() else source.encode())
    return digest.hexdigest()[:12]


def default_venv_dir(server=None, sources=None):
    """Where a server's virtual environment is kept between runs.

    ``$MMODA_DISPATCHER_VENV`` when set (for the default server only), else a folder
    named after the server, the digest of its lock file and sources and the Python
    version under ``$XDG_CACHE_HOME/astroquery_mmoda`` (``~/.cache/astroquery_mmoda``).

    Examples
    --------
    >>> from astroquery_mmoda.testing import default_venv_dir
    >>> venv = default_venv_dir()  # nothing is installed or created
    >>> venv.name  # doctest: +SKIP
    'dispatcher-1.3.3-2fd2558927a7-py311'
    """
    spec = get_server(server)
    if spec.name == DEFAULT_SERVER and os.environ.get(VENV_ENV):
        return Path(os.environ[VENV_ENV]).expanduser()
    found = server_sources(spec, sources) or []
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache / "astroquery_mmoda" / f"dispatcher-{spec.name}-{_digest(spec, found)}-{py}"


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


def venv_python(venv_dir):
    """The interpreter of a virtual environment."""
    return Path(venv_dir) / "bin" / "python"


def _run(step, venv_dir, timeout):
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


def _clear(venv_dir, spec):
    """Remove an outdated environment, but only one that this module made for ``spec``."""
    if not venv_dir.exists():
        return
    owner = venv_dir / _OWNER_MARKER
    if not owner.exists() and any(venv_dir.iterdir()):
        raise ProvisioningError(
            f"{venv_dir} exists and was not made by astroquery_mmoda.testing: "
            "not touching it; remove it yourself or choose another folder")
    if owner.exists() and owner.read_text().strip() != str(spec):
        raise ProvisioningError(
            f"{venv_dir} holds the MMODA server {owner.read_text().strip()}, not {spec}: "
            "not touching it; give the server that matches it or another folder")
    shutil.rmtree(venv_dir)


def provision_dispatcher_venv(venv_dir=None, *, server=None, sources=None, python=None,
                              timeout=1200):
    """Install a dispatcher into ``venv_dir`` unless it is already there.

    The second call with the same lock file and sources returns at once.
    Concurrent calls (several test processes) wait for each other.

    Parameters
    ----------
    venv_dir : path-like, optional
        Defaults to `default_venv_dir`.
    server : str, optional
        ``"1.3.3"`` (default) or ``"current"`` (see `SERVERS`).
    sources : str, optional
        For ``"current"``: see `server_sources`.
    python : str, optional
        Interpreter that creates the environment (default: the running one).
    timeout : float
        Seconds allowed for each installation step.

    Returns
    -------
    pathlib.Path
        The environment's folder.

    Raises
    ------
    ProvisioningError
        With pip's output when the installation fails, or when the server's
        sources are not available.

    Examples
    --------
    >>> from astroquery_mmoda.testing import LocalDispatcher, provision_dispatcher_venv
    >>> venv = provision_dispatcher_venv()  # minutes the first time, then at once  # doctest: +SKIP
    >>> with LocalDispatcher(venv_dir=venv) as dispatcher:  # doctest: +SKIP
    ...     token = dispatcher.mint_token(roles="general")
    """
    spec = get_server(server)
    found = server_sources(spec, sources)
    if found is None:
        raise ProvisioningError(
            f"the MMODA server {spec} is not on PyPI: set ${SOURCES_ENV} to a folder of the "
            f"source archives of {', '.join(spec.source_archives)}, or to pip requirements")
    venv_dir = Path(venv_dir) if venv_dir else default_venv_dir(spec, sources)
    marker = venv_dir / _READY_MARKER
    digest = _digest(spec, found)
    if marker.exists() and marker.read_text().strip() == digest:
        return venv_dir
    with _file_lock(venv_dir.with_name(venv_dir.name + ".lock")):
        if marker.exists() and marker.read_text().strip() == digest:
            return venv_dir
        _clear(venv_dir, spec)
        venv_dir.mkdir(parents=True)
        (venv_dir / _OWNER_MARKER).write_text(f"{spec}\n")
        pip = [str(venv_python(venv_dir)), "-m", "pip", "install", "--no-deps",
               "--disable-pip-version-check", "--no-input"]
        steps = [[python or sys.executable, "-m", "venv", str(venv_dir)],
                 pip + ["-r", str(spec.lock_file)]]
        if found:
            steps.append(pip + found)
        steps.append([str(venv_python(venv_dir)), "-W", "ignore", "-c", f"import {', '.join(spec.modules)}"])
        for step in steps:
            _run(step, venv_dir, timeout)
        marker.write_text(digest)
    return venv_dir
