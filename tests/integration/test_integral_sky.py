"""The synthetic INTEGRAL sky, served by the real dispatcher with its INTEGRAL plugins.

The files and stand-ins alone are tested in ``tests/testing/sky/``.

The server tests use plain ``requests`` and decode products here, independently
of the client: they prove what the test sky offers to the client's tests.
"""
import base64
import importlib
import io
import json
import pickle
import time
import uuid

import numpy as np
import pytest
import requests

from astroquery_mmoda.testing import sky
from astroquery_mmoda.testing.sky import (
    DEFAULT_DETECTION_THRESHOLD, ISGRI_OBSERVATION, JEMX_OBSERVATION, LIGHTCURVE_SCW, SUBMITTED_SCW, TEST_SKY,
    AcsService, DdaService, ReplayDispatcher, catalog_dict, multi_source_lightcurve_envelope, sky_sources,
    utc_to_ijd)

T1, T2 = "2003-03-15T23:27:40.0", "2003-03-16T00:03:15.0"
ISGRI_QUERY = dict(instrument="isgri", T1=T1, T2=T2, RA=257.815417, DEC=-41.593417, radius=15,
                   E1_keV=20, E2_keV=40, osa_version="OSA11.2")
JEMX_QUERY = dict(ISGRI_QUERY, instrument="jemx", E1_keV=3, E2_keV=35, jemx_num=2)
# Real mode of the 1.0 plugins knows OSA10.2 and OSA11.0 only (Dummy mode also takes OSA11.2).
REAL_OSA = "OSA10.2"


# -- decoding NumpyDataProduct without trusting arbitrary pickles --------------------

