# Sphinx configuration of the astroquery_mmoda documentation.
import datetime

from sphinx_astropy.conf.v1 import *  # noqa: F401,F403

from astroquery_mmoda import __version__

project = "astroquery_mmoda"
author = "The astroquery_mmoda developers"
copyright = f"{datetime.date.today().year}, {author}"
version = release = __version__

intersphinx_mapping.update({  # noqa: F405
    "astroquery": ("https://astroquery.readthedocs.io/en/latest/", None),
    "requests": ("https://requests.readthedocs.io/en/latest/", None),
})


def _online(host="docs.astropy.org"):
    import socket
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


# Offline builds (and CI without internet) skip the cross-project inventories
# instead of failing on them with -W.
if not _online():
    intersphinx_mapping.clear()  # noqa: F405
nitpicky = False
html_theme_options = {"logotext1": "astroquery", "logotext2": "_mmoda", "logotext3": ":docs"}
exclude_patterns.append("_build")  # noqa: F405
