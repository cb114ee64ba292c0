"""The core client against the real local dispatcher: wire encoding, jobs, errors, metadata."""
import threading
import time

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

from astroquery_mmoda import conf
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import (InvalidQueryError, JobFailedError, LoginError,
                                         TimeoutError, TokenExpiredError)
from astroquery_mmoda.jobs import Job
from astroquery_mmoda.protocol import MmodaWarning

pytestmark = pytest.mark.integration


@pytest.fixture
def client(local_dispatcher):
    return MmodaClass(server=local_dispatcher.url)


@pytest.fixture
def user(client, mmoda_token):
    client.login(mmoda_token("general"))
    return client


@pytest.fixture
def fast_polls():
    with conf.set_temp("poll_interval", 0.05), conf.set_temp("poll_max", 0.2):
        yield


def unique():
    """A parameter value that gives a fresh job id."""
    return f"test-{time.time_ns()}"


def echo(client, **params):
    """Send through the echo product; the server answers what it parsed."""
    products = client.get_product("empty", "echo", allow_unknown_args=True, **params)
    return products.analysis_parameters


# -- metadata ------------------------------------------------------------------------

def test_instruments_and_products(client, server_expects):
    assert {"empty", "empty-async", "empty-semi-async"} <= set(client.list_instruments())
    assert client.list_products("empty") == server_expects("empty_products")


def test_instrument_names_match_without_case_and_misspelt_ones_get_a_hint(user):
    client = user
    assert client.list_products("EMPTY") == client.list_products("empty")
    assert client.get_parameters("Empty_Async", "dummy").meta["instrument"] == "empty-async"
    products = client.get_product("EMPTY", "numerical", query_type="Dummy", p=5, cache=False)
    assert len(products) >= 1
    with pytest.raises(InvalidQueryError, match=r"no instrument 'emptyy' \(did you mean 'empty'"):
        client.list_products("emptyy")
    with pytest.raises(InvalidQueryError, match=r"no instrument 'isgri'.*list_instruments"):
        client.get_product("isgri", "isgri_image", query_type="Dummy")


def test_oda_api_par_dict_is_taken_as_it_is(client, mmoda_token):
    token = mmoda_token("general")
    par_dict = {"instrument": "empty", "product": "numerical", "product_type": "Dummy", "p": "5",
                "session_id": "ABCDEFGHIJKLMNOP", "query_status": "new", "token": token}
    with pytest.warns(MmodaWarning, match="left out .*: session_id, query_status"):
        request = client.from_oda_api(par_dict)
    assert request == {"instrument": "empty", "product": "numerical", "query_type": "Dummy", "p": "5"}
    assert client._tokens.token == token  # logged in with the par_dict's token
    assert len(client.get_product(**request, cache=False)) >= 1
    echo = client.from_oda_api({"instrument": "empty", "product": "echo", "product_type": "Real",
                                "T1": "52713.0", "T2": "52714.0", "T_format": "mjd",
                                "allow_unknown_args": True})
    sent = client.get_product(**echo, cache=False).analysis_parameters
    assert str(sent["T1"]).startswith("2003-03-15T00:00:00")  # MJD 52713.0, read by the server
    with pytest.raises(InvalidQueryError, match="product_type \\(the query type\\) must be one of"):
        client.from_oda_api({"instrument": "empty", "product": "numerical", "product_type": "isgri_image"})


def test_product_description_prints_the_parameters(client, capsys):
    client.get_product_description("EMPTY", "numerical")
    out = capsys.readouterr().out
    assert out.startswith("parameters of the empty product numerical (")
    assert "\np " in out or " p " in out


def test_the_token_can_be_read_for_use_elsewhere(client, mmoda_token):
    with pytest.raises(LoginError, match="not logged in"):
        client.get_token()
    token = mmoda_token("general")
    client.login(token)
    assert client.get_token() == token


