"""MMODA tokens: where they come from, what they say, and keeping them secret.

The redaction helpers here are the single place that removes tokens from
anything logged, raised, cached or saved.

`TokenManager` finds, checks, stores and replaces the token of one client; it
does no HTTP itself (the refresh request is passed in as a callable).  Tokens
are JSON Web Tokens signed by the MMODA web frontend with a secret that only
the dispatcher knows: the client reads their claims but cannot verify the
signature.
"""
import getpass
import ipaddress
import math
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import astropy.units as u
import jwt
import keyring
import keyring.errors
from astropy.time import Time
from astroquery import log
from astroquery.exceptions import AuthenticationWarning

from .exceptions import LoginError, TokenExpiredError

__all__ = ["redact", "scrub", "decode_token", "TokenInfo", "TokenManager",
           "keyring_service_name", "default_token_files", "is_interactive",
           "TOKEN_ENV_VAR", "TOKEN_FILE_NAME", "KEYRING_USERNAME", "FRONTEND_URL",
           "REFRESH_ROLE"]

#: Environment variable read for a token (the one ``oda_api`` uses too).
TOKEN_ENV_VAR = "ODA_TOKEN"
#: Name of the token files looked for in the working and the home directory.
TOKEN_FILE_NAME = ".oda-token"
#: Username of the keyring entry (the service is `keyring_service_name`).
KEYRING_USERNAME = "mmoda-token"
#: Where users get a token: log in there, then press "API token".
FRONTEND_URL = "https://www.astro.unige.ch/mmoda/"
#: Role a token needs for the dispatcher to refresh it.
REFRESH_ROLE = "refresh-tokens"

# Any JWT (three base64url parts, the first one a JSON object: "eyJ...").
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_REDACTED = "<token>"
_known_secrets = set()
_lock = threading.Lock()

_FRONTEND = f'the MMODA web frontend {FRONTEND_URL} (log in, then "API token")'
_NO_VERIFY = {"verify_signature": False, "verify_exp": False, "verify_nbf": False,
              "verify_iat": False, "verify_aud": False, "verify_iss": False,
              "verify_sub": False, "verify_jti": False, "require": []}


def register_secret(secret):
    """Make `redact` remove ``secret`` too, even if it does not look like a JWT."""
    if secret and len(secret) >= 8:
        with _lock:
            _known_secrets.add(secret)


def redact(text):
    """Return ``text`` with every token replaced by ``<token>``.

    Removes anything shaped like a JWT and every value registered with
    `register_secret` (tokens that this process has handled).

    Examples
    --------
    >>> import secrets, jwt
    >>> token = jwt.encode({"sub": "alice@example.org", "exp": 1735689600}, secrets.token_hex(32),
    ...                    algorithm="HS256")
    >>> redact(f"GET /run_analysis?token={token}&instrument=isgri")
    'GET /run_analysis?token=<token>&instrument=isgri'
    """
    if not isinstance(text, str):
        text = str(text)
    text = _JWT_RE.sub(_REDACTED, text)
    for secret in tuple(_known_secrets):
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def scrub(value):
    """A copy of a JSON-like structure without tokens.

    ``token`` entries of dictionaries are dropped; strings are redacted.

    Examples
    --------
    >>> import secrets, jwt
    >>> token = jwt.encode({"sub": "alice@example.org", "exp": 1735689600}, secrets.token_hex(32),
    ...                    algorithm="HS256")
    >>> scrub({"token": token, "job_id": "d0c4a1e2", "log": [f"refused {token}"]})
    {'job_id': 'd0c4a1e2', 'log': ['refused <token>']}
    """
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items() if key != "token"}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(item) for item in value)
    if isinstance(value, str):
        return redact(value)
    return value


# ---------------------------------------------------------------------------
# Decoding

