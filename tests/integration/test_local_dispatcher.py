"""The test harness itself: a real dispatcher, real tokens, the real async back-end.

These tests talk to the server with plain ``requests`` on purpose: they prove
the harness, independently of the client.
"""
import json
import time

import jwt
import pytest
import requests

from astroquery_mmoda.testing import LocalDispatcher
from astroquery_mmoda.testing.local_dispatcher import redact_tokens

pytestmark = pytest.mark.integration


def run_analysis(dispatcher, **params):
    params.setdefault("query_status", "new")
    params.setdefault("api", "True")
    return requests.get(f"{dispatcher.url}/run_analysis", params=params, timeout=60)


def test_server_is_loopback_and_lists_test_instruments(local_dispatcher):
    assert local_dispatcher.url.startswith("http://127.0.0.1:")
    answer = requests.get(f"{local_dispatcher.url}/api/instr-list",
                          params={"instrument": "mock"}, timeout=30)
    assert answer.status_code == 200
    instruments = answer.json()
    assert {"empty", "empty-async", "empty-semi-async"} <= set(instruments)
    # The INTEGRAL plugins are hidden unless asked for.
    assert "isgri" not in instruments


def test_meta_data_of_empty(local_dispatcher):
    answer = requests.get(f"{local_dispatcher.url}/api/meta-data",
                          params={"instrument": "empty"}, timeout=30)
    assert answer.status_code == 200
    blocks = answer.json()[0]
    assert blocks[0] == {"instrumet": "empty"}  # sic, upstream's key
    assert "numerical" in blocks[1]["prod_dict"]
    # 1.3.3 encodes each query block as a JSON string.
    source_query = json.loads(blocks[2]) if isinstance(blocks[2], str) else blocks[2]
    assert source_query[0] == {"query_name": "src_query"}
    assert {p.get("name") for p in source_query[1:]} >= {"RA", "DEC", "T1", "T2"}


def test_minted_token_claims(local_dispatcher):
    token = local_dispatcher.mint_token(["general", "unige-hpc-full"], sub="alice@example.org",
                                        expires_in=600)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == claims["email"] == "alice@example.org"
    assert claims["roles"] == "general,unige-hpc-full"
    assert 590 <= claims["exp"] - time.time() <= 601
    assert claims["msdone"] is False and claims["mssub"] is False
    assert jwt.decode(local_dispatcher.mint_token(""), options={"verify_signature": False})[
        "roles"] == ""


def test_numerical_needs_general_role(local_dispatcher, mmoda_token):
    query = dict(instrument="empty", product_type="numerical", query_type="Dummy", p=5)
    public = run_analysis(local_dispatcher, **query)
    assert public.status_code == 403
    assert "general" in public.json()["exit_status"]["message"]

    answer = run_analysis(local_dispatcher, token=mmoda_token("general"), **query)
    assert answer.status_code == 200
    body = answer.json()
    assert body["query_status"] == "done"
    assert body["exit_status"]["status"] == 0
    product = body["products"]["numpy_data_product_list"][0]
    assert product["data_unit_list"][0]["dt"] == "float64"


def test_hpc_role_for_large_p(local_dispatcher, mmoda_token):
    query = dict(instrument="empty", product_type="numerical", query_type="Dummy", p=60)
    assert run_analysis(local_dispatcher, token=mmoda_token("general"), **query).status_code == 403
    answer = run_analysis(local_dispatcher, token=mmoda_token("general,unige-hpc-full"), **query)
    assert answer.status_code == 200


def test_expired_and_foreign_tokens_are_refused(local_dispatcher, mmoda_token):
    query = dict(instrument="empty", product_type="dummy", query_type="Dummy")
    expired = run_analysis(local_dispatcher, token=mmoda_token(expires_in=-60), **query)
    assert expired.status_code == 403
    assert "expired" in expired.json()["error_message"]

    foreign = jwt.encode({"sub": "x@example.org", "roles": "general", "exp": time.time() + 600},
                         "another-secret-of-more-than-32-bytes-0123456789", algorithm="HS256")
    assert run_analysis(local_dispatcher, token=foreign, **query).status_code == 403


