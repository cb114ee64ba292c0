"""decode_json gives what json.loads gives, for every answer a dispatcher may send."""
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astroquery_mmoda.json_decoding import decode_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30)


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.fixture
def every_size(monkeypatch):
    """msgspec for answers of any size (it reads only those of a MiB or more)."""
    monkeypatch.setattr("astroquery_mmoda.json_decoding._LARGE", 0)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_the_same_values_as_json_loads(value, as_bytes):
    text = json.dumps(value)
    content = text.encode() if as_bytes else text
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("astroquery_mmoda.json_decoding._LARGE", 0)
        assert same(decode_json(content), json.loads(content))


def test_a_large_answer_gives_the_same_values():
    value = {"products": {"numpy_data_product_list": ["A" * 2 ** 21], "p": [1.5, None, True]}}
    content = json.dumps(value).encode()
    assert decode_json(content) == value
    assert math.isnan(decode_json(content.replace(b"1.5", b"NaN"))["products"]["p"][0])


@pytest.mark.parametrize("content, expected", [
    (b'{"p": NaN, "q": -Infinity}', {"p": float("nan"), "q": float("-inf")}),
    (b'{"big": 1e999}', {"big": float("inf")}),
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
    (b'{"s": "\\ud800"}', {"s": "\ud800"}),
    (bytearray(b'{"a": [1, 2.5, "x", null, true]}'), {"a": [1, 2.5, "x", None, True]}),
    ('{"a": 123456789012345678901234567890}', {"a": 123456789012345678901234567890}),
    (b'{"a": 1, "a": 2}', {"a": 2}),
])
def test_what_only_the_standard_library_reads_is_still_read(every_size, content, expected):
    assert same(decode_json(content), expected)


@pytest.mark.parametrize("content", [b"", b"{", b"<html>502 Bad Gateway</html>", b'{"a": 1} trailing',
                                     b"\xff\xfe\x00garbage"])
def test_what_is_not_json_raises_as_json_loads_does(every_size, content):
    with pytest.raises(ValueError):
        json.loads(content)
    with pytest.raises(ValueError):
        decode_json(content)


def test_deep_nesting_raises_a_recursion_or_value_error(every_size):
    with pytest.raises((RecursionError, ValueError)):
        decode_json(b"[" * 100_000 + b"]" * 100_000)
