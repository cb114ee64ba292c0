"""The synthetic INTEGRAL sky: kept for old imports, now `astroquery_mmoda.testing.sky`."""
from .sky import *  # noqa: F401,F403
from .sky import __all__  # noqa: F401
