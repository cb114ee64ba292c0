"""Where a request may go: checks of dispatcher URLs before anything is sent.

A URL is parsed the way urllib3 parses it when it connects, so that the host
that is checked is the host that is reached.
"""
import ipaddress
import re
from urllib.parse import urlsplit

from urllib3.util import parse_url

from .exceptions import InvalidQueryError, LoginError
from .redaction import redact

__all__ = ["check_server_url", "check_token_transport", "is_loopback_address"]

# Characters that parsers disagree on: a server URL holding one is refused.
_URL_BAD_RE = re.compile(r"[\\\s\x00-\x1f\x7f]")


def check_server_url(url, *, require_scheme=True):
    """Check a dispatcher URL and parse it as urllib3 does when it connects.

    Parameters
    ----------
    url : str
    require_scheme : bool, optional
        Also refuse URLs without ``http``/``https`` and a host.

    Returns
    -------
    `urllib3.util.Url`

    Raises
    ------
    `~astroquery_mmoda.exceptions.InvalidQueryError`
        If ``url`` holds a backslash, white space or control characters, user
        information (``user@``), or no ``http``/``https`` scheme and host.

    Examples
    --------
    >>> check_server_url("https://www.astro.unige.ch/mmoda/dispatch-data").host
    'www.astro.unige.ch'
    >>> check_server_url("http://user@127.0.0.1:8000")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    astroquery.exceptions.InvalidQueryError: ...
    """
    text = str(url)
    shown = redact(text.split("?")[0][:200])
    if _URL_BAD_RE.search(text.split("?")[0]):
        raise InvalidQueryError(f"the dispatcher URL {shown!r} holds a backslash, white space or a "
                                "control character")
    try:
        parts = parse_url(text)
    except Exception:  # urllib3's LocationParseError, ValueError
        raise InvalidQueryError(f"the dispatcher URL {shown!r} cannot be parsed") from None
    if parts.auth is not None or "@" in (urlsplit(text).netloc or ""):
        raise InvalidQueryError(f"the dispatcher URL {shown!r} holds user information (user@host): "
                                "give the token with Mmoda.login() instead")
    if require_scheme and ((parts.scheme or "").lower() not in ("http", "https") or not parts.host):
        raise InvalidQueryError(f"the dispatcher URL {shown!r} needs http:// or https:// and a host")
    return parts


def is_loopback_address(host):
    """Whether ``host`` is a literal loopback address (127.0.0.0/8, ::1)."""
    host = (host or "").strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_transport(url):
    """Refuse to send a token over plain HTTP except to this machine.

    Parameters
    ----------
    url : str
        Where a request with the token would go.

    Raises
    ------
    `~astroquery_mmoda.exceptions.LoginError`
        Unless ``url`` is ``https``, or ``http`` to a literal loopback address
        (127.0.0.0/8, ``::1``; names such as ``localhost`` are resolved by DNS,
        so they are not trusted); also if ``url`` is malformed (see
        `check_server_url`).
    """
    problem = None
    try:
        parts = check_server_url(url, require_scheme=False)
    except InvalidQueryError as exc:
        problem = exc.args[0] if exc.args else "malformed"
    if problem is not None:
        raise LoginError(f"Refusing to send the MMODA token: {problem}.")
    scheme = (parts.scheme or "").lower()
    if scheme == "https" and parts.host:
        return
    if scheme == "http" and is_loopback_address(parts.host):
        return
    where = redact(f"{parts.scheme}://{parts.host or ''}")
    hint = " (use http://127.0.0.1 instead of localhost)" if (parts.host or "").lower().rstrip(".") \
        .endswith("localhost") else ""
    raise LoginError(f"Refusing to send the MMODA token to {where}{hint}: tokens are only sent over "
                     "https, or over http to a loopback address of this machine (127.0.0.0/8, ::1).")