def test_parameters_table(client, server_expects):
    table = client.get_parameters("empty", "numerical")
    assert list(table.colnames) == ["name", "default", "unit", "type", "query", "allowed_values",
                                    "min", "max", "optional"]
    rows = {row["name"]: row for row in table}
    assert {"RA", "DEC", "T1", "T2", "p"} <= set(rows)
    assert "token" not in rows
    assert rows["p"]["default"] == 10.0 and rows["p"]["unit"] == "W"
    assert rows["RA"]["unit"] == "deg"
    assert {name: rows[name]["type"] for name in ("RA", "T1", "p")} == \
        server_expects("parameter_types_of_empty_numerical")
    assert table.meta["instrument"] == "empty"
    # another product's parameter is not listed
    assert "sb" not in rows


def test_unknown_instrument_product_and_parameter(client):
    with pytest.raises(InvalidQueryError, match="nosuch"):
        client.list_products("nosuch")
    with pytest.raises(InvalidQueryError, match="did you mean 'numerical'"):
        client.get_product("empty", "numerica")
    with pytest.raises(InvalidQueryError, match=r"no parameter 'pp'.*did you mean 'p'"):
        client.get_product("empty", "numerical", query_type="Dummy", pp=3)


def test_bad_arguments_send_nothing(client, monkeypatch):
    client.list_products("empty")  # fill the metadata cache
    sent = []
    monkeypatch.setattr(client._session, "request",
                        lambda *a, **k: sent.append(a) or pytest.fail("a request was sent"))
    for call in (lambda: client.get_product("empty", "numerical", query_type="Fake"),
                 lambda: client.get_product("empty", "numerical", token="x"),
                 lambda: client.get_product("empty", "numerical", pp=1),
                 lambda: client.get_product("empty", "echo", ang=3 * u.keV),
                 lambda: client.get_product("empty", "echo", ang=float("nan")),
                 lambda: client.get_product("", "echo")):
        with pytest.raises(InvalidQueryError):
            call()
    assert sent == []


# -- the wire encoding, as the server parses it ------------------------------------------

def test_encoding_rules_seen_by_the_server(user, server_expects):
    parsed = echo(user, src_name=unique(), flag=True, off=False, nothing=None, numbers=[1, 2.5],
                  mapping={"a": 1}, scw_list=["066500220010.001", "066500230010.001"],
                  catalog_selected_objects=[1, 2], energ=3, validate=False)
    assert parsed["flag"] == "True" and parsed["off"] == "False"
    assert parsed["nothing"] == server_expects("echo_of_none")
    # sent as JSON texts; 1.3.6 echoes what it decoded from them
    assert parsed["numbers"] == server_expects("echo_of_numbers")
    assert parsed["mapping"] == server_expects("echo_of_mapping")
    # one comma-separated value, which the server splits into the list
    assert parsed["scw_list"] == ["066500220010.001", "066500230010.001"]
    assert parsed["catalog_selected_objects"] == "1,2"
    assert parsed["energ"] == 3.0 * server_expects("echo_of_energ_per_MeV")
    assert "token" not in parsed


def test_astropy_values_are_converted_to_the_parameters_units(user, server_expects):
    parsed = echo(user, src_name=unique(), ang=2 * u.arcmin, energ=500 * u.keV,
                  T1=Time(58193.455, format="mjd", scale="tt"), T2="2020-01-02T00:00:00")
    assert parsed["ang"] == pytest.approx(120.0)  # arcmin -> the parameter's arcsec
    # keV -> the parameter's MeV (which 1.3.6 echoes back in keV)
    assert parsed["energ"] == pytest.approx(0.5 * server_expects("echo_of_energ_per_MeV"))
    assert parsed["T1"] == Time(58193.455, format="mjd", scale="tt").utc.isot


