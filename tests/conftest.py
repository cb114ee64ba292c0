"""Test configuration.

The fixtures ``local_dispatcher``, ``integral_dispatcher`` and ``mmoda_token``
come from the package's pytest plugin (``astroquery_mmoda.testing.pytest_plugin``).
"""
import pytest
from astropy.config.paths import set_temp_cache


@pytest.fixture(scope="session", autouse=True)
def _private_astropy_cache(tmp_path_factory):
    """Keep the tests' results, journals and descriptions out of the user's cache folder."""
    with set_temp_cache(tmp_path_factory.mktemp("astropy-cache")):
        yield
