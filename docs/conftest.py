"""Run the documentation's examples against the local dispatcher with the INTEGRAL test sky.

The pages show the code a user writes against the public MMODA.  Here the
server, the token (``ODA_TOKEN``) and the cache folder are pointed at the test
set-up, so every example really runs.
"""
import pytest

RUNNING_PAGES = ("getting_started.rst", "products.rst")
#: Pages whose examples run against the current dispatcher's notebook service.
NOTEBOOK_PAGES = ("services.rst",)


@pytest.fixture
def _notebook_service_dispatcher(request, notebook_service_dispatchers):
    from astroquery_mmoda.testing.pytest_plugin import NOTEBOOK_SERVERS

    servers = [name for name in request.config._mmoda_servers if name in NOTEBOOK_SERVERS]
    if not servers:
        pytest.skip("notebook services need the current server")
    return notebook_service_dispatchers(servers[0])


@pytest.fixture(autouse=True)
def _local_mmoda(request, tmp_path, monkeypatch):
    name = request.node.path.name
    if name not in RUNNING_PAGES + NOTEBOOK_PAGES:
        yield
        return
    from astroquery import log

    from astroquery_mmoda import Mmoda, conf

    dispatcher = request.getfixturevalue(
        "_notebook_service_dispatcher" if name in NOTEBOOK_PAGES else "integral_dispatcher")
    monkeypatch.setenv("ODA_TOKEN", dispatcher.mint_token("general", sub="alice@example.org",
                                                          name="Alice"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.chdir(tmp_path)
    Mmoda.cache_location = tmp_path / "cache"
    level = log.level
    with conf.set_temp("server", dispatcher.url), conf.set_temp("poll_interval", 0.2):
        yield
    log.setLevel(level)
    Mmoda.logout()
    Mmoda.reset_cache_location()
