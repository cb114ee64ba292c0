"""How decoded products are shown in messages and reprs: cut short and without tokens.

The only place where the products package reaches for the token redaction.
"""

_MAX_SHOWN = 200


def _redact(text):
    """``text`` without tokens."""
    # auth pulls in the token machinery: import it only when text is shown.
    from ..auth import redact
    return redact(text)


def _scrub(value):
    """A copy of the JSON-like ``value`` without tokens."""
    from ..auth import scrub
    return scrub(value)


def _short(value, limit=_MAX_SHOWN):
    """``repr``-like text of ``value`` cut to ``limit`` characters, tokens removed."""
    if isinstance(value, (bytes, bytearray)):
        text = f"<{len(value)} bytes>"
    else:
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # a repr that fails must not hide the real error
            text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return _redact(text)
