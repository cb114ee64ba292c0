"""Decoding JSON answers: msgspec where it can, the standard library for the rest.

msgspec decodes a large answer about twice as fast as `json.loads` and
without first making a text copy of the whole body (`json.loads` of bytes
decodes them to one string before parsing).  It only reads strict JSON:
answers with ``NaN`` or ``Infinity``, numbers beyond a float, a byte-order
mark or a lone surrogate go to `json.loads`, which reads them as before, and
so do answers under a MiB.

In a large answer, the base64 data of products (the ``binarys`` of FITS data
units, each a MiB or more) are decoded straight from the answer's bytes
before the rest is parsed: the answer, its text as a Python string and the
decoded data are then never all in memory at once.  Such a value is a
`Base64Data` (holding the decoded bytes) instead of the string.
"""
import json
import re
import secrets

import pybase64

__all__ = ["decode_json", "Base64Data"]


class Base64Data:
    """The bytes (``data``) a base64 string of an answer stands for, decoded while it was parsed."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"<Base64Data: {len(self.data)} bytes>"


_decoder = None
# Smaller answers (nearly all of them) gain nothing worth the ~10 ms that importing msgspec costs.
_LARGE = 1 << 20
#: base64 strings from this length on are decoded before the answer is parsed.
_BLOB = 1 << 20
_BLOB_KEY = b'"binarys"'
_BLOB_VALUE = re.compile(rb'"binarys"[ \t\r\n]*:[ \t\r\n]*"')


def decode_json(content):
    """The Python value of the JSON text ``content`` (bytes-like or str), as `json.loads` gives it.

    But for the ``binarys`` strings of a MiB or more of strict base64 in
    bytes-like ``content``: each is a `Base64Data` of its decoded bytes.
    Raises what `json.loads` raises (`ValueError`, `UnicodeDecodeError`, `RecursionError`).

    Examples
    --------
    >>> decode_json(b'{"query_status": "done", "p": NaN}')
    {'query_status': 'done', 'p': nan}
    """
    global _decoder
    if len(content) < _LARGE:
        return json.loads(content)
    if _decoder is None:
        import msgspec

        _decoder = msgspec.json.Decoder()
    blobs = _take_blobs(content) if isinstance(content, (bytes, bytearray, memoryview)) else None
    if blobs is not None:
        rest, values, marker = blobs
        for decode in (_decoder.decode, json.loads):  # json.loads: NaN and the like
            try:
                return _put_blobs(decode(rest), values, marker)
            except (ValueError, TypeError, RecursionError):
                pass  # read as a whole below, for its own result or error
        del rest, values
    try:
        return _decoder.decode(content)
    except (ValueError, TypeError, RecursionError):  # msgspec.DecodeError is a ValueError
        pass
    return json.loads(content)


def _take_blobs(content):
    """``(rest, values, marker)``: ``content`` with its large ``binarys`` strings decoded and
    replaced by ``marker`` strings naming them, or None if it has none.

    A value is taken only if it is, as it stands, a whole JSON string of strict
    base64 (no escape, no quote inside) after a ``"binarys"`` key whose quote
    is not escaped; anything else is left to the parser.  Should the rest not
    parse, the caller parses ``content`` as it was.
    """
    view = memoryview(content).cast("B")
    data = view.obj if isinstance(view.obj, (bytes, bytearray)) and len(view.obj) == len(view) \
        else bytes(view)
    pieces, values, kept = [], [], 0
    marker = f"\u0000mmoda-base64-{secrets.token_hex(8)}-"
    position = data.find(_BLOB_KEY)
    while position >= 0:
        match = _BLOB_VALUE.match(data, position)
        start = match.end() if match else -1
        end = data.find(b'"', start) if match else -1
        if match and end - start >= _BLOB and (position == 0 or data[position - 1] != 0x5C) \
                and data.find(b"\\", start, end) < 0:
            try:
                value = Base64Data(pybase64.b64decode(view[start:end], validate=True))
            except ValueError:  # not strict base64: the products' decoder says so
                value = None
            if value is not None:
                pieces += [view[kept:start - 1], json.dumps(f"{marker}{len(values)}").encode()]
                values.append(value)
                kept = end + 1
                position = data.find(_BLOB_KEY, kept)
                continue
        position = data.find(_BLOB_KEY, position + 1)
    if not values:
        return None
    pieces.append(view[kept:])
    return b"".join(pieces), values, marker


def _put_blobs(value, blobs, marker):
    """``value`` with the ``binarys`` strings that name ``blobs`` replaced by them (all of them, once)."""
    placed = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            text = item.get("binarys")
            if isinstance(text, str) and text.startswith(marker):
                item["binarys"] = blobs[int(text[len(marker):])]
                placed += 1
            stack.extend(child for child in item.values() if isinstance(child, (dict, list)))
        elif isinstance(item, list):
            stack.extend(child for child in item if isinstance(child, (dict, list)))
    if placed != len(blobs):
        raise ValueError("the answer's base64 data were not all where they were taken from")
    return value