def _clean(value):
    """The token text without surrounding white space ('' for nothing usable)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise LoginError("The token is not a JWT (it contains non-ASCII bytes).") from None
    if not isinstance(value, str):
        raise LoginError(f"A token must be a string, not {type(value).__name__}.")
    return value.strip()


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


# ---------------------------------------------------------------------------
# Where tokens are looked for

def keyring_service_name(server_url):
    """Keyring service of the tokens of a dispatcher: ``astroquery:<host>[:<port>].token``.

    Examples
    --------
    >>> keyring_service_name("https://www.astro.unige.ch/mmoda/dispatch-data")
    'astroquery:www.astro.unige.ch.token'
    >>> keyring_service_name("http://127.0.0.1:8000")
    'astroquery:127.0.0.1:8000.token'
    """
    parts = urlsplit(str(server_url))
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"No host in the dispatcher URL {redact(server_url)!r}.")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    return f"astroquery:{host}:{port}.token" if port else f"astroquery:{host}.token"


def default_token_files():
    """The token files looked for, in order: ``./.oda-token``, ``~/.oda-token``.

    Examples
    --------
    >>> files = default_token_files()
    >>> files[0] == Path.cwd() / ".oda-token", files[-1] == Path.home() / ".oda-token"
    (True, True)
    """
    files = [Path.cwd() / TOKEN_FILE_NAME]
    try:
        files.append(Path.home() / TOKEN_FILE_NAME)
    except RuntimeError:  # no home directory can be determined
        pass
    return files


def is_interactive():
    """Whether a person can be asked for a token: IPython/Jupyter, or stdin a terminal.

    Examples
    --------
    >>> is_interactive()  # in a batch job: no prompt, so a token must be found  # doctest: +SKIP
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None:
        return True
    stdin = sys.stdin
    try:
        return bool(stdin is not None and stdin.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _is_file(path):
    try:
        return path.is_file()
    except OSError:
        return False


def _is_loopback_host(host):
    host = (host or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _write_token_file(path, token):
    """Replace the file at ``path`` by one holding ``token``, readable by its owner only."""
    path = Path(path)
    # mkstemp creates the file with mode 0600, so it is never readable by others.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(token + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------
# The manager

class TokenManager:
    """Holds the token of one client: finds it, checks it, stores it, replaces it.

    Parameters
    ----------
    server_url : callable or str, optional
        Returns the current dispatcher URL (default: ``conf.server``).  Its
        host names the keyring entry.
    keyring_service : callable or str, optional
        The keyring service, or a function of the dispatcher URL giving it
        (default `keyring_service_name`).  The keyring username is always
        `KEYRING_USERNAME` (``"mmoda-token"``).
    token_files : callable or sequence of path-like, optional
        The token files to look in, in order (default `default_token_files`,
        evaluated at each login).
    prompt : callable, optional
        Asks for a token, given the prompt text (default `getpass.getpass`).
    interactive : callable, optional
        Tells whether prompting is possible (default `is_interactive`).

    Notes
    -----
    The token is kept in memory only.  Neither `repr` nor pickling exposes it:
    a pickled or copied manager is logged out.

    Examples
    --------
    >>> import secrets, time, jwt
    >>> token = jwt.encode({"sub": "alice@example.org", "roles": "general",
    ...                     "exp": int(time.time()) + 3600}, secrets.token_hex(32), algorithm="HS256")
    >>> manager = TokenManager("https://www.astro.unige.ch/mmoda/dispatch-data", token_files=[])
    >>> manager.login(token).roles, manager
    (('general',), <TokenManager: alice@example.org (token from argument)>)
    """

    def __init__(self, server_url=None, *, keyring_service=None, token_files=None,
                 prompt=None, interactive=None):
        self._server_url = server_url
        self._keyring_service = keyring_service
        self._token_files = token_files
        self._prompt = prompt
        self._interactive = interactive
        self._state_lock = threading.RLock()
        self._token = None
        self._info = None
        self._origin = None
        self._expiry_warned = False

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_state_lock"]
        state.update(_token=None, _info=None, _origin=None, _expiry_warned=False)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._state_lock = threading.RLock()

    def __repr__(self):
        info = self._info
        if info is None:
            return "<TokenManager: not logged in>"
        return f"<TokenManager: {info._who()} (token from {info.source})>"

    # -- configuration -----------------------------------------------------

    @property
    def server_url(self):
        """str: the dispatcher URL now in use."""
        if self._server_url is None:
            from . import conf
            return str(conf.server)
        if callable(self._server_url):
            return str(self._server_url())
        return str(self._server_url)

    @property
    def keyring_service(self):
        """str: the keyring service of the current dispatcher."""
        if self._keyring_service is None:
            return keyring_service_name(self.server_url)
        if callable(self._keyring_service):
            return str(self._keyring_service(self.server_url))
        return str(self._keyring_service)

    def _files(self):
        files = default_token_files() if self._token_files is None else self._token_files
        if callable(files):
            files = files()
        unique = []
        for path in files:
            path = Path(path).expanduser().absolute()
            if path not in unique:
                unique.append(path)
        return unique

    def _can_prompt(self):
        return bool((self._interactive or is_interactive)())

    def _ask(self, text):
        return (self._prompt or getpass.getpass)(text)

    # -- state -------------------------------------------------------------

    @property
    def token(self):
        """str or None: the current token, for the HTTP layer only."""
        return self._token

    @property
    def logged_in(self):
        """bool: whether a token is in use (it may have expired since)."""
        return self._token is not None

    def _set(self, token, info, origin):
        register_secret(token)
        with self._state_lock:
            self._token, self._info, self._origin = token, info, origin
            self._expiry_warned = False

    def info(self):
        """Describe the current token.

        Returns
        -------
        `TokenInfo`

        Raises
        ------
        `~astroquery_mmoda.exceptions.LoginError`
            If not logged in.
        """
        info = self._info
        if info is None:
            raise LoginError("Not logged in to MMODA: call Mmoda.login() first.")
        return info

    # -- keyring -----------------------------------------------------------

    @staticmethod
    def _describe(exc):
        text = redact(str(exc)).strip()
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    def _keyring_get(self, service):
        try:
            return keyring.get_password(service, KEYRING_USERNAME)
        except Exception as exc:  # backends raise anything (D-Bus, locked collections, ...)
            log.debug(f"No token from the system keyring ({self._describe(exc)}).")
            return None

    def _keyring_set(self, service, token, what):
        try:
            keyring.set_password(service, KEYRING_USERNAME, token)
        except Exception as exc:
            warnings.warn(
                f"Could not save {what} in the system keyring ({self._describe(exc)}); it is used "
                f"for this session only.  Without a working keyring (common on servers and headless "
                f"Linux) install keyrings.alt, or put the token in the {TOKEN_ENV_VAR} environment "
                f"variable or in ~/{TOKEN_FILE_NAME} (readable by you only).",
                AuthenticationWarning, stacklevel=3)
            return False
        log.info(f"Saved {what} in the system keyring (service {service!r}, "
                 f"username {KEYRING_USERNAME!r}).")
        return True

    def _keyring_delete(self, service):
        try:
            keyring.delete_password(service, KEYRING_USERNAME)
        except keyring.errors.PasswordDeleteError:
            log.info(f"No token was stored in the system keyring under {service!r}.")
        except Exception as exc:
            warnings.warn(f"Could not delete the token from the system keyring "
                          f"({self._describe(exc)}).", AuthenticationWarning, stacklevel=3)
        else:
            log.info(f"Deleted the token from the system keyring (service {service!r}).")

    # -- login -------------------------------------------------------------

    def _candidates(self, service):
        """Yield ``(label, origin, raw token)`` for every source that has a value."""
        yield TOKEN_ENV_VAR, ("env", None), os.environ.get(TOKEN_ENV_VAR)
        yield "keyring", ("keyring", service), self._keyring_get(service)
        for path in self._files():
            if not _is_file(path):
                continue
            try:
                text = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                log.warning(f"Ignoring the token file {path}: it cannot be read ({type(exc).__name__}).")
                continue
            if os.name == "posix" and path.stat().st_mode & 0o077:
                log.warning(f"The token file {path} can be read by other users: "
                            f"restrict it with 'chmod 600 {path}'.")
            yield str(path), ("file", path), text

    def _discover(self, service, skipped):
        for label, origin, raw in self._candidates(service):
            try:
                token = _clean(raw)
                if not token:
                    continue
                info = TokenInfo.from_token(token, source=label)
            except LoginError as exc:
                log.warning(f"Ignoring the token from {label}: {exc}")
                skipped.append(f"a malformed token in {label}")
                continue
            if info.expired:
                log.info(f"Skipping the expired token from {label} of {info._who()} "
                         f"({_expiry_phrase(info._exp - time.time())}).")
                skipped.append(f"an expired token in {label}")
                continue
            return token, info, origin
        return None

    @staticmethod
    def _expired_error(info, what):
        return TokenExpiredError(
            f"{what} {_expiry_phrase(info._exp - time.time())} ({info.expires.isot[:19]} UTC). "
            f"Get a new token from {_FRONTEND}; "
            f"a token with the role {REFRESH_ROLE} can also be extended with "
            f"Mmoda.refresh_token(store=True) before it expires.")

    def _explicit(self, token, label):
        info = TokenInfo.from_token(token, source=label)
        if info.expired:
            raise self._expired_error(info, "The token given")
        return token, info, (label, None)

    def _prompt_for_token(self):
        log.info(f"An MMODA API token is needed; get one from {_FRONTEND}.")
        try:
            answer = self._ask("MMODA API token: ")
        except EOFError:
            answer = ""
        token = _clean(answer)
        if not token:
            raise LoginError(f"No token entered; get one from {_FRONTEND}.")
        return self._explicit(token, "prompt")

    def _no_token_message(self, service, skipped, reenter):
        if reenter:
            return (f"reenter_token=True needs an interactive session to ask for the token; "
                    f"pass it with Mmoda.login(token=...) instead (tokens come from {_FRONTEND}).")
        files = " or ".join(str(path) for path in self._files())
        text = ("No usable MMODA token found. Pass one with Mmoda.login(token=...), or put it in "
                f"the environment variable {TOKEN_ENV_VAR}, in the system keyring (service "
                f"{service!r}, username {KEYRING_USERNAME!r}; Mmoda.login(token=..., store_token=True) "
                f"saves it there), or in the file {files}. Get a token from {_FRONTEND}.")
        if skipped:
            text += f" Skipped: {'; '.join(skipped)}."
        return text

    def login(self, token=None, *, store_token=False, reenter_token=False):
        """Find a token and make it the current one.

        Sources, in order: ``token``; the environment variable ``ODA_TOKEN``;
        the system keyring (`keyring_service`, username ``"mmoda-token"``);
        ``./.oda-token``; ``~/.oda-token``; a prompt, if the session is
        interactive.  Expired and malformed tokens found in these sources are
        skipped (logged with the source's name).

        Parameters
        ----------
        token : str, optional
            A token to use; empty or blank values are ignored.
        store_token : bool, optional
            Save the token used in the system keyring.  If the keyring does
            not work an `~astroquery.exceptions.AuthenticationWarning` is
            issued and the token is used for this session only.
        reenter_token : bool, optional
            Ignore the environment, keyring and files and ask for the token
            (unless ``token`` is given).

        Returns
        -------
        `TokenInfo`

        Raises
        ------
        `~astroquery_mmoda.exceptions.TokenExpiredError`
            If the token given or entered has expired.
        `~astroquery_mmoda.exceptions.LoginError`
            If the token given or entered is malformed, or no token is found
            and no prompt is possible.
        """
        service = self.keyring_service
        chosen = None
        cleaned = _clean(token)
        if cleaned:
            chosen = self._explicit(cleaned, "argument")
        skipped = []
        if chosen is None and not reenter_token:
            chosen = self._discover(service, skipped)
        if chosen is None:
            if not self._can_prompt():
                raise LoginError(self._no_token_message(service, skipped, reenter_token))
            chosen = self._prompt_for_token()
        token, info, origin = chosen
        self._set(token, info, origin)
        log.debug(f"Logged in to MMODA as {info._who()} (token from {info.source}; "
                  f"{_expiry_phrase(info._exp - time.time())}).")
        if store_token and origin != ("keyring", service):
            self._keyring_set(service, token, "the token")
        return info

    def logout(self, *, forget=False):
        """Stop using the token.

        Parameters
        ----------
        forget : bool, optional
            Also delete the token from the system keyring.  The environment
            variable ``ODA_TOKEN`` and the token files are left alone.
        """
        with self._state_lock:
            origin = self._origin
            self._token = self._info = self._origin = None
            self._expiry_warned = False
        if not forget:
            return
        services = [self.keyring_service]
        if origin and origin[0] == "keyring" and origin[1] not in services:
            services.append(origin[1])
        for service in services:
            self._keyring_delete(service)
        kept = [str(path) for path in self._files() if _is_file(path)]
        if os.environ.get(TOKEN_ENV_VAR, "").strip():
            kept.insert(0, TOKEN_ENV_VAR)
        if kept:
            log.info(f"Tokens in {', '.join(kept)} are not removed by logout(forget=True).")

    # -- refresh -----------------------------------------------------------

    def replace(self, new_token, *, store=False):
        """Make a renewed token (from the dispatcher's refresh) the current one.

        Parameters
        ----------
        new_token : str
            The new token: it must be for the same user (``sub``) and expire
            later than the current one.
        store : bool, optional
            Write it where the current token came from: the keyring entry or
            the token file (rewritten atomically, mode 0600).  A token given as
            argument, taken from ``ODA_TOKEN`` or typed at the prompt is saved
            in the keyring.  A warning is issued if saving fails.

        Returns
        -------
        `TokenInfo`
            With ``source='refresh'``.

        Raises
        ------
        `~astroquery_mmoda.exceptions.LoginError`
            If not logged in, or the new token is malformed, for another user
            or does not expire later.
        """
        cleaned = _clean(new_token)
        if not cleaned:
            raise LoginError("The new token is empty.")
        register_secret(cleaned)
        info = TokenInfo.from_token(cleaned, source="refresh")
        with self._state_lock:
            old, origin = self._info, self._origin
            if old is None:
                raise LoginError("Not logged in to MMODA: there is no token to replace.")
            if info.subject != old.subject:
                raise LoginError(f"The new token is for {info.subject!r}, not for {old.subject!r}: "
                                 "it is not used.")
            if info._exp <= old._exp:
                raise LoginError(f"The new token does not expire later than the current one "
                                 f"({info.expires.isot[:19]} UTC): it is not used.")
            if info.expired:
                raise self._expired_error(info, "The new token")
            self._set(cleaned, info, origin)
        lost = [role for role in old.roles if role not in info.roles]
        if lost:
            log.warning(f"The new token lacks the roles {', '.join(lost)} of the previous one.")
        log.info(f"Token of {info._who()} renewed: {_expiry_phrase(info._exp - time.time())}.")
        if store:
            self._write_back(cleaned, origin)
        return info

    def _write_back(self, token, origin):
        kind, where = origin
        if kind == "keyring":
            self._keyring_set(where, token, "the renewed token")
        elif kind == "file":
            try:
                _write_token_file(where, token)
            except OSError as exc:
                warnings.warn(f"Could not write the renewed token to {where} ({type(exc).__name__}: "
                              f"{redact(exc.strerror or exc)}); it is used for this session only.",
                              AuthenticationWarning, stacklevel=3)
            else:
                log.info(f"Wrote the renewed token to {where}.")
        else:
            service = self.keyring_service
            if self._keyring_set(service, token, "the renewed token"):
                with self._state_lock:
                    if self._token == token:
                        self._origin = ("keyring", service)
                if kind == "env":
                    log.info(f"{TOKEN_ENV_VAR} is unchanged: while its token is valid, login() "
                             "still prefers it to the keyring.")

    def refresh(self, fetch, *, store=False):
        """Ask the dispatcher for a renewed token and use it.

        Parameters
        ----------
        fetch : callable
            ``fetch(token)`` performs the dispatcher's ``refresh_token``
            request and returns the new token text.
        store : bool, optional
            Save the new token, see `replace`.

        Returns
        -------
        `TokenInfo`

        Raises
        ------
        `~astroquery_mmoda.exceptions.TokenExpiredError`
            If the current token has expired (it can no longer be refreshed).
        `~astroquery_mmoda.exceptions.LoginError`
            If not logged in, or the token lacks the role ``refresh-tokens``.
        """
        with self._state_lock:
            token, info = self._token, self._info
        if info is None:
            raise LoginError("Not logged in to MMODA: call Mmoda.login() first.")
        if info.expired:
            raise self._expired_error(info, "The token")
        if REFRESH_ROLE not in info.roles:
            raise LoginError(f"The token of {info._who()} lacks the role {REFRESH_ROLE!r}, so the "
                             f"dispatcher will not refresh it; get a new token from {_FRONTEND}.")
        return self.replace(fetch(token), store=store)

    # -- safety checks -----------------------------------------------------

    @staticmethod
    def check_transport(url):
        """Refuse to send a token over plain HTTP except to this machine.

        Parameters
        ----------
        url : str
            Where a request with the token would go.

        Raises
        ------
        `~astroquery_mmoda.exceptions.LoginError`
            Unless ``url`` is ``https``, or ``http`` to a loopback address
            (``localhost``, 127.0.0.0/8, ``::1``).
        """
        parts = urlsplit(str(url))
        scheme = parts.scheme.lower()
        if scheme == "https" and parts.hostname:
            return
        if scheme == "http" and _is_loopback_host(parts.hostname):
            return
        where = redact(f"{parts.scheme}://{parts.hostname or ''}")
        raise LoginError(f"Refusing to send the MMODA token to {where}: tokens are only sent over "
                         "https, or over http to this machine (localhost, 127.0.0.0/8, ::1).")

    def expiry_warning(self, within_seconds=3600):
        """Warn if the token expires soon, e.g. before a long job.

        The warning (`~astroquery.exceptions.AuthenticationWarning`) is issued
        once per token; the message is returned each time.

        Parameters
        ----------
        within_seconds : float or `~astropy.units.Quantity`, optional
            How soon counts as soon.

        Returns
        -------
        str or None
            The warning text, or None when the token lasts longer (or there is
            no token).
        """
        if isinstance(within_seconds, u.Quantity):
            within_seconds = within_seconds.to_value(u.s)
        with self._state_lock:
            info = self._info
            if info is None:
                return None
            left = info._exp - time.time()
            if left > within_seconds:
                return None
            message = (f"The MMODA token of {info._who()} {_expiry_phrase(left)}: requests and jobs "
                       f"after that are refused. Renew it with Mmoda.refresh_token() (needs the role "
                       f"{REFRESH_ROLE}) or log in with a new token.")
            first = not self._expiry_warned
            self._expiry_warned = True
        if first:
            warnings.warn(message, AuthenticationWarning, stacklevel=2)
        return message
