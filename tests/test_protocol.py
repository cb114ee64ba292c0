"""Unit tests of the protocol (`astroquery_mmoda.protocol`): encoding, envelopes, job failures (offline)."""
import json
import secrets

import jwt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astroquery_mmoda.protocol import encode_params, failure_reason, parse_envelope, raise_for_job_failure
from astroquery_mmoda.exceptions import (InvalidQueryError, JobFailedError, MmodaServiceError,
                                         NoDataError, ProtocolError)


def make_token():
    return jwt.encode({"sub": "x@example.org", "exp": 4102444800}, secrets.token_hex(32),
                      algorithm="HS256")


def envelope(**overrides):
    body = {"query_status": "done", "session_id": "ABCDEFGHIJKLMNOP",
            "exit_status": {"status": 0, "message": "", "error_message": "", "debug_message": "",
                            "comment": ""},
            "job_monitor": {"job_id": "0123456789abcdef", "session_id": "ABCDEFGHIJKLMNOP"},
            "products": {}}
    body.update(overrides)
    return json.dumps(body)


def test_encode_params():
    assert encode_params({
        "flag": True, "off": False, "none": None, "i": 10, "f": 28.0, "tiny": 1e-12,
        "lst": [1, "a"], "dct": {"b": 2}, "scw_list": ["066500220010.001", "066500230010.001"],
        "catalog_selected_objects": [1, 2], "text": "Crab", "st": {3, 1},
    }) == {
        "flag": "True", "off": "False", "none": "\x00", "i": "10", "f": "28.0", "tiny": "1e-12",
        "lst": '[1, "a"]', "dct": '{"b": 2}', "scw_list": "066500220010.001,066500230010.001",
        "catalog_selected_objects": "1,2", "text": "Crab", "st": "[1, 3]",
    }
    assert encode_params({"scw_list": "066500220010.001,066500230010.001"})["scw_list"] == \
        "066500220010.001,066500230010.001"


def test_numpy_numbers_encode_like_python_numbers():
    np = pytest.importorskip("numpy")
    assert encode_params({"a": np.float32(0.5), "b": np.int64(3)}) == {"a": "0.5", "b": "3"}


@pytest.mark.parametrize("params, message", [
    ({"scw_list": "066500220010.001 066500230010.001"}, "comma-separated"),
    ({"x": float("nan")}, "finite"),
    ({"x": float("inf")}, "finite"),
    ({"x": b"bytes"}, "bytes"),
])
def test_encode_refuses(params, message):
    with pytest.raises(InvalidQueryError, match=message):
        encode_params(params)


def test_parse_envelope_tolerates_nan_and_strips_tokens():
    token = make_token()
    body = envelope(products={"analysis_parameters": {"token": token, "RA": 1.0},
                              "api_code": f"token='{token}'", "value": float("nan")},
                    job_monitor={"job_id": "0123456789abcdef",
                                 "full_report_dict_list": [{"message": "m", "token": token}]})
    parsed = parse_envelope(body.encode())
    assert parsed.succeeded and parsed.finished
    assert parsed.products["analysis_parameters"] == {"RA": 1.0}
    assert token not in json.dumps(parsed.data, allow_nan=True)
    assert parsed.reports == [{"message": "m"}]


@pytest.mark.parametrize("body, message", [
    (b"<html>Bad gateway</html>", "not valid JSON"),
    (b'{"query_status": "done"', "not valid JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"exit_status": {}}', "no query_status"),
    (envelope(exit_status={"status": "zero"}).encode(), "not a number"),
    (envelope(job_monitor={"job_id": 5}).encode(), "not a string"),
    (envelope(products=[]).encode(), "wrong type"),
])
def test_parse_envelope_refuses(body, message):
    with pytest.raises(ProtocolError, match=message):
        parse_envelope(body)


def test_failures_even_when_done():
    done_but_failed = parse_envelope(envelope(exit_status={
        "status": 1, "message": "failed: get dataserver products ", "error_message": "x"}))
    with pytest.raises(NoDataError, match="get dataserver products"):
        raise_for_job_failure(done_but_failed)
    failed = parse_envelope(envelope(query_status="failed", exit_status={
        "status": 1, "message": "failing query", "debug_message": "trace"}))
    with pytest.raises(JobFailedError, match="failing query") as error:
        raise_for_job_failure(failed)
    assert error.value.job_id == "0123456789abcdef" and error.value.debug_message == "trace"
    raise_for_job_failure(parse_envelope(envelope()))  # success: no exception


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                              lambda children: st.lists(children) | st.dictionaries(
                                  st.sampled_from(["query_status", "exit_status", "job_monitor",
                                                   "products", "status", "job_id", "x"]),
                                  children), max_leaves=20).map(
                     lambda v: json.dumps(v).encode())))
def test_fuzzed_envelopes_raise_only_package_errors(body):
    try:
        parsed = parse_envelope(body)
        raise_for_job_failure(parsed)
    except (ProtocolError, JobFailedError):
        pass


def test_exceptions_carry_context_without_tokens():
    token = make_token()
    error = MmodaServiceError(f"bad {token}", job_id="j1", status_code=500,
                              debug_message=f"dbg {token}")
    assert token not in str(error) and token not in error.debug_message
    assert "j1" in str(error)


# -- the failure reason, as each dispatcher version reports it -----------------------------

GENERIC = ("Instrument: spi_acs, product: spi_acs_lc\n\nThe support team has been notified, and we are "
           "investigating to resolve the issue as soon as possible\n\nIf you are willing to help us, "
           "please use the \"Write a feedback\" button below.")


def test_failure_reason_of_the_current_dispatcher_is_in_debug_message():
    failed = parse_envelope(envelope(query_status="failed", exit_status={
        "status": 1, "message": "Error when getting query products", "error_message": GENERIC,
        "debug_message": "SpiacsAnalysisException('no usable data found for this time range')"}))
    with pytest.raises(NoDataError) as error:
        raise_for_job_failure(failed)
    text = str(error.value)
    assert "SpiacsAnalysisException('no usable data found for this time range')" in text
    assert "Error when getting query products" in text and "spi_acs_lc" in text
    assert "support team" not in text and "feedback" not in text


def test_failure_reason_of_the_old_dispatcher_is_in_message_and_error_message():
    failed = parse_envelope(envelope(query_status="failed", exit_status={
        "status": 1, "message": "failing query", "error_message": "the plugin raised KeyError('E1')",
        "debug_message": ""}))
    with pytest.raises(JobFailedError) as error:
        raise_for_job_failure(failed)
    assert type(error.value) is JobFailedError
    assert str(error.value) == ("MMODA job failed: failing query; the plugin raised KeyError('E1') "
                                "(job 0123456789abcdef)")


@pytest.mark.parametrize("field", ["message", "error_message", "debug_message"])
def test_no_data_marker_in_any_field_is_no_data(field):
    exit_status = {"status": 1, "message": "x", "error_message": "y", "debug_message": "z"}
    exit_status[field] = "RuntimeError('no usable data in the requested time span')"
    with pytest.raises(NoDataError, match="no usable data"):
        raise_for_job_failure(parse_envelope(envelope(query_status="failed", exit_status=exit_status)))


def test_failure_reason_is_redacted_and_skips_non_text():
    token = make_token()
    text, no_data = failure_reason({"message": ["a", "list"], "error_message": None,
                                    "debug_message": f"ValueError('bad token {token}')"})
    assert text == "ValueError('bad token <token>')" and not no_data