def test_large_requests_use_post(user, monkeypatch):
    methods = []
    original = user._session.request
    monkeypatch.setattr(user._session, "request",
                        lambda method, *a, **k: methods.append(method) or original(method, *a, **k))
    long_name = "x" * 1500
    parsed = echo(user, src_name=long_name)
    assert parsed["src_name"] == long_name
    assert methods[-1] == "POST"
    echo(user, src_name=unique())
    assert methods[-1] == "GET"


def test_get_query_payload_sends_nothing(client, monkeypatch):
    monkeypatch.setattr(client._session, "request", lambda *a, **k: pytest.fail("request sent"))
    payload = client.get_product("empty", "numerical", query_type="Dummy", p=5,
                                 T1=Time("2020-01-01T00:00:00", scale="tt"),
                                 get_query_payload=True)
    assert payload == {"instrument": "empty", "product_type": "numerical",
                       "query_type": "Dummy", "query_status": "new", "api": "True",
                       "p": "5", "T1": "2019-12-31T23:58:50.816"}


# -- products ------------------------------------------------------------------------

def test_numerical_product_decodes_to_hdulist(user):
    products = user.get_product("empty", "numerical", query_type="Dummy", p=5)
    assert len(products) == 1
    (name, hdul), = products.items()
    assert isinstance(hdul, fits.HDUList)
    data = hdul[0].data if hdul[0].data is not None else hdul[1].data
    assert data.shape == (100, 100) and data.dtype == np.float64
    assert products.job_id
    assert "token" not in (products.analysis_parameters or {})


def test_roles_and_tokens(client, mmoda_token):
    with pytest.raises(LoginError, match="general"):
        client.get_product("empty", "numerical", query_type="Dummy", p=5)
    client.login(mmoda_token("general"))
    with pytest.raises(LoginError, match="unige-hpc-full"):
        client.get_product("empty", "numerical", query_type="Dummy", p=60)
    client.login(mmoda_token("general,unige-hpc-full"))
    assert len(client.get_product("empty", "numerical", query_type="Dummy", p=60)) == 1


def test_token_expired_on_the_server_side(client, mmoda_token):
    token = mmoda_token(expires_in=2)
    client.login(token)
    time.sleep(2.5)
    with pytest.raises(TokenExpiredError, match="expired") as error:
        client.get_product("empty", "dummy", query_type="Dummy", src_name=unique())
    assert token not in str(error.value)


def test_out_of_range_is_the_servers_message(user):
    with pytest.raises(InvalidQueryError, match="restricted to 800"):
        user.get_product("empty", "numerical", query_type="Dummy", p=900)


def test_failing_job(user, server_expects):
    with pytest.raises(JobFailedError, match=server_expects("failing_job_reason")) as error:
        user.get_product("empty", "failing", query_type="Dummy")
    assert error.value.job_id


# -- asynchronous jobs -------------------------------------------------------------------

def test_async_job_from_submit_to_products(user, backend, fast_polls, caplog):
    job = user.submit("empty-async", "dummy", src_name=unique())
    assert isinstance(job, Job)
    assert job.status == "submitted" and job.job_id and len(job.session_id) == 16
    assert job.update() == "submitted"
    backend.call_back(job.job_id, job.session_id, message="half way", node_id="n1")
    assert job.update() == "progress"
    assert [r["message"] for r in job.reports] == ["half way"]
    assert all("token" not in r for r in job.reports)

    timer = threading.Timer(0.5, backend.finish_job, (job.job_id, job.session_id))
    timer.start()
    with caplog.at_level("INFO", logger="astroquery"):
        with pytest.warns(UserWarning, match="mock comment"):
            products = job.wait(timeout=30).result()
    timer.join()
    assert job.status == "done"
    assert products.job_id == job.job_id
    assert any(job.job_id in r.message and "done" in r.message for r in caplog.records)


