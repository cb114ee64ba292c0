"""What a token says: its claims, its owner, its roles and its expiry.

Tokens are JSON Web Tokens signed by the MMODA web frontend with a secret that
only the dispatcher knows: the client reads their claims but cannot verify the
signature.  Where tokens are kept is the business of `astroquery_mmoda.auth`.
"""
import math
import time

import astropy.units as u
import jwt
from astropy.time import Time

from .exceptions import LoginError, TokenExpiredError
from .redaction import redact, scrub

__all__ = ["decode_token", "TokenInfo", "FRONTEND_URL", "REFRESH_ROLE"]

#: Where users get a token: log in there, then press "API token".
FRONTEND_URL = "https://www.astro.unige.ch/mmoda/"
#: Role a token needs for the dispatcher to refresh it.
REFRESH_ROLE = "refresh-tokens"

_FRONTEND = f'the MMODA web frontend {FRONTEND_URL} (log in, then "API token")'
_NO_VERIFY = {"verify_signature": False, "verify_exp": False, "verify_nbf": False,
              "verify_iat": False, "verify_aud": False, "verify_iss": False,
              "verify_sub": False, "verify_jti": False, "require": []}


def _clean(value):
    r"""The token text without surrounding white space, quotes or ``Bearer `` ('' for nothing usable).

    Examples
    --------
    >>> _clean('  "Bearer eyJhbGciOi.e30.sig"\n')
    'eyJhbGciOi.e30.sig'
    """
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise LoginError("The token is not a JWT (it contains non-ASCII bytes).") from None
    if not isinstance(value, str):
        raise LoginError(f"A token must be a string, not {type(value).__name__}.")
    value = value.strip()
    for _ in range(2):  # "Bearer <token>" in quotes, or quotes after "Bearer "
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
    return value


def decode_token(token):
    """The claims of a token, read without checking signature or expiry.

    The signature cannot be checked here: MMODA tokens are signed (HS256)
    with a secret that only the dispatcher has.  The dispatcher checks it on
    every request that carries the token.

    Parameters
    ----------
    token : str
        A JSON Web Token; surrounding white space is ignored.

    Returns
    -------
    claims : dict

    Raises
    ------
    `~astroquery_mmoda.exceptions.LoginError`
        If ``token`` is not a JWT.  The message never contains the token.

    Examples
    --------
    >>> import secrets, jwt
    >>> token = jwt.encode({"sub": "alice@example.org", "roles": "general", "exp": 1735689600},
    ...                    secrets.token_hex(32), algorithm="HS256")
    >>> decode_token(token)
    {'sub': 'alice@example.org', 'roles': 'general', 'exp': 1735689600}
    """
    token = _clean(token)
    if not token:
        raise LoginError("The token is empty.")
    if token.count(".") != 2:
        raise LoginError("The token is not a JWT (a JWT has three parts separated by dots).")
    try:
        claims = jwt.decode(token, options=_NO_VERIFY)
    except jwt.PyJWTError as exc:
        # pyjwt's messages name the failing part ("Invalid payload padding"), never the text.
        reason = redact(str(exc).split(":")[0].strip()) or type(exc).__name__
        raise LoginError(f"The token is not a valid JWT ({reason}).") from None
    if not isinstance(claims, dict):
        raise LoginError("The token is not a valid JWT (its payload is not a JSON object).")
    return claims


def _roles(value):
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = [str(item) for item in value]
    else:
        items = []
    return tuple(item.strip() for item in items if item.strip())


def _optional_str(value):
    return None if value is None else str(value)


def _duration(seconds):
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _expiry_phrase(seconds_left):
    if seconds_left > 0:
        return f"expires in {_duration(seconds_left)}"
    return f"expired {_duration(seconds_left)} ago"


