"""``python -m astroquery_mmoda.cli``: the ``mmoda`` command."""
import sys

from . import main

sys.exit(main())
