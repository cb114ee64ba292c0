"""decode_json gives what json.loads gives, for every answer a dispatcher may send.

(Large base64 data excepted: they come decoded, as `Base64Data`.)
"""
import base64
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astroquery_mmoda.json_decoding import Base64Data, decode_json
from astroquery_mmoda.products import decode_products

from .cache_helpers import as_sent
from .products.helpers import b64pickle

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


# Large base64 data, decoded from the answer's bytes before the rest is parsed

def answer_with(blob_text, **extra):
    unit = {"name": "IMAGE", "binarys": blob_text, "header": {"BUNIT": "count"}}
    return {"query_status": "done", "products": {"numpy_data_product_list": [
        {"name": "image", "data_unit_list": [{"name": "PRIMARY", "binarys": None}, unit]}]}, **extra}


def test_large_base64_data_come_decoded_and_the_rest_as_json_loads_reads_it():
    raw = bytes(range(256)) * 8192  # 2 MiB
    text = base64.b64encode(raw).decode()
    answer = answer_with(text, note='he said "binarys": "AAAA"', p=1.5)
    decoded = decode_json(bytearray(json.dumps(answer).encode()))
    units = decoded["products"]["numpy_data_product_list"][0]["data_unit_list"]
    assert type(units[1]["binarys"]) is Base64Data and units[1]["binarys"].data == raw
    units[1]["binarys"] = text
    assert same(decoded, answer)
    # and the products decode from it as from the text
    array = np.arange(300_000, dtype=">f8")
    answer = answer_with(b64pickle(array))
    answer["products"]["numpy_data_product_list"][0]["data_unit_list"][1]["hdu_type"] = "image"
    products = decode_products(decode_json(json.dumps(answer).encode())["products"])
    assert products[next(iter(products))][1].data.tolist() == array.tolist()


@pytest.mark.parametrize("make", [
    lambda text: json.dumps(answer_with(text[:-4] + "!!!!")),  # not base64: left to the products' decoder
    lambda text: json.dumps(answer_with(text)).replace("/", "\\/"),  # an escape inside: parsed as text
    lambda text: json.dumps({"text": json.dumps(answer_with(text))}),  # inside a string: not a value
    lambda text: json.dumps(answer_with(text, p=float("nan"))),  # NaN: json.loads reads the rest
    lambda text: '{"binarys": "%s", "binarys": "short"}' % text,  # a key twice: the last wins
])
def test_only_whole_strict_base64_values_are_taken_and_the_result_is_json_loads(make):
    text = base64.b64encode(bytes(range(255, -1, -1)) * 8192).decode()
    body = make(text)
    assert same(as_sent(decode_json(body.encode())), json.loads(body))
