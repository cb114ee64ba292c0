"""pytest fixtures for testing code against a real local MMODA dispatcher.

Registered as a pytest plugin when ``astroquery_mmoda`` is installed.  Fixtures:

``mmoda_server``
    The name of the dispatcher version under test (``"1.3.3"`` or ``"current"``,
    see `astroquery_mmoda.testing.servers`).  Every test that uses it, directly or
    through the fixtures below, runs once per selected server.
``local_dispatcher``
    A session-wide `~astroquery_mmoda.testing.LocalDispatcher` of that server with
    the dispatcher's test instruments.
``mmoda_token``
    A factory of tokens for that dispatcher:
    ``mmoda_token(roles="general", expires_in=3600, sub=...)``.
``integral_dispatcher``
    A session-wide `~astroquery_mmoda.testing.LocalDispatcher` with the INTEGRAL
    instruments (``isgri``, ``jemx``, ``spi_acs``) and the synthetic test sky of
    ``astroquery_mmoda.testing.sky``; tokens from its ``mint_token``.
``notebook_dispatcher``
    A session-wide `~astroquery_mmoda.testing.LocalDispatcher` of the current
    server with the notebook service (instrument ``notebooks``, see
    `astroquery_mmoda.testing.notebook_service`); only the ``"current"`` server
    has it, so tests using it run only when that server is selected.

The servers are chosen with ``--mmoda-server=1.3.3,current``; by default every
server that can be provisioned here (``"current"`` needs
``$MMODA_DISPATCHER_SOURCES``), and the terminal summary says in one line which
server was not tested.  Tests that use them should be marked ``integration``.
When a server cannot be provisioned or started the fixture errors: it never skips.
"""
import pytest

from .servers import SERVERS, SOURCES_ENV, available_servers, get_server


def pytest_addoption(parser):
    parser.getgroup("mmoda").addoption(
        "--mmoda-server", default=None, metavar="NAMES",
        help=f"comma-separated MMODA dispatchers for the integration tests ({', '.join(SERVERS)}); "
             "default: every one that can be provisioned here")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: runs against a real MMODA dispatcher on 127.0.0.1")
    available = available_servers()
    option = config.getoption("mmoda_server", None)
    if option:
        chosen = [name.strip() for name in option.split(",") if name.strip()]
        for name in chosen:
            if name not in SERVERS:
                raise pytest.UsageError(
                    f"--mmoda-server: unknown server {name!r}; known: {', '.join(SERVERS)}")
            if name not in available:
                raise pytest.UsageError(f"--mmoda-server: {_not_available(name)}")
        config._mmoda_untested = []
    else:
        chosen = available
        config._mmoda_untested = [name for name in SERVERS if name not in available]
    config._mmoda_servers = chosen
    config._mmoda_used = False


def _not_available(name):
    return (f"the MMODA server {get_server(name)} cannot be provisioned: set {SOURCES_ENV} "
            f"to a folder of its source archives or to pip requirements")


#: The servers that have the nb2workflow plugin (notebook services).
NOTEBOOK_SERVERS = ("current",)


def pytest_generate_tests(metafunc):
    if "mmoda_server" in metafunc.fixturenames:
        metafunc.config._mmoda_used = True
        servers = metafunc.config._mmoda_servers
        if "notebook_dispatcher" in metafunc.fixturenames:
            servers = [name for name in servers if name in NOTEBOOK_SERVERS] or [pytest.param(
                None, marks=pytest.mark.skip(reason="notebook services need the current server"))]
        metafunc.parametrize("mmoda_server", servers, indirect=True, scope="session")


def pytest_terminal_summary(terminalreporter, config):
    if config._mmoda_used:
        for name in config._mmoda_untested:
            terminalreporter.write_line(f"Not tested: {_not_available(name)}.", yellow=True)


@pytest.fixture(scope="session")
def mmoda_server(request):
    """Name of the MMODA dispatcher version under test (the test's parameter)."""
    return getattr(request, "param", request.config._mmoda_servers[0])


@pytest.fixture(scope="session")
def local_dispatcher(mmoda_server):
    """A real MMODA dispatcher on 127.0.0.1 for the whole test session."""
    from .local_dispatcher import LocalDispatcher

    with LocalDispatcher(server=mmoda_server) as dispatcher:
        yield dispatcher


@pytest.fixture(scope="session")
def integral_dispatcher(mmoda_server):
    """A real MMODA dispatcher with the INTEGRAL plugins and the test sky, for the session."""
    from .local_dispatcher import LocalDispatcher

    with LocalDispatcher(server=mmoda_server, integral=True) as dispatcher:
        yield dispatcher


@pytest.fixture(scope="session")
def notebook_service_dispatchers():
    """``get(server)``: the session's dispatcher with the notebook service on ``server``, started once."""
    from .local_dispatcher import LocalDispatcher

    running = {}

    def get(server):
        if server not in running:
            running[server] = LocalDispatcher(server=server, notebook_service=True).start()
        return running[server]
    yield get
    for dispatcher in running.values():
        dispatcher.stop()


@pytest.fixture(scope="session")
def notebook_dispatcher(mmoda_server, notebook_service_dispatchers):
    """A real current MMODA dispatcher serving the test notebooks as the instrument ``notebooks``."""
    return notebook_service_dispatchers(mmoda_server)


@pytest.fixture
def mmoda_token(local_dispatcher):
    """Factory of tokens accepted by ``local_dispatcher``."""
    def mint(roles="general", **options):
        return local_dispatcher.mint_token(roles, **options)
    return mint


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        for name in ("local_dispatcher", "integral_dispatcher", "notebook_dispatcher"):
            dispatcher = getattr(item, "funcargs", {}).get(name)
            if dispatcher is not None and hasattr(dispatcher, "log_text"):
                report.sections.append((f"{name} server log (tail)",
                                        dispatcher.log_text(tail=4000)))
