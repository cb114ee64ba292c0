"""MMODA tokens: where they come from, what they say, and keeping them secret.

The redaction helpers here are the single place that removes tokens from
anything logged, raised, cached or saved.
"""
import re
import threading

__all__ = ["redact", "scrub"]

# Any JWT (three base64url parts, the first one a JSON object: "eyJ...").
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_REDACTED = "<token>"
_known_secrets = set()
_lock = threading.Lock()


def register_secret(secret):
    """Make `redact` remove ``secret`` too, even if it does not look like a JWT."""
    if secret and len(secret) >= 8:
        with _lock:
            _known_secrets.add(secret)


def redact(text):
    """Return ``text`` with every token replaced by ``<token>``.

    Removes anything shaped like a JWT and every value registered with
    `register_secret` (tokens that this process has handled).
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
    """
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items() if key != "token"}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(item) for item in value)
    if isinstance(value, str):
        return redact(value)
    return value
