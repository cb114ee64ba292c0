"""Where MMODA tokens live: `TokenManager` finds, checks, stores and replaces them.

`TokenManager` holds the token of one client; it does no HTTP itself (the
refresh request is passed in as a callable).  What a token says is read by
`astroquery_mmoda.tokens`, the sources it comes from by
`astroquery_mmoda.token_sources`, and the redaction helpers live in
`astroquery_mmoda.redaction`; their public names are re-exported here.
"""
import getpass
import os
import threading
import time
import warnings
from pathlib import Path

import astropy.units as u
from astroquery import log
from astroquery.exceptions import AuthenticationWarning

from .exceptions import LoginError
from .redaction import redact, register_secret, scrub
# The URL checks are re-exported: they lived here before server_urls.py.
from .server_urls import check_server_url, check_token_transport, is_loopback_address  # noqa: F401
from .token_sources import (KEYRING_USERNAME, TOKEN_ENV_VAR, TOKEN_FILE_NAME, default_token_files,
                            delete_from_keyring, find_token, is_file, is_interactive,
                            keyring_service_name, legacy_keyring_service_name, no_token_message,
                            read_token_file, save_to_keyring, write_token_file)
from .tokens import (_FRONTEND, FRONTEND_URL, REFRESH_ROLE, TokenInfo, _clean, _expired_error,
                     _expiry_phrase, decode_token)

__all__ = ["redact", "scrub", "decode_token", "TokenInfo", "TokenManager", "check_server_url",
           "keyring_service_name", "default_token_files", "is_interactive",
           "TOKEN_ENV_VAR", "TOKEN_FILE_NAME", "KEYRING_USERNAME", "FRONTEND_URL",
           "REFRESH_ROLE"]


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

    # -- login -------------------------------------------------------------

    def _explicit(self, token, label):
        info = TokenInfo.from_token(token, source=label)
        if info.expired:
            raise _expired_error(info, "The token given")
        return token, info, (label, None)

    def _prompt_for_token(self, no_prompt_message):
        log.info(f"An MMODA API token is needed; get one from {_FRONTEND}.")
        refused = None
        try:
            answer = self._ask("MMODA API token: ")
        except EOFError:
            answer = ""
        except Exception as exc:  # e.g. IPython's StdinNotImplementedError in a headless kernel
            refused = type(exc).__name__
        if refused is not None:
            raise LoginError(f"Cannot ask for a token here ({refused}: this session has no input). "
                             + no_prompt_message)
        token = _clean(answer)
        if not token:
            raise LoginError(f"No token entered; get one from {_FRONTEND}.")
        return self._explicit(token, "prompt")

    def _from_file(self, path):
        path = Path(path).expanduser()
        text = read_token_file(path) if is_file(path) else None
        if text is None:
            raise LoginError(f"No token read from the file {path}: it is missing, not yours, or "
                             "not a plain file (see the log).")
        token = _clean(text)
        info = TokenInfo.from_token(token, source=str(path))
        if info.expired:
            raise _expired_error(info, f"The token in {path}")
        return token, info, ("file", path)

    def login(self, token=None, *, store_token=False, reenter_token=False):
        """Find a token and make it the current one.

        Sources, in order: ``token``; the environment variable ``ODA_TOKEN``;
        the system keyring (`keyring_service`, username ``"mmoda-token"``);
        ``./.oda-token``; ``~/.oda-token``; a prompt, if the session is
        interactive.  Expired and malformed tokens found in these sources are
        skipped (logged with the source's name).

        Parameters
        ----------
        token : str or path-like, optional
            A token to use (surrounding quotes and a "Bearer" prefix are
            removed), or the path of a file holding one; empty or blank values
            are ignored.
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
        if isinstance(token, os.PathLike) or (isinstance(token, str) and _looks_like_path(token)):
            chosen = self._from_file(token)
        cleaned = _clean(token) if chosen is None else ""
        if cleaned:
            chosen = self._explicit(cleaned, "argument")
        skipped = []
        if chosen is None and not reenter_token:
            legacy = legacy_keyring_service_name(self.server_url) if self._keyring_service is None else None
            chosen = find_token(service, self._files, skipped, legacy)
        if chosen is None:
            message = no_token_message(service, self._files, skipped, reenter_token)
            if not self._can_prompt():
                raise LoginError(message)
            chosen = self._prompt_for_token(message)
        token, info, origin = chosen
        self._set(token, info, origin)
        log.debug(f"Logged in to MMODA as {info._who()} (token from {info.source}; "
                  f"{_expiry_phrase(info._exp - time.time())}).")
        if store_token and origin != ("keyring", service):
            save_to_keyring(service, token, "the token")
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
            delete_from_keyring(service)
        kept = [str(path) for path in self._files() if is_file(path)]
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
                raise _expired_error(info, "The new token")
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
            save_to_keyring(where, token, "the renewed token")
        elif kind == "file":
            try:
                write_token_file(where, token)
            except OSError as exc:
                warnings.warn(f"Could not write the renewed token to {where} ({type(exc).__name__}: "
                              f"{redact(exc.strerror or exc)}); it is used for this session only.",
                              AuthenticationWarning, stacklevel=3)
            else:
                log.info(f"Wrote the renewed token to {where}.")
        else:
            service = self.keyring_service
            if save_to_keyring(service, token, "the renewed token"):
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
            raise _expired_error(info, "The token")
        if REFRESH_ROLE not in info.roles:
            raise LoginError(f"The token of {info._who()} lacks the role {REFRESH_ROLE!r}, so the "
                             f"dispatcher will not refresh it; get a new token from {_FRONTEND}.")
        return self.replace(fetch(token), store=store)

    # -- safety checks -----------------------------------------------------

    @staticmethod
    def check_transport(url):
        """Refuse to send a token over plain HTTP except to this machine.

        Raises `~astroquery_mmoda.exceptions.LoginError` unless ``url`` is
        ``https``, or ``http`` to a literal loopback address; see
        `~astroquery_mmoda.server_urls.check_token_transport`.
        """
        check_token_transport(url)

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


def _looks_like_path(text):
    """Whether a login argument names a file rather than being a token (a JWT has no slash)."""
    text = text.strip()
    if not text or len(text) > 4096 or (text.count(".") == 2 and text.startswith("eyJ")):
        return False
    return "/" in text or "\\" in text or text.startswith("~") or is_file(Path(text))
