"""Keeping tokens secret: the one place that removes them from text and data.

Everything logged, raised, cached or saved by the package goes through
`redact` (text) or `scrub` (JSON-like data) first.
"""
import logging
import re
import threading

__all__ = ["register_secret", "known_secrets", "redact", "scrub", "contains_secret", "count_secrets",
           "RedactingFilter"]

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


def _may_hold_jwt(text):
    # Both are fast searches, ten times faster than the pattern's own scan; base64
    # product data (tens of MB) never hold a ".".
    return "." in text and "eyJ" in text


def known_secrets():
    """The values registered with `register_secret`, longest first."""
    with _lock:
        return tuple(sorted(_known_secrets, key=len, reverse=True))


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
    if _may_hold_jwt(text):
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
        return {redact(key) if isinstance(key, str) else key: scrub(item)
                for key, item in value.items() if key != "token"}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(item) for item in value)
    if isinstance(value, str):
        return redact(value)
    return value


def contains_secret(value):
    """Whether `scrub` would change a JSON-like structure (a ``token`` entry, a token in a text).

    Reads everything, keys included, and copies nothing.

    Examples
    --------
    >>> import secrets, jwt
    >>> token = jwt.encode({"sub": "alice@example.org"}, secrets.token_hex(32), algorithm="HS256")
    >>> contains_secret({"job_id": "d0c4a1e2", "products": [f"run with {token}"]})
    True
    >>> contains_secret({"job_id": "d0c4a1e2", "products": [1.5, None, "ok"]})
    False
    """
    secrets = known_secrets()
    for item in _parts(value):
        if isinstance(item, dict):
            if "token" in item:
                return True
        elif (_may_hold_jwt(item) and _JWT_RE.search(item)) or any(secret in item for secret in secrets):
            return True
    return False


def count_secrets(value):
    """How often registered secrets occur in a JSON-like structure's texts (keys too).

    None if it holds a token that is not registered (a JWT-shaped text that
    is not a registered secret).

    Examples
    --------
    >>> count_secrets({"job_id": "d0c4a1e2", "log": ["no token here"]})
    0
    >>> import secrets, jwt
    >>> unregistered = jwt.encode({"sub": "bob@example.org"}, secrets.token_hex(32), algorithm="HS256")
    >>> count_secrets([unregistered]) is None
    True
    """
    secrets, count = known_secrets(), 0
    for text in _parts(value):
        if isinstance(text, dict):
            continue
        for match in _JWT_RE.finditer(text) if _may_hold_jwt(text) else ():
            if match.group() not in secrets:
                return None
        for secret in secrets:
            if secret in text:
                occurrences = text.count(secret)
                count += occurrences
                text = text.replace(secret, _REDACTED)  # a shorter secret inside a longer one: once
    return count


def _parts(value):
    """The dictionaries and the texts (keys included) of a JSON-like structure."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            yield item
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif isinstance(item, str):
            yield item


class RedactingFilter(logging.Filter):
    """Redact tokens in log records of libraries that print request URLs."""

    def filter(self, record):
        # Redact the message as it will be shown: arguments of any type (an
        # exception, a URL object) become text only when the message is formatted.
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error report
            return True
        record.msg, record.args = redact(message), ()
        return True
