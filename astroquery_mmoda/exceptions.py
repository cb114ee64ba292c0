"""Exceptions of `astroquery_mmoda`, built on astroquery's.

========================== ===================================================
exception                  raised when
========================== ===================================================
`InvalidQueryError`        an argument is wrong (before any request), or the
                           dispatcher answers HTTP 400
`LoginError`               no usable token, or the dispatcher refuses the token
                           or its roles (HTTP 403)
`TokenExpiredError`        the token has expired
`RemoteServiceError`       base of the dispatcher's failures below
`JobFailedError`           a job ended ``failed`` (or ``done`` with an error)
`NoDataError`              a job found no data for the request
`DispatcherUnavailable`    HTTP 502/503/504 or no connection, after retries
`ProtocolError`            an answer that breaks the protocol (not JSON, bad
                           types, undecodable products)
`TimeoutError`             a job did not finish within the time allowed
========================== ===================================================

Examples
--------
>>> from astroquery_mmoda import Mmoda
>>> from astroquery_mmoda.exceptions import JobFailedError, NoDataError, TimeoutError
>>> try:
...     products = Mmoda.get_product("spi_acs", "spi_acs_lc", RA=83.63, DEC=22.01, time_bin=2,
...                                  T1="2003-03-15T23:27:40", T2="2003-03-15T23:32:40", timeout=600)
... except NoDataError:  # a JobFailedError too: catch it first
...     products = None
... except JobFailedError as error:
...     print(f"job {error.job_id} failed: {error.message}")
... except TimeoutError as error:  # the job goes on: resume it, now or later
...     products = Mmoda.get_job(error.job_id, error.session_id).result()  # doctest: +SKIP
"""
from astroquery.exceptions import InvalidQueryError, LoginError, RemoteServiceError
from astroquery.exceptions import TimeoutError as _AstroqueryTimeoutError

from .redaction import redact

__all__ = ["InvalidQueryError", "LoginError", "TokenExpiredError", "RemoteServiceError",
           "MmodaServiceError", "JobFailedError", "NoDataError", "DispatcherUnavailable",
           "ProtocolError", "TimeoutError"]


def _shorten(text, limit):
    """``text`` cut to ``limit`` characters (servers can send megabytes of it)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


class MmodaServiceError(RemoteServiceError):
    """A failure reported by (or on the way to) the MMODA dispatcher.

    Attributes
    ----------
    message : str
        What the dispatcher said (tokens removed).
    job_id : str or None
        The job concerned, when there is one.
    status_code : int or None
        The HTTP status of the answer.
    debug_message : str
        The dispatcher's debugging text, if any (tokens removed).

    Examples
    --------
    >>> str(MmodaServiceError("the dispatcher failed (HTTP 500)", job_id="d0c4a1e2", status_code=500))
    'the dispatcher failed (HTTP 500) (job d0c4a1e2)'
    """

    def __init__(self, message, *, job_id=None, status_code=None, debug_message=""):
        self.message = _shorten(redact(str(message)), 2000)
        self.job_id = job_id
        self.status_code = status_code
        self.debug_message = _shorten(redact(str(debug_message or "")), 20000)
        text = self.message
        if job_id:
            text += f" (job {job_id})"
        super().__init__(text)


class JobFailedError(MmodaServiceError):
    """The dispatcher reports that the job failed."""


class NoDataError(JobFailedError):
    """The job found no data for the requested time, sky region or instrument."""


class DispatcherUnavailable(MmodaServiceError):
    """The dispatcher cannot be reached or answers with a gateway error."""


class ProtocolError(MmodaServiceError):
    """The dispatcher's answer does not follow the protocol."""


class TokenExpiredError(LoginError):
    """The token has expired: get a new one or refresh it."""


class TimeoutError(_AstroqueryTimeoutError):
    """A job did not finish in the time allowed; it can still be resumed.

    Attributes
    ----------
    job_id, session_id : str or None
        Pass them to ``Mmoda.get_job`` to resume waiting.

    Examples
    --------
    >>> job = Mmoda.get_job(error.job_id, error.session_id)  # ``error``: the TimeoutError  # doctest: +SKIP
    """

    def __init__(self, message, *, job_id=None, session_id=None):
        self.job_id = job_id
        self.session_id = session_id
        super().__init__(message)
