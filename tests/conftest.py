"""Test configuration.

The fixtures ``mmoda_server``, ``local_dispatcher``, ``integral_dispatcher`` and
``mmoda_token`` come from the package's pytest plugin
(``astroquery_mmoda.testing.pytest_plugin``); every test using them runs once per
server.  What differs between the servers is in ``integration/server_differences.py``.
"""
import importlib.util
from pathlib import Path

import pytest
from astropy.config.paths import set_temp_cache


@pytest.fixture(scope="session", autouse=True)
def _private_astropy_cache(tmp_path_factory):
    """Keep the tests' results, journals and descriptions out of the user's cache folder."""
    with set_temp_cache(tmp_path_factory.mktemp("astropy-cache")):
        yield


@pytest.fixture(autouse=True)
def _offline_sesame(monkeypatch):
    """Name resolution never leaves the machine: Sesame answers "unreachable" unless a test records it."""
    import urllib.error

    from astropy.coordinates import name_resolve

    def unreachable(url, *args, **kwargs):
        raise urllib.error.URLError("no internet in the tests")

    monkeypatch.setattr(name_resolve, "download_file", unreachable)


def _load_server_differences():
    # A plain file beside the integration tests, loaded by path (tests are not a package).
    path = Path(__file__).parent / "integration" / "server_differences.py"
    spec = importlib.util.spec_from_file_location("mmoda_server_differences", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVER_DIFFERENCES = _load_server_differences()


def pytest_collection_modifyitems(config, items):
    """Strict xfails from the table of server differences, for the server each test runs on."""
    for item in items:
        server = getattr(item, "callspec", None) and item.callspec.params.get("mmoda_server")
        reason = server and SERVER_DIFFERENCES.xfail_reason(server, item.originalname)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=f"on {server}: {reason}", strict=True))


@pytest.fixture
def server_expects(mmoda_server):
    """``server_expects(key)``: what the server under test answers (see server_differences.py)."""
    return lambda key: SERVER_DIFFERENCES.expected(mmoda_server, key)


@pytest.fixture
def backend(local_dispatcher):
    """The local dispatcher with its dummy back-end reset before and after the test."""
    local_dispatcher.set_backend_status(None)
    yield local_dispatcher
    local_dispatcher.set_backend_status(None)


@pytest.fixture
def cache_on():
    """astroquery's global cache switch on (threads of earlier tests may have left it off)."""
    from astroquery import cache_conf

    active = cache_conf.cache_active
    cache_conf.cache_active = True
    yield
    cache_conf.cache_active = active