def test_wait_times_out_and_resumes(user, backend, fast_polls, mmoda_token):
    params = dict(src_name=unique())
    job = user.submit("empty-async", "dummy", **params)
    with pytest.raises(TimeoutError, match=job.job_id) as error:
        job.wait(timeout=0.3)
    assert error.value.job_id == job.job_id and error.value.session_id == job.session_id

    # A new client object (e.g. after a kernel restart) resumes the same job.
    other = MmodaClass(server=user.server)
    other.login(user._tokens.token)
    resumed = other.get_job(job.job_id, job.session_id, instrument="empty-async",
                            product="dummy", **params)
    assert resumed.job_id == job.job_id and resumed.status == "submitted"
    backend.finish_job(job.job_id, job.session_id)
    with pytest.warns(UserWarning, match="mock comment"):
        resumed.wait(timeout=30)
    assert resumed.status == "done"


def test_semi_async_failure(user, fast_polls):
    with pytest.raises(JobFailedError):
        user.get_product("empty-semi-async", "numerical", p=-1, src_name=unique())


# -- issue 15: values both servers refuse, fresh sessions, file uploads ----------------------

def test_get_query_payload_with_quantities_in_a_fresh_session(local_dispatcher, tmp_path, monkeypatch):
    client = MmodaClass(server=local_dispatcher.url)
    client.cache_location = tmp_path  # no stored description either
    sent = []
    original = client._session.request
    monkeypatch.setattr(client._session, "request",
                        lambda method, url, *a, **k: sent.append(url) or original(method, url, *a, **k))
    payload = client.get_product("empty", "echo", ang=2 * u.arcmin, get_query_payload=True)
    assert payload["ang"] == "120.0"  # in the parameter's arcsec
    assert sent and not any("run_analysis" in url for url in sent)  # the description only


def test_selected_catalog_none_is_not_sent(user):
    assert user.get_product("empty", "numerical", p=5, selected_catalog=None, query_type="Dummy",
                            get_query_payload=True) == {
        "p": "5", "instrument": "empty", "product_type": "numerical", "query_type": "Dummy",
        "query_status": "new", "api": "True"}
    # sent, the explicit-empty marker is refused (HTTP 400) by both servers
    products = user.get_product("empty", "numerical", p=5, selected_catalog=None, query_type="Dummy")
    assert list(products) == ["numerical"]


def _catalog_file(path):
    from astropy.table import Table

    catalog = Table({"src_names": ["Crab", "Vela X-1"], "ra": [83.63, 135.53], "dec": [22.01, -40.55],
                     "significance": [80.0, 20.0]})
    catalog["ra"].unit = catalog["dec"].unit = u.deg
    catalog.meta.update(FRAME="fk5", LON_NAME="ra", LAT_NAME="dec", COORD_UNIT="deg")
    catalog.write(path, format="ascii.ecsv")
    return path


@pytest.mark.parametrize("as_file_object", [False, True])
def test_file_parameters_are_uploaded(user, tmp_path, as_file_object):
    import json

    path = _catalog_file(tmp_path / "sources.ecsv")
    value = open(path, "rb") if as_file_object else path
    try:
        parsed = user.get_product("empty", "numerical", p=5, query_type="Dummy", src_name=unique(),
                                  user_catalog_file=value).analysis_parameters
    finally:
        if as_file_object:
            value.close()
    # the server read the uploaded catalog and made the selected catalog of it
    selected = json.loads(parsed["selected_catalog"])
    assert selected["cat_column_list"][selected["cat_column_names"].index("src_names")] == \
        ["Crab", "Vela X-1"]
    assert "user_catalog_file" not in parsed


def test_uploads_in_payloads_and_cache_keys(user, tmp_path):
    path = _catalog_file(tmp_path / "sources.ecsv")
    payload = user.get_product("empty", "echo", user_catalog_file=path, get_query_payload=True)
    assert str(payload["user_catalog_file"]).startswith("<file sources.ecsv sha256:")
    with pytest.raises(InvalidQueryError, match="cannot read the file .*nosuch.ecsv"):
        user.get_product("empty", "echo", user_catalog_file=tmp_path / "nosuch.ecsv")