_ALLOWED_GLOBALS = {
    "numpy": {"ndarray", "dtype", "record", "chararray"},
    # astropy 8 (the current server) pickles numpy's chararray under this name
    "astropy.utils.compat.numpycompat": {"chararray"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.numeric": {"_frombuffer"},
    "astropy.io.fits.fitsrec": {"FITS_rec"},
    "astropy.io.fits.column": {"ColDefs", "Column", "_ColumnFormat", "_AsciiColumnFormat"},
}


class _ProductUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        if name not in _ALLOWED_GLOBALS.get(module, ()):
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "chararray":
            # The same class; numpy 2 warns when it is looked up as np.chararray.
            return np.char.chararray
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError:  # numpy < 2
            return getattr(importlib.import_module(module.replace("numpy._core", "numpy.core")), name)


def data_units(product):
    """``{name: [(header, data), ...]}`` of an encoded NumpyDataProduct."""
    units = {}
    for unit in product["data_unit_list"]:
        data = None
        if unit["binarys"]:
            data = _ProductUnpickler(io.BytesIO(base64.b64decode(unit["binarys"]))).load()
        units.setdefault(unit["name"], []).append((unit["header"], data))
    return units


def meta(product):
    value = product["meta_data"]
    return json.loads(value) if isinstance(value, str) else value


def run_analysis(dispatcher, token=None, **params):
    params.setdefault("query_status", "new")
    params.setdefault("api", "True")
    # A fresh job for each request: the dispatcher reuses jobs of identical requests.
    params.setdefault("src_name", f"sky-{uuid.uuid4().hex[:10]}")
    if token is not None:
        params["token"] = token
    answer = requests.get(f"{dispatcher.url}/run_analysis", params=params, timeout=120)
    assert answer.status_code == 200, answer.text[:1000]
    return answer.json()


def stand_in(dispatcher, kind):
    # The harness keeps the stand-ins it started with the server.
    return next(s for s in dispatcher._services if isinstance(s, kind))


@pytest.fixture(scope="module")
def token(integral_dispatcher):
    return integral_dispatcher.mint_token("general")


# -- the sky through the real dispatcher ----------------------------------------------


def server_test(func):
    """Mark a test that needs the dispatcher with the INTEGRAL plugins."""
    return pytest.mark.integration(pytest.mark.integral(func))


@server_test
def test_instrument_list_has_the_integral_instruments(integral_dispatcher):
    answer = requests.get(f"{integral_dispatcher.url}/api/instr-list", params={"instrument": "mock"},
                          timeout=30)
    assert answer.status_code == 200
    assert {"isgri", "jemx", "spi_acs"} <= set(answer.json())


@server_test
def test_isgri_image_mosaic_shows_the_sky(integral_dispatcher, token):
    body = run_analysis(integral_dispatcher, token, product_type="isgri_image", query_type="Dummy",
                        **ISGRI_QUERY)
    assert body["query_status"] == "done" and body["exit_status"]["status"] == 0
    (product,) = body["products"]["numpy_data_product_list"]
    assert product["name"] == "mosaic_image"
    assert meta(product)["instrument"] == "isgri"
    units = data_units(product)
    assert list(units) == ["PRIMARY", "GROUPING", "ISGR-MOSA-IMA"]
    images = {header["IMATYPE"]: data for header, data in units["ISGR-MOSA-IMA"]}
    assert list(images) == ["INTENSITY", "VARIANCE", "SIGNIFICANCE", "EXPOSURE"]
    header = units["ISGR-MOSA-IMA"][0][0]
    assert (header["CTYPE1"], header["CTYPE2"]) == ("RA---TAN", "DEC--TAN")
    assert (header["CRVAL1"], header["CRVAL2"]) == (ISGRI_OBSERVATION.ra, ISGRI_OBSERVATION.dec)
    assert header["MJDREF"] == 51544.0 and header["TSTART"] == pytest.approx(ISGRI_OBSERVATION.tstart)
    for source in sky_sources("isgri"):
        x, y = source.pixel
        assert images["SIGNIFICANCE"][y, x] == pytest.approx(source.significance, rel=1e-5)
        assert images["INTENSITY"][y, x] == pytest.approx(source.rate, rel=1e-5)
    assert np.all(images["EXPOSURE"] > 0) and np.all(images["VARIANCE"] > 0)
    # away from the sources, the significance map is noise
    assert abs(float(np.median(images["SIGNIFICANCE"]))) < 0.1


@server_test
@pytest.mark.parametrize("threshold", [None, 5.0, 10.0])
def test_isgri_catalog_is_the_sky_above_the_threshold(integral_dispatcher, token, threshold):
    extra = {} if threshold is None else {"detection_threshold": threshold}
    body = run_analysis(integral_dispatcher, token, product_type="isgri_image", query_type="Dummy",
                        **ISGRI_QUERY, **extra)
    catalog = body["products"]["catalog"]
    table = dict(zip(catalog["cat_column_names"], catalog["cat_column_list"]))
    expected = sky_sources("isgri", min_significance=threshold or DEFAULT_DETECTION_THRESHOLD)
    assert table["src_names"] == [s.name for s in expected]
    assert table["ra"] == [s.ra for s in expected] and table["dec"] == [s.dec for s in expected]
    assert table["significance"] == pytest.approx([s.significance for s in expected])
    assert table["NEW_SOURCE"] == [1 if s.new else -32768 for s in expected]
    assert (catalog["cat_frame"], catalog["cat_lon_name"], catalog["cat_lat_name"]) == ("fk5", "ra", "dec")
    if threshold is None:
        # a client keeping "significance >= 8, no NEW" drops more than the server did
        kept = [n for n, s, new in zip(table["src_names"], table["significance"], table["NEW_SOURCE"])
                if s >= 8 and new != 1]
        assert kept == ["4U 1700-377", "OAO 1657-415", "GX 349+2", "GX 354-0"]
        assert len(table["src_names"]) == 6


@server_test
def test_selected_catalog_replaces_the_image_catalog(integral_dispatcher, token):
    chosen = catalog_dict("isgri", min_significance=12)
    body = run_analysis(integral_dispatcher, token, product_type="isgri_image", query_type="Dummy",
                        selected_catalog=json.dumps(chosen), **ISGRI_QUERY)
    catalog = body["products"]["catalog"]
    assert catalog["cat_column_list"][1] == ["4U 1700-377", "OAO 1657-415", "GX 349+2"]


@server_test
def test_isgri_spectrum_gives_three_products_per_source(integral_dispatcher, token):
    body = run_analysis(integral_dispatcher, token, product_type="isgri_spectrum", query_type="Dummy",
                        **ISGRI_QUERY)
    assert body["query_status"] == "done"
    products = body["products"]["numpy_data_product_list"]
    by_source = {}
    for product in products:
        info = meta(product)
        by_source.setdefault(info["src_name"], {})[info["product"]] = data_units(product)
    assert set(by_source) == {s.name for s in sky_sources("isgri")}
    assert len(products) == 3 * len(by_source)
    for source in sky_sources("isgri"):
        parts = by_source[source.name]
        assert set(parts) == {"isgri_spectrum", "isgri_arf", "isgri_rmf"}
        ((header, spectrum),) = parts["isgri_spectrum"]["ISGR-EVTS-SPE"]
        assert header["NAME"] == source.name and header["DETCHANS"] == 62 and header["EXPOSURE"] > 0
        assert len(spectrum) == 62
        ((arf_header, arf),) = parts["isgri_arf"]["SPECRESP"]
        assert len(arf) == 150 and arf_header["HDUCLAS2"] == "SPECRESP"
        assert arf.columns["SPECRESP"].unit == "cm**2" and arf["SPECRESP"].max() > 500
        ((_, matrix),) = parts["isgri_rmf"]["SPECRESP MATRIX"]
        ((_, ebounds),) = parts["isgri_rmf"]["EBOUNDS"]
        assert matrix["MATRIX"].shape == (150, 62) and len(ebounds) == 62
        assert ebounds["E_MIN"][0] == pytest.approx(13.0) and ebounds["E_MAX"][-1] == pytest.approx(1000.0)
        centres = np.sqrt(ebounds["E_MIN"] * ebounds["E_MAX"])
        band = (centres >= 20) & (centres <= 40)
        error = np.sqrt(np.sum(spectrum["STAT_ERR"][band] ** 2))
        assert abs(spectrum["RATE"][band].sum() - source.rate) < 5 * error


@server_test
def test_isgri_light_curve(integral_dispatcher, token):
    body = run_analysis(integral_dispatcher, token, product_type="isgri_lc", query_type="Dummy",
                        time_bin=100, **ISGRI_QUERY)
    assert body["query_status"] == "done"
    (product,) = body["products"]["numpy_data_product_list"]
    brightest = max(sky_sources("isgri"), key=lambda s: s.significance)
    info = meta(product)
    assert product["name"] == "isgri_lc"
    assert (info["src_name"], info["time"], info["rate"], info["rate_err"]) == (
        brightest.name, "TIME", "RATE", "ERROR")
    ((header, lc),) = data_units(product)["ISGR-SRC.-LCR"]
    assert info["time_bin"] == pytest.approx(header["TIMEDEL"]) == pytest.approx(100 / 86400)
    assert header["XAX_E"] == pytest.approx(header["TIMEDEL"] / 2)
    assert (header["MJDREF"], header["TIMESYS"], header["TIMEUNIT"]) == (51544.0, "TT", "d")
    assert ISGRI_OBSERVATION.tstart < lc["TIME"].min() < lc["TIME"].max() < ISGRI_OBSERVATION.tstop
    empty = lc["FRACEXP"] == 0
    assert empty.sum() >= 2 and np.all(np.isnan(lc["RATE"][empty]))
    rate, error = lc["RATE"][~empty], lc["ERROR"][~empty]
    mean = np.average(rate, weights=error ** -2.0)
    assert abs(mean - brightest.rate) < 4 * np.sum(error ** -2.0) ** -0.5 + 0.3 * brightest.rate


@server_test
def test_jemx_image_spectrum_and_light_curve(integral_dispatcher, token, server_expects):
    crab = next(s for s in TEST_SKY if s.name == "Crab")
    image = run_analysis(integral_dispatcher, token, product_type="jemx_image", query_type="Dummy",
                         **JEMX_QUERY)
    (mosaic,) = image["products"]["numpy_data_product_list"]
    images = {h["IMATYPE"]: d for h, d in data_units(mosaic)["JMX2-MOSA-IMA"]}
    assert list(images) == ["RECONSTRUCTED", "VARIANCE", "RECON_SIG", "EXPOSURE"]
    x, y = crab.pixel
    assert images["RECON_SIG"][y, x] == pytest.approx(crab.significance, rel=1e-5)
    assert image["products"]["catalog"]["cat_column_list"][1] == ["Crab"]
    low = run_analysis(integral_dispatcher, token, product_type="jemx_image", query_type="Dummy",
                       detection_threshold=5, **JEMX_QUERY)
    assert low["products"]["catalog"]["cat_column_list"][1] == ["Crab", "A 0535+26"]

    spectrum = run_analysis(integral_dispatcher, token, product_type="jemx_spectrum", query_type="Dummy",
                            **JEMX_QUERY)
    products = spectrum["products"]["numpy_data_product_list"]
    assert [meta(p)["product"] for p in products] == ["jemx_spectrum", "jemx_arf", "jemx_rmf"]
    assert {meta(p)["src_name"] for p in products} == {"Crab"}
    assert set(data_units(products[2])) == {"PRIMARY", "SPECRESP MATRIX", "EBOUNDS"}
    ((header, pha),) = data_units(products[0])["JMX2-PHA1-SPE"]
    assert header["DETCHANS"] == len(pha) == 32

    light_curve = run_analysis(integral_dispatcher, token, product_type="jemx_lc", query_type="Dummy",
                               time_bin=20, **JEMX_QUERY)
    (product,) = light_curve["products"]["numpy_data_product_list"]
    assert product["name"] == "jemx_lc"
    assert meta(product)["src_name"] == server_expects("jemx_lc_source_name")  # the plugin's name
    ((header, lc),) = data_units(product)["JMX2-SRC.-LCR"]
    assert header["NAME"] == "Crab"
    assert JEMX_OBSERVATION.tstart < lc["TIME"].min() and lc["TIME"].max() < JEMX_OBSERVATION.tstop
    assert np.mean(lc["RATE"]) == pytest.approx(crab.rate, rel=0.05)
    assert np.all(lc["BARYTIME"] != lc["TIME"])


@server_test
def test_spi_acs_real_light_curve_from_the_stand_in(integral_dispatcher, token, server_expects):
    acs = stand_in(integral_dispatcher, AcsService)
    before = acs.requests_served
    body = run_analysis(integral_dispatcher, token, instrument="spi_acs", product_type="spi_acs_lc",
                        query_type="Real", RA=255.986542, DEC=-37.844167, T1="2003-03-15T23:27:40.0",
                        T2="2003-03-15T23:32:40.0", time_bin=2)
    assert body["query_status"] == "done", body["exit_status"]
    assert acs.requests_served > before
    (product,) = body["products"]["numpy_data_product_list"]
    assert meta(product) == {"src_name": "query", "time_bin": 2.0, "time": "TIME", "rate": "RATE",
                             "rate_err": "ERROR"}
    ((header, lc),) = data_units(product)["RATE"]
    assert lc.dtype.names == ("TIME", "RATE", "ERROR") and len(lc) == 150
    assert header["MJDREF"] == 51544.0 and header["TIMEDEL"] == 2.0 and header["TIMESYS"] == "TT"
    # TSTART is the start of T1, counted in TT seconds from IJD 0
    assert header["TSTART"] / 86400 == pytest.approx(utc_to_ijd("2003-03-15T23:27:40"), abs=1e-6)
    background = np.median(lc["RATE"])
    # About 3200 counts per 50 ms bin; the 1.0 plugin divides by the bin width twice.
    assert background == pytest.approx(3200 / 0.05 * server_expects("spi_acs_rate_factor"), rel=0.05)
    burst_time, amplitude, _, _ = sky.ACS_BURSTS[0]
    peak = np.argmax(lc["RATE"])
    peak_ijd = (header["TIMEZERO"] + lc["TIME"][peak]) / 86400
    assert abs(peak_ijd - utc_to_ijd(burst_time)) * 86400 < 2.5
    assert lc["RATE"][peak] - background > 20 * lc["ERROR"][peak]


@server_test
def test_spi_acs_before_launch_fails_with_the_plugin_message(integral_dispatcher, token,
                                                             server_expects):
    body = run_analysis(integral_dispatcher, token, instrument="spi_acs", product_type="spi_acs_lc",
                        query_type="Real", RA=255.986542, DEC=-37.844167, T1="2001-03-15T23:27:40.0",
                        T2="2001-03-15T23:32:40.0", time_bin=2)
    assert body["query_status"] == "failed"
    assert body["exit_status"]["status"] == 1
    assert body["exit_status"]["message"] == server_expects("spi_acs_no_data_message")
    reason = body["exit_status"][server_expects("plugin_error_field")]
    assert "no usable data found for this time interval" in reason
    assert "NoData" in reason


@server_test
def test_isgri_real_mode_fails_quickly_with_the_dda_message(integral_dispatcher, token, record_property):
    dda = stand_in(integral_dispatcher, DdaService)
    started = time.perf_counter()
    body = run_analysis(integral_dispatcher, token, product_type="isgri_image", query_type="Real",
                        scw_list=ISGRI_OBSERVATION.scw_id, **dict(ISGRI_QUERY, osa_version=REAL_OSA))
    record_property("isgri_real_failure_s", round(time.perf_counter() - started, 2))
    assert body["query_status"] == "failed"
    assert body["exit_status"]["message"] == "failed: isgri_image"
    error = body["exit_status"]["error_message"]
    assert error.startswith("DDAException('AnalysisException:") and "mosaic_ii_skyimage" in error
    assert "mosaic_ii_skyimage" in dda.targets


@server_test
def test_isgri_real_mode_stays_submitted_for_the_special_scw(integral_dispatcher, token):
    query = dict(ISGRI_QUERY, osa_version=REAL_OSA, product_type="isgri_image", query_type="Real",
                 scw_list=SUBMITTED_SCW, src_name=f"sky-{uuid.uuid4().hex[:10]}")
    first = run_analysis(integral_dispatcher, token, **query)
    assert first["query_status"] == "submitted" and first["exit_status"]["status"] == 0
    assert first["products"]["input_prod_list"] == [SUBMITTED_SCW]
    monitor = first["job_monitor"]
    poll = run_analysis(integral_dispatcher, token, query_status="submitted", job_id=monitor["job_id"],
                        session_id=monitor["session_id"], **query)
    assert poll["query_status"] == "submitted"
    assert poll["job_monitor"]["job_id"] == monitor["job_id"]


# -- several light curves in the public shape -------------------------------------------


def real_light_curves(dispatcher, token, **extra):
    return run_analysis(dispatcher, token, product_type="isgri_lc", query_type="Real",
                        scw_list=LIGHTCURVE_SCW, **dict(ISGRI_QUERY, osa_version=REAL_OSA, **extra))


@server_test
def test_isgri_real_mode_gives_one_light_curve_per_catalog_source(integral_dispatcher, token):
    chosen = catalog_dict("isgri", min_significance=12)
    body = real_light_curves(integral_dispatcher, token, time_bin=200, selected_catalog=json.dumps(chosen))
    assert body["query_status"] == "done", body["exit_status"]
    products = body["products"]["numpy_data_product_list"]
    assert [meta(p)["src_name"] for p in products] == chosen["cat_column_list"][1]
    for product in products:
        assert product["name"] == "isgri_lc"
        assert meta(product)["time_bin"] == pytest.approx(200 / 86400)
        ((header, lc),) = data_units(product)["ISGR-SRC.-LCR"]
        assert len(lc) == 10 and header["NAME"] == meta(product)["src_name"]


@pytest.fixture(scope="module")
def envelope(integral_dispatcher, token):
    return multi_source_lightcurve_envelope(token=token, venv_dir=integral_dispatcher.venv_dir,
                                            server=integral_dispatcher.server)


@server_test
def test_multi_source_envelope_has_the_public_shape(envelope, integral_dispatcher, token):
    expected = sky_sources("isgri", min_significance=DEFAULT_DETECTION_THRESHOLD)
    assert envelope["query_status"] == envelope["job_status"] == "done"
    assert envelope["exit_status"]["status"] == 0
    products = envelope["products"]
    assert envelope["job_monitor"]["job_id"] == products["job_id"]
    assert envelope["session_id"] == products["session_id"] == envelope["job_monitor"]["session_id"]
    assert products["analysis_parameters"]["token"] == token  # echoed, as the server does
    assert token in products["api_code"]
    light_curves = products["numpy_data_product_list"]
    assert [meta(p)["src_name"] for p in light_curves] == [s.name for s in expected]
    for product, source in zip(light_curves, expected):
        info = meta(product)
        assert product["name"] == "isgri_lc"
        assert (info["time"], info["rate"], info["rate_err"]) == ("TIME", "RATE", "ERROR")
        assert info["time_bin"] == pytest.approx(100 / 86400)
        ((header, lc),) = data_units(product)["ISGR-SRC.-LCR"]
        assert header["NAME"] == source.name and len(lc) == 20

    # the server's own answer for these sources: the same products, the same envelope keys
    served = real_light_curves(integral_dispatcher, token, time_bin=100)
    assert set(served) <= set(envelope) and set(served["products"]) <= set(products)
    served_products = served["products"]["numpy_data_product_list"]
    assert len(served_products) == len(light_curves)
    for theirs, ours in zip(served_products, light_curves):
        assert theirs["name"] == ours["name"] and meta(theirs) == meta(ours)
        assert [u["name"] for u in theirs["data_unit_list"]] == [u["name"] for u in ours["data_unit_list"]]
        ((their_header, their_lc),) = data_units(theirs)["ISGR-SRC.-LCR"]
        ((our_header, our_lc),) = data_units(ours)["ISGR-SRC.-LCR"]
        assert their_header == our_header
        assert their_lc.dtype.names == our_lc.dtype.names
        for column in our_lc.dtype.names:
            np.testing.assert_array_equal(their_lc[column], our_lc[column])


@server_test
def test_replay_dispatcher_serves_the_envelope(envelope):
    submitted = dict(envelope, query_status="submitted", job_status="submitted")
    with ReplayDispatcher([submitted, envelope], routes={"/api/instr-list": ["isgri"]}) as replay:
        assert replay.url.startswith("http://127.0.0.1:")
        first = requests.get(f"{replay.url}/run_analysis", params={"instrument": "isgri"}, timeout=30)
        second = requests.post(f"{replay.url}/run_analysis", data={"query_status": "submitted"}, timeout=30)
        third = requests.get(f"{replay.url}/run_analysis", timeout=30)
        assert first.json()["query_status"] == "submitted"
        assert second.json() == third.json() == json.loads(json.dumps(envelope))
        assert replay.requests[:2] == [{"instrument": "isgri"}, {"query_status": "submitted"}]
        assert requests.get(f"{replay.url}/api/instr-list", timeout=30).json() == ["isgri"]
        assert requests.get(f"{replay.url}/elsewhere", timeout=30).status_code == 404
        assert replay.requests_served == 5
