"""How decoded products are shown in messages and reprs: cut short and without tokens.

The only place where the products package reaches for the token redaction.
"""
from ..redaction import redact as _redact, scrub as _scrub  # noqa: F401 (_scrub is used by decode)

_MAX_SHOWN = 200


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
