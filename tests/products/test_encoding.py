"""The plain encodings of products: strict base64."""
import base64

import pytest

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products.encoding import _b64decode


@pytest.mark.parametrize("text", ["AA==AA==", "AAAA====", "AA=", "A", "=AA=", "AA\nAA", " AAAA", "AAAA ",
                                  "AA=A", "AAA", "é", "QQ==\x00", b"AA==AA=="])
def test_base64_is_strict(text):
    with pytest.raises(ProtocolError, match="binarys is not valid base64"):
        _b64decode(text, urlsafe=False, what="binarys")


def test_base64_standard_and_url_safe():
    data = bytes(range(256)) * 3
    assert _b64decode(base64.b64encode(data).decode(), urlsafe=False, what="x") == data
    assert _b64decode(base64.b64encode(data), urlsafe=False, what="x") == data
    assert _b64decode(base64.urlsafe_b64encode(data).decode(), urlsafe=True, what="x") == data
    assert _b64decode("", urlsafe=False, what="x") == b""
    with pytest.raises(ProtocolError, match="x is not valid URL-safe base64"):
        _b64decode("-_8$", urlsafe=True, what="x")
    with pytest.raises(ProtocolError, match="x is int, not a base64 string"):
        _b64decode(5, urlsafe=False, what="x")
