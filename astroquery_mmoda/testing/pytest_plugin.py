"""pytest fixtures for testing code against a real local MMODA dispatcher.

Registered as a pytest plugin when ``astroquery_mmoda`` is installed.  Fixtures:

``local_dispatcher``
    A session-wide `~astroquery_mmoda.testing.LocalDispatcher` with the
    dispatcher's test instruments.
``mmoda_token``
    A factory of tokens for that dispatcher:
    ``mmoda_token(roles="general", expires_in=3600, sub=...)``.
``integral_dispatcher``
    A session-wide `~astroquery_mmoda.testing.LocalDispatcher` with the INTEGRAL
    instruments (``isgri``, ``jemx``, ``spi_acs``) and the synthetic test sky of
    ``astroquery_mmoda.testing.integral_sky``; tokens from its ``mint_token``.

Tests that use them should be marked ``integration``.  When the server cannot
be provisioned or started the fixture errors: it never skips.
"""
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: runs against a real MMODA dispatcher on 127.0.0.1")


@pytest.fixture(scope="session")
def local_dispatcher():
    """A real MMODA dispatcher on 127.0.0.1 for the whole test session."""
    from .local_dispatcher import LocalDispatcher

    with LocalDispatcher() as dispatcher:
        yield dispatcher


@pytest.fixture(scope="session")
def integral_dispatcher():
    """A real MMODA dispatcher with the INTEGRAL plugins and the test sky, for the session."""
    from .local_dispatcher import LocalDispatcher

    with LocalDispatcher(integral=True) as dispatcher:
        yield dispatcher


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
        for name in ("local_dispatcher", "integral_dispatcher"):
            dispatcher = getattr(item, "funcargs", {}).get(name)
            if dispatcher is not None and hasattr(dispatcher, "log_text"):
                report.sections.append((f"{name} server log (tail)",
                                        dispatcher.log_text(tail=4000)))
