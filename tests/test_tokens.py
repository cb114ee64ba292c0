"""Unit tests of what a token says (`astroquery_mmoda.tokens`); no network."""
import time

import astropy.units as u
import pytest
from astropy.time import Time

from astroquery_mmoda.exceptions import LoginError
from astroquery_mmoda.tokens import TokenInfo, decode_token
from tests.auth_helpers import mint, signature_windows


# -- decoding and TokenInfo ---------------------------------------------------

def test_decode_token_reads_claims_without_secret():
    token = mint(roles="general,refresh-tokens", tem=10)
    claims = decode_token("  " + token + "\n")
    assert claims["sub"] == "alice@example.org"
    assert claims["tem"] == 10


@pytest.mark.parametrize("bad", ["a.b.c", "not-a-token", "eyJhbGciOiJIUzI1NiJ9.@@@.x",
                                 "eyJhbGciOiJIUzI1NiJ9.bnVsbA.sig", "", "   "])
def test_decode_token_malformed(bad):
    with pytest.raises(LoginError) as error:
        decode_token(bad)
    if bad.strip():
        assert bad.strip() not in str(error.value)


def test_decode_token_corrupted_signature_not_echoed():
    token = mint()
    broken = token[:-3] + "!!!"
    with pytest.raises(LoginError, match="not a valid JWT") as error:
        decode_token(broken)
    assert not any(w in str(error.value) for w in signature_windows(token))


def test_decode_token_not_a_string():
    with pytest.raises(LoginError, match="string"):
        decode_token(42)


def test_token_info_values():
    info = TokenInfo.from_token(mint(roles="general, refresh-tokens", hours=47.9), source="keyring")
    assert info.subject == info.email == "alice@example.org"
    assert info.name == "Alice"
    assert info.roles == ("general", "refresh-tokens")
    assert isinstance(info.expires, Time)
    assert info.remaining.unit == u.h
    assert info.remaining.to_value(u.h) == pytest.approx(47.9, abs=0.05)
    assert not info.expired
    assert info.source == "keyring"
    assert str(info) == "alice@example.org, roles: general, refresh-tokens; expires in 47.9 h"
    assert repr(info).startswith("<TokenInfo alice@example.org ")
    assert "source='keyring'" in repr(info)


def test_token_info_roles_from_list_and_missing():
    assert TokenInfo.from_token(mint(roles=["general", " x "]), source="argument").roles == ("general", "x")
    assert TokenInfo({"exp": time.time() + 60}, source="argument").roles == ()


def test_token_info_expired():
    info = TokenInfo.from_token(mint(hours=-2.0, roles=""), source="argument")
    assert info.expired
    assert info.remaining.to_value(u.h) == pytest.approx(-2.0, abs=0.05)
    assert str(info) == "alice@example.org, roles: none; expired 2.0 h ago"


def test_token_info_minutes():
    info = TokenInfo.from_token(mint(hours=0.5), source="argument")
    assert str(info).endswith("expires in 30 min")


def test_token_info_is_immutable_and_claims_are_copies():
    info = TokenInfo.from_token(mint(), source="argument")
    with pytest.raises(AttributeError):
        info.subject = "mallory@example.org"
    with pytest.raises(AttributeError):
        info.source = "prompt"
    claims = info.claims
    claims["sub"] = "mallory@example.org"
    assert info.claims["sub"] == "alice@example.org"


@pytest.mark.parametrize("exp", [None, "tomorrow", True, float("nan")])
def test_token_info_needs_numeric_exp(exp):
    claims = {"sub": "alice@example.org"}
    if exp is not None:
        claims["exp"] = exp
    with pytest.raises(LoginError, match="exp"):
        TokenInfo(claims, source="argument")