def test_failing_product_fails(local_dispatcher):
    answer = run_analysis(local_dispatcher, instrument="empty", product_type="failing",
                          query_type="Dummy")
    assert answer.status_code == 200
    body = answer.json()
    assert body["query_status"] == "failed"
    assert body["exit_status"]["status"] == 1


def test_selected_catalog_is_accepted(local_dispatcher):
    # Without the launcher's numpy aliases the 2022 catalog code answers 400 here.
    catalog = {"cat_frame": "fk5", "cat_coord_units": "deg", "cat_lon_name": "ra",
               "cat_lat_name": "dec",
               "cat_column_names": ["meta_ID", "src_names", "significance", "ra", "dec"],
               "cat_column_list": [[0], ["Crab"], [20.0], [83.63], [22.01]],
               "cat_column_descr": [["meta_ID", "<i8"], ["src_names", "<U4"],
                                    ["significance", "<f8"], ["ra", "<f8"], ["dec", "<f8"]]}
    answer = run_analysis(local_dispatcher, instrument="empty", product_type="dummy",
                          query_type="Dummy", selected_catalog=json.dumps(catalog))
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["query_status"] == "done"


def test_async_job_driven_through_call_back(local_dispatcher, mmoda_token):
    token = mmoda_token("general")
    # A parameter unique to this test gives a fresh job id.
    query = dict(instrument="empty-async", product_type="dummy", query_type="Real",
                 token=token, src_name=f"harness-{time.time_ns()}")
    local_dispatcher.set_backend_status(None)
    first = run_analysis(local_dispatcher, **query).json()
    assert first["query_status"] == "submitted"
    job_id, session_id = first["job_monitor"]["job_id"], first["job_monitor"]["session_id"]
    poll = dict(query, query_status="submitted", job_id=job_id, session_id=session_id)
    try:
        assert run_analysis(local_dispatcher, **poll).json()["query_status"] == "submitted"

        local_dispatcher.call_back(job_id, session_id, message="step one")
        progress = run_analysis(local_dispatcher, **poll).json()
        assert progress["query_status"] == "progress"
        assert [r["message"] for r in progress["job_monitor"]["full_report_dict_list"]] == [
            "step one"]

        local_dispatcher.finish_job(job_id, session_id)
        assert run_analysis(local_dispatcher, **poll).json()["query_status"] == "ready"
        done = run_analysis(local_dispatcher, **dict(poll, query_status="ready")).json()
        assert done["query_status"] == "done"
        assert done["exit_status"]["status"] == 0
    finally:
        local_dispatcher.set_backend_status(None)


def test_server_log_is_captured_without_tokens(local_dispatcher, mmoda_token):
    token = mmoda_token("general")
    run_analysis(local_dispatcher, instrument="empty", product_type="dummy",
                 query_type="Dummy", token=token)
    log = local_dispatcher.log_text()
    assert "run_analysis" in log or "instr-list" in log
    assert token not in log
    assert redact_tokens(f"a {token} b") == "a <token> b"


def test_second_dispatcher_reuses_the_venv_and_stops_cleanly(local_dispatcher):
    marker = local_dispatcher.venv_dir / ".provisioned"
    installed_at = marker.stat().st_mtime_ns
    with LocalDispatcher(server=local_dispatcher.server, venv_dir=local_dispatcher.venv_dir) as other:
        assert other.url != local_dispatcher.url
        workdir, process = other.workdir, other._process
        assert requests.get(f"{other.url}/api/instr-list", params={"instrument": "mock"},
                            timeout=30).status_code == 200
        assert "LocalDispatcher" in repr(other) and "running" in repr(other)
    assert marker.stat().st_mtime_ns == installed_at  # no second installation
    assert process.poll() is not None
    assert not workdir.exists()
    # the session's server is untouched
    assert local_dispatcher.running