class TokenInfo:
    """What a token says about its owner, its roles and its expiry.

    Immutable.  `remaining` and `expired` are evaluated when read.  Neither
    `str` nor `repr` shows the token.

    Parameters
    ----------
    claims : dict
        The decoded claims (see `decode_token`); ``exp`` is required.
    source : str
        Where the token came from: ``'argument'``, ``'ODA_TOKEN'``,
        ``'keyring'``, the path of a token file, ``'prompt'`` or ``'refresh'``.

    Raises
    ------
    `~astroquery_mmoda.exceptions.LoginError`
        If ``claims`` has no numeric ``exp``.

    Examples
    --------
    >>> import secrets, jwt
    >>> token = jwt.encode({"sub": "alice@example.org", "roles": "general,refresh-tokens",
    ...                     "exp": 1735689600}, secrets.token_hex(32), algorithm="HS256")
    >>> info = TokenInfo.from_token(token, source="argument")
    >>> info.subject, info.roles, info.expires.isot, info.expired
    ('alice@example.org', ('general', 'refresh-tokens'), '2025-01-01T00:00:00.000', True)
    """

    __slots__ = ("_claims", "_exp", "_source")

    def __init__(self, claims, *, source):
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
            raise LoginError("The token has no valid expiry time (the 'exp' claim).")
        object.__setattr__(self, "_claims", scrub(dict(claims)))
        object.__setattr__(self, "_exp", float(exp))
        object.__setattr__(self, "_source", str(source))

    def __setattr__(self, name, value):
        raise AttributeError("TokenInfo is immutable")

    def __delattr__(self, name):
        raise AttributeError("TokenInfo is immutable")

    @classmethod
    def from_token(cls, token, *, source):
        """Decode ``token`` (see `decode_token`) and describe it."""
        return cls(decode_token(token), source=source)

    @property
    def subject(self):
        """str or None: the ``sub`` claim, the user's unique id (an e-mail address)."""
        return _optional_str(self._claims.get("sub"))

    @property
    def email(self):
        """str or None: the ``email`` claim."""
        return _optional_str(self._claims.get("email"))

    @property
    def name(self):
        """str or None: the ``name`` claim."""
        return _optional_str(self._claims.get("name"))

    @property
    def roles(self):
        """tuple of str: the roles granted (the claim may be a list or comma-separated)."""
        return _roles(self._claims.get("roles"))

    @property
    def expires(self):
        """`~astropy.time.Time`: when the token expires (UTC)."""
        return Time(self._exp, format="unix")

    @property
    def remaining(self):
        """`~astropy.units.Quantity`: hours left before expiry, negative once expired."""
        return ((self._exp - time.time()) / 3600.0) * u.h

    @property
    def expired(self):
        """bool: whether the token has expired."""
        return self._exp <= time.time()

    @property
    def source(self):
        """str: where the token came from."""
        return self._source

    @property
    def claims(self):
        """dict: a copy of all claims."""
        return scrub(self._claims)

    def _who(self):
        return self.email or self.subject or self.name or "unknown user"

    def __str__(self):
        roles = ", ".join(self.roles) or "none"
        return f"{self._who()}, roles: {roles}; {_expiry_phrase(self._exp - time.time())}"

    def __repr__(self):
        return (f"<TokenInfo {self._who()} roles={self.roles!r} "
                f"expires={self.expires.isot[:19]} source={self.source!r}>")

    def _repr_html_(self):
        import html

        rows = [("user", self._who()), ("roles", ", ".join(self.roles) or "none"),
                ("expires", f"{self.expires.isot[:19]} UTC ({_expiry_phrase(self._exp - time.time())})"),
                ("source", self.source)]
        cells = "".join(f"<tr><th>{name}</th><td>{html.escape(value)}</td></tr>" for name, value in rows)
        return f"<table><caption>MMODA token</caption>{cells}</table>"


def _expired_error(info, what):
    """The `TokenExpiredError` for the expired token ``info``, with how to get a new one."""
    return TokenExpiredError(
        f"{what} {_expiry_phrase(info._exp - time.time())} ({info.expires.isot[:19]} UTC). "
        f"Get a new token from {_FRONTEND}; "
        f"a token with the role {REFRESH_ROLE} can also be extended with "
        f"Mmoda.refresh_token(store=True) before it expires.")
