"""The plain encodings inside products: strict base64, JSON objects and meta-data, names.

Python reprs are never evaluated: a field is JSON or it is refused (or kept as text).
"""
import json
import re
import warnings

import pybase64
from astropy.utils.exceptions import AstropyUserWarning

from ..exceptions import ProtocolError
from ..json_decoding import Base64Data


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _strict_b64(text):
    # pybase64 (SIMD) is ~8x faster than binascii here; with validate=True it
    # refuses any character outside the alphabet and any misplaced padding.
    return pybase64.b64decode(text, validate=True)


def _b64decode(text, *, urlsafe, what):
    """Decode strict (standard or URL-safe) base64; ``what`` names the field in errors.

    A `~astroquery_mmoda.json_decoding.Base64Data` was decoded (strictly) as
    the answer was parsed: it is returned as it is.
    """
    if type(text) is Base64Data and not urlsafe:
        return text.data
    if not isinstance(text, (str, bytes)):
        raise ProtocolError(f"{what} is {type(text).__name__}, not a base64 string")
    try:
        if urlsafe:
            if isinstance(text, str):
                text = text.encode("ascii")
            text = text.translate(_URLSAFE)
        return _strict_b64(text)
    except (ValueError, TypeError, UnicodeError):  # binascii.Error is a ValueError
        kind = "URL-safe base64" if urlsafe else "base64"
        raise ProtocolError(f"{what} is not valid {kind}") from None


def _as_dict(value):
    """``value`` if a dict, the dict a JSON string encodes (once or twice), else None.

    Notebook services (nb2workflow) send table meta-data encoded twice
    (``'"{}"'``): a JSON string of a JSON object is read as the object.
    """
    if isinstance(value, dict):
        return value
    for _ in range(2):
        if not isinstance(value, str):
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
        if isinstance(value, dict):
            return value
    return None


def _json_meta(value, ctx, what):
    """A meta-data dictionary from a dict or a JSON string (Python reprs are never evaluated)."""
    if value is None or value == "":
        return {}
    decoded = _as_dict(value)
    if decoded is not None:
        return decoded
    if isinstance(value, str) and not ctx.warned_meta:
        ctx.warned_meta = True
        warnings.warn(f"{what}: meta-data is not a JSON object; kept as {{'raw': <text>}}",
                      AstropyUserWarning, stacklevel=4)
    return {"raw": value}


def _json_object(value, what):
    """A dict from a dict or a JSON string of one."""
    decoded = _as_dict(value)
    if decoded is not None:
        return decoded
    if isinstance(value, str):
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            raise ProtocolError(f"{what} is neither an object nor JSON") from None
    raise ProtocolError(f"{what} is not an object but {type(value).__name__}")


def _clean_name(name):
    """A product name with whitespace turned into ``_``; None when empty or ``'None'``."""
    if not isinstance(name, str):
        return None
    name = re.sub(r"\s+", "_", name.strip())
    return None if name in ("", "None") else name
