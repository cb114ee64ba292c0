"""Where tokens are looked for: environment, system keyring, token files, prompt.

These functions find, read and write tokens for `astroquery_mmoda.auth.TokenManager`;
none of them keeps a token.  Failures of the keyring or of token files are
logged or warned about, never raised: another source may still have a token.
"""
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import keyring
import keyring.errors
from astroquery import log
from astroquery.exceptions import AuthenticationWarning

from .exceptions import LoginError
from .redaction import redact
from .tokens import _FRONTEND, TokenInfo, _clean, _expiry_phrase

__all__ = ["keyring_service_name", "default_token_files", "is_interactive",
           "TOKEN_ENV_VAR", "TOKEN_FILE_NAME", "KEYRING_USERNAME"]

#: Environment variable read for a token (the one ``oda_api`` uses too).
TOKEN_ENV_VAR = "ODA_TOKEN"
#: Name of the token files looked for in the working and the home directory.
TOKEN_FILE_NAME = ".oda-token"
#: Username of the keyring entry (the service is `keyring_service_name`).
KEYRING_USERNAME = "mmoda-token"


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


# ---------------------------------------------------------------------------
# Finding a token

def find_token(service, files, skipped):
    """The first usable token of the environment, the keyring and the token files.

    Parameters
    ----------
    service : str
        The keyring service.
    files : callable
        Returns the token files to look in, in order (called only if the
        environment and the keyring have no usable token, as in
        `no_token_message`).
    skipped : list
        Receives a phrase for every expired or malformed token passed over.

    Returns
    -------
    tuple or None
        ``(token, TokenInfo, origin)``, where ``origin`` is ``("env", None)``,
        ``("keyring", service)`` or ``("file", path)``; None if nothing is found.
    """
    for label, origin, raw in _candidates(service, files):
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


def _candidates(service, files):
    """Yield ``(label, origin, raw token)`` for every source that has a value."""
    yield TOKEN_ENV_VAR, ("env", None), os.environ.get(TOKEN_ENV_VAR)
    yield "keyring", ("keyring", service), read_keyring(service)
    for path in files():
        if not is_file(path):
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


def no_token_message(service, files, skipped, reenter):
    """The guidance given when no source has a usable token."""
    if reenter:
        return (f"reenter_token=True needs an interactive session to ask for the token; "
                f"pass it with Mmoda.login(token=...) instead (tokens come from {_FRONTEND}).")
    files = " or ".join(str(path) for path in files())
    text = ("No usable MMODA token found. Pass one with Mmoda.login(token=...), or put it in "
            f"the environment variable {TOKEN_ENV_VAR}, in the system keyring (service "
            f"{service!r}, username {KEYRING_USERNAME!r}; Mmoda.login(token=..., store_token=True) "
            f"saves it there), or in the file {files}. Get a token from {_FRONTEND}.")
    if skipped:
        text += f" Skipped: {'; '.join(skipped)}."
    return text


# ---------------------------------------------------------------------------
# The system keyring

def describe_error(exc):
    """``Type: message`` of an exception, tokens removed."""
    text = redact(str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_keyring(service):
    """The token stored under ``service``, or None (also when the keyring fails)."""
    try:
        return keyring.get_password(service, KEYRING_USERNAME)
    except Exception as exc:  # backends raise anything (D-Bus, locked collections, ...)
        log.debug(f"No token from the system keyring ({describe_error(exc)}).")
        return None


def save_to_keyring(service, token, what):
    """Store ``token`` under ``service``; warn and return False if the keyring fails."""
    try:
        keyring.set_password(service, KEYRING_USERNAME, token)
    except Exception as exc:
        warnings.warn(
            f"Could not save {what} in the system keyring ({describe_error(exc)}); it is used "
            f"for this session only.  Without a working keyring (common on servers and headless "
            f"Linux) install keyrings.alt, or put the token in the {TOKEN_ENV_VAR} environment "
            f"variable or in ~/{TOKEN_FILE_NAME} (readable by you only).",
            AuthenticationWarning, stacklevel=3)
        return False
    log.info(f"Saved {what} in the system keyring (service {service!r}, "
             f"username {KEYRING_USERNAME!r}).")
    return True


def delete_from_keyring(service):
    """Delete the token stored under ``service``; warn if the keyring fails."""
    try:
        keyring.delete_password(service, KEYRING_USERNAME)
    except keyring.errors.PasswordDeleteError:
        log.info(f"No token was stored in the system keyring under {service!r}.")
    except Exception as exc:
        warnings.warn(f"Could not delete the token from the system keyring "
                      f"({describe_error(exc)}).", AuthenticationWarning, stacklevel=3)
    else:
        log.info(f"Deleted the token from the system keyring (service {service!r}).")


# ---------------------------------------------------------------------------
# Token files

def is_file(path):
    """Whether ``path`` is a file (False when it cannot be looked at)."""
    try:
        return path.is_file()
    except OSError:
        return False


def write_token_file(path, token):
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
