"""Unit tests of token redaction (`astroquery_mmoda.redaction`) and of the old paths of moved names."""
import logging
import secrets

import pytest

from astroquery_mmoda import auth, cache, dispatcher, journal, metadata, redaction, tokens
from astroquery_mmoda.redaction import (RedactingFilter, contains_secret, count_secrets, redact,
                                        register_secret, scrub)
from tests.auth_helpers import mint


def test_redact_removes_jwts_and_registered_secrets():
    token = mint()
    secret = f"opaque-{secrets.token_hex(12)}"
    register_secret(secret)
    text = redact(f"a={token} b={secret} c=short")
    assert text == "a=<token> b=<token> c=short"


def test_register_secret_ignores_short_and_empty_values():
    register_secret("")
    register_secret(None)
    register_secret("tiny")
    assert redact("tiny tokens stay") == "tiny tokens stay"


def test_redact_turns_non_strings_into_text():
    assert redact(42) == "42"


def test_scrub_drops_token_keys_at_every_depth_and_keeps_types():
    token = mint()
    value = {"token": token, "a": [f"x {token}", ("t", token), 3], "b": {"token": "y", "n": None}}
    assert scrub(value) == {"a": ["x <token>", ("t", "<token>"), 3], "b": {"n": None}}
    assert isinstance(scrub(value)["a"][1], tuple)


def test_scrub_redacts_keys_too():
    token = mint()
    assert scrub({f"run {token}": 1}) == {"run <token>": 1}


def test_contains_secret_says_whether_scrub_would_change_anything():
    token, registered = mint(), f"opaque-{secrets.token_hex(12)}"
    register_secret(registered)
    for value in ({"token": None}, [f"x {token}"], {f"key {token}": 1}, ("a", registered),
                  {"a": {"b": [f"{registered}!"]}}):
        assert contains_secret(value) and scrub(value) != value
    for value in ({"a": ["no.token here", 1.5, None]}, ["eyJ but no dots"], {"tokens": 1}, "A" * 10_000):
        assert not contains_secret(value) and scrub(value) == value


def test_count_secrets_counts_registered_ones_and_gives_up_on_others():
    registered = mint(sub="counted@example.org")
    register_secret(registered)
    assert count_secrets({"token": registered, "log": [f"{registered} and {registered}"],
                          registered: "as a key"}) == 4
    assert count_secrets({"a": "nothing"}) == 0
    assert count_secrets({"a": f"{registered} {mint(sub='other@example.org')}"}) is None


def test_redacting_filter_cleans_message_and_arguments():
    token = mint()
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1,
                               "GET %s %s " + token, (f"/run_analysis?token={token}", 200), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "GET /run_analysis?token=<token> 200 <token>"


def test_redacting_filter_cleans_arguments_of_any_type():
    token = mint()

    class Url:
        def __str__(self):
            return f"https://example.org/run_analysis?token={token}"

    record = logging.LogRecord("astroquery", logging.INFO, __file__, 1, "sent %s (%r)",
                               (Url(), ValueError(token)), None)
    assert RedactingFilter().filter(record)
    assert token not in record.getMessage()
    assert record.getMessage().startswith("sent https://example.org/run_analysis?token=<token>")


def test_install_log_redaction_adds_one_filter_to_urllib3():
    dispatcher.install_log_redaction()
    dispatcher.install_log_redaction()
    logger = logging.getLogger("urllib3.connectionpool")
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1


@pytest.mark.parametrize("old, new, names", [
    (auth, redaction, ["redact", "scrub", "register_secret"]),
    (auth, tokens, ["decode_token", "TokenInfo", "FRONTEND_URL", "REFRESH_ROLE"]),
    (cache, journal, ["JobJournal", "JOURNAL_COLUMNS"]),
    (dispatcher, metadata, ["parse_meta_data"]),
])
def test_moved_names_keep_their_old_paths(old, new, names):
    for name in names:
        assert getattr(old, name) is getattr(new, name)
