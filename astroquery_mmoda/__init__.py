"""MMODA, the Multi-Messenger Online Data Analysis platform, the astroquery way.

Light curves, images with source catalogs and spectra of INTEGRAL (ISGRI,
JEM-X, SPI-ACS) and the other instruments of the MMODA dispatcher, as astropy
objects.
"""
from astropy import config as _config

from .version import version

__version__ = version


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `astroquery_mmoda`.

    Every value is read when it is used, so ``conf.set_temp`` works on the
    ``Mmoda`` object that already exists.

    Examples
    --------
    >>> from astroquery_mmoda import conf
    >>> with conf.set_temp("job_timeout", 600):  # wait at most 10 minutes for each job
    ...     print(conf.job_timeout)
    600.0
    """

    server = _config.ConfigItem(
        "https://www.astro.unige.ch/mmoda/dispatch-data",
        "Root URL of the MMODA dispatcher.")
    timeout = _config.ConfigItem(
        60.0, "Time limit, in seconds, of one HTTP request to the dispatcher.")
    max_retries = _config.ConfigItem(
        4, "How often a request is retried after a transient error (HTTP 502/503/504, "
           "connection errors), with exponential back-off.")
    poll_interval = _config.ConfigItem(
        1.0, "Seconds between the first polls of a running job.")
    poll_max = _config.ConfigItem(
        30.0, "Longest interval, in seconds, between polls of a running job.")
    job_timeout = _config.ConfigItem(
        3600.0, "Default time limit, in seconds, of waiting for a job.")
    max_concurrent = _config.ConfigItem(
        8, "Most requests in flight at once when many jobs are polled together.")
    post_threshold = _config.ConfigItem(
        1000, "Requests whose encoded parameters are longer than this many characters "
              "are sent with POST instead of GET.")
    heartbeat = _config.ConfigItem(
        60.0, "While a job's state does not change, an INFO line says it is alive every this many "
              "seconds.")
    max_retry_after = _config.ConfigItem(
        30.0, "Longest wait, in seconds, that a server's Retry-After header can ask for before a "
              "retry.")
    max_answer_size = _config.ConfigItem(
        1024.0, "Largest answer of the dispatcher (and largest cache entry read back), in MiB; "
                "a larger one is a ProtocolError.")


conf = Conf()

__all__ = ["Mmoda", "MmodaClass", "Conf", "conf"]


class _ClientOnFirstUse:
    # The default MmodaClass instance before its first use.
    #
    # Importing the client pulls in astroquery.query and requests, which cost more than
    # everything else in ``from astroquery_mmoda import Mmoda``.  This object stands in
    # for the client until it is first used; then astroquery_mmoda.core is imported and
    # turns this very object into the client (its class becomes MmodaClass), so that
    # every reference to ``Mmoda`` ever handed out is the client itself.  Importing
    # MmodaClass does the same, so isinstance(Mmoda, MmodaClass) holds.  Introspection
    # (special names such as __wrapped__, e.g. by doctest's collection) does not import
    # the client; __doc__ (help()) does.

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(_make_client(self), name)

    def __setattr__(self, name, value):
        setattr(_make_client(self), name, value)

    def __delattr__(self, name):
        delattr(_make_client(self), name)

    def __dir__(self):
        return dir(_make_client(self))

    def __repr__(self):
        return repr(_make_client(self))

    def __reduce_ex__(self, protocol):
        return _make_client(self).__reduce_ex__(protocol)

    @property
    def __doc__(self):
        return _make_client(self).__doc__


def _make_client(stand_in):
    from . import core  # noqa: F401  (its import turns the stand-in into the client)

    return stand_in


_DEFAULT_CLIENT = _ClientOnFirstUse()


def __getattr__(name):
    # The client pulls in astroquery.query and requests: import it on first use.
    if name == "Mmoda":
        return _DEFAULT_CLIENT
    if name == "MmodaClass":
        from .core import MmodaClass
        return MmodaClass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
