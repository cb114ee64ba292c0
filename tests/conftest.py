"""Test configuration: the ``local_dispatcher`` and ``mmoda_token`` fixtures come
from the package's pytest plugin (``astroquery_mmoda.testing.pytest_plugin``)."""
