"""Run the documentation's examples against the local dispatcher with the INTEGRAL test sky.

The pages show the code a user writes against the public MMODA.  Here the
server, the token (``ODA_TOKEN``) and the cache folder are pointed at the test
set-up, so every example really runs.
"""
import pytest

RUNNING_PAGES = ("getting_started.rst", "products.rst")


@pytest.fixture(autouse=True)
def _local_mmoda(request, tmp_path, monkeypatch):
    if request.node.path.name not in RUNNING_PAGES:
        yield
        return
    from astroquery_mmoda import Mmoda, conf

    dispatcher = request.getfixturevalue("integral_dispatcher")
    monkeypatch.setenv("ODA_TOKEN", dispatcher.mint_token("general", sub="alice@example.org",
                                                          name="Alice"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.chdir(tmp_path)
    Mmoda.cache_location = tmp_path / "cache"
    with conf.set_temp("server", dispatcher.url), conf.set_temp("poll_interval", 0.2):
        yield
    Mmoda.logout()
    Mmoda.reset_cache_location()
