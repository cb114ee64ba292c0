"""The tutorial, end to end, against the real dispatcher running the real INTEGRAL plugins."""
import json
import uuid
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.timeseries import TimeSeries
from astropy.wcs import WCS, FITSFixedWarning

from astroquery_mmoda import conf
from astroquery_mmoda.exceptions import InvalidQueryError, JobFailedError, NoDataError
from astroquery_mmoda.integral import LightCurveSet, SpectrumSet, select_sources
from astroquery_mmoda.testing.integral_sky import (
    DEFAULT_DETECTION_THRESHOLD, DUMMY_FOLDER, ISGRI_OBSERVATION, JEMX_OBSERVATION, LIGHTCURVE_SCW,
    sky_sources)
from tests.client_helpers import logged_in_client

pytestmark = [pytest.mark.integration, pytest.mark.integral]

ISGRI_FIELD = SkyCoord(ISGRI_OBSERVATION.ra, ISGRI_OBSERVATION.dec, unit="deg")
CRAB = SkyCoord(83.63308, 22.01450, unit="deg")
ISGRI_TIMES = dict(start_time=Time(ISGRI_OBSERVATION.start),
                   end_time=Time(ISGRI_OBSERVATION.end))
JEMX_TIMES = dict(start_time=JEMX_OBSERVATION.start, end_time=JEMX_OBSERVATION.end)


@pytest.fixture(scope="module")
def mmoda(integral_dispatcher, tmp_path_factory):
    return logged_in_client(integral_dispatcher, tmp_path_factory.mktemp("mmoda-cache"))


@pytest.fixture
def requests_sent(mmoda, monkeypatch):
    sent = []
    original = mmoda._session.request
    monkeypatch.setattr(mmoda._session, "request",
                        lambda method, url, *a, **k: sent.append(url) or original(method, url, *a, **k))
    return sent


@pytest.fixture(scope="module")
def catalog(mmoda):
    return mmoda.query_region(ISGRI_FIELD, 8 * u.deg, **ISGRI_TIMES, max_pointings=10,
                              osa_version="OSA11.2", query_type="Dummy")


def test_spi_acs_light_curve_has_a_correct_time_axis(mmoda):
    start = Time("2003-03-15T23:27:40", scale="utc")
    curves = mmoda.get_lightcurve("255.98654 -37.84414", start_time=start,
                                  end_time=start + 300 * u.s, instrument="spi_acs",
                                  time_bin=2 * u.s)
    assert isinstance(curves, LightCurveSet) and list(curves) == ["SPI-ACS"]
    series = curves["SPI-ACS"]
    assert isinstance(series, TimeSeries) and len(series) == 150
    header = curves.hdulists["SPI-ACS"]["RATE"].header
    assert header["MJDREF"] == 51544
    # The first bin starts at TSTART (s after MJDREF, TT): the time axis agrees with the header.
    tstart = Time(51544, format="mjd", scale="tt") + header["TSTART"] * u.s
    first_start = series.time[0] - series["time_bin"][0] / 2
    assert abs((first_start - tstart).to_value(u.s)) < 1.01
    assert abs((series.time[0] - start).to_value(u.s)) < 2.01
    assert series["time_bin"].unit == u.s and np.allclose(series["time_bin"].value, 2.0)
    assert series["rate"].unit == u.ct / u.s and series["rate_err"].unit == u.ct / u.s
    # the burst of the test sky at 23:30:00 UTC is in the right bin
    peak = series.time[np.argmax(series["rate"])]
    assert abs((peak - Time("2003-03-15T23:30:00")).to_value(u.s)) < 3


def test_spi_acs_before_the_mission_has_no_data(mmoda):
    with pytest.raises(NoDataError, match="no usable data"):
        mmoda.get_lightcurve(CRAB, start_time="2001-03-15T23:27:40",
                             end_time="2001-03-15T23:32:40", instrument="spi_acs",
                             time_bin=2 * u.s)


def test_isgri_catalog(catalog):
    expected = sky_sources("isgri", min_significance=DEFAULT_DETECTION_THRESHOLD)
    assert isinstance(catalog, Table)
    assert list(catalog["src_names"]) == [s.name for s in expected]
    assert catalog["ra"].unit == u.deg and catalog["dec"].unit == u.deg
    np.testing.assert_allclose(catalog["ra"], [s.ra for s in expected], atol=1e-6)
    np.testing.assert_allclose(catalog["significance"], [s.significance for s in expected])
    for name in ("NEW_SOURCE", "ISGRI_FLAG", "FLAG", "ERR_RAD", "meta_ID"):
        assert name in catalog.colnames
    meta = catalog.meta
    assert meta["instrument"] == "isgri" and meta["job_id"]
    assert (meta["E1_keV"], meta["E2_keV"]) == (30.0, 80.0)
    assert meta["start_time"].startswith("2003-03-15T23:28:05")
    assert "token" not in str(meta)


def test_images_come_from_the_same_job(mmoda, catalog, requests_sent):
    images = mmoda.get_images(ISGRI_FIELD, 8 * u.deg, **ISGRI_TIMES, max_pointings=10,
                              osa_version="OSA11.2", query_type="Dummy")
    assert requests_sent == []  # no second submission: the finished job's answer is reused
    (mosaic,) = images
    assert isinstance(mosaic, fits.HDUList)
    assert [hdu.name for hdu in mosaic] == ["PRIMARY", "GROUPING"] + ["ISGR-MOSA-IMA"] * 4
    significance = [h for h in mosaic[2:] if h.header["IMATYPE"] == "SIGNIFICANCE"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # OSA mosaics' date keywords
        wcs = WCS(significance.header)
    brightest = catalog[np.argmax(catalog["significance"])]
    x, y = wcs.world_to_pixel(SkyCoord(brightest["ra"], brightest["dec"], unit="deg"))
    assert significance.data[int(round(float(y))), int(round(float(x)))] == \
        pytest.approx(brightest["significance"], rel=1e-3)


def test_filter_spectra_and_xspec_files(mmoda, catalog, tmp_path):
    chosen = select_sources(catalog, min_significance=8)
    assert list(chosen["src_names"]) == ["4U 1700-377", "OAO 1657-415", "GX 349+2", "GX 354-0"]
    spectra = mmoda.get_spectrum(ISGRI_FIELD, **ISGRI_TIMES, catalog=chosen, osa_version="OSA11.2",
                                 query_type="Dummy")
    assert isinstance(spectra, SpectrumSet)
    # Dummy mode serves the spectra of every source it has; the chosen ones are among them.
    assert set(chosen["src_names"]) <= set(spectra)
    paths = spectra["OAO 1657-415"].write(tmp_path)
    with fits.open(paths["spectrum"]) as spectrum, fits.open(paths["rmf"]) as rmf, \
            fits.open(paths["arf"]) as arf:
        header = spectrum[1].header
        assert header["RESPFILE"] == paths["rmf"].name and header["ANCRFILE"] == paths["arf"].name
        assert (tmp_path / header["RESPFILE"]).exists() and (tmp_path / header["ANCRFILE"]).exists()
        channels = len(spectrum[1].data)
        assert channels == 62 == len(rmf["EBOUNDS"].data) == header["DETCHANS"]
        assert rmf["SPECRESP MATRIX"].header["DETCHANS"] == channels
        assert len(arf["SPECRESP"].data) == len(rmf["SPECRESP MATRIX"].data)
        assert header["NAME"] == "OAO 1657-415"


def test_get_product_checks_what_the_integral_methods_check(mmoda, requests_sent):
    from astroquery_mmoda.exceptions import InvalidQueryError

    mmoda.get_parameters("isgri", "isgri_image")  # the description, fetched once
    requests_sent.clear()
    common = dict(RA=ISGRI_FIELD.ra.deg, DEC=ISGRI_FIELD.dec.deg, query_type="Dummy")
    with pytest.raises(InvalidQueryError, match="max_pointings=100 is above 50, which needs the 'unige-hpc"):
        mmoda.get_product("ISGRI", "isgri_image", T1="2003-03-15", T2="2003-03-16", max_pointings=100,
                          **common)
    with pytest.raises(InvalidQueryError, match="T1 .* must be before T2"):
        mmoda.get_product("isgri", "isgri_image", T1="2003-03-16", T2="2003-03-15", **common)
    assert not any("run_analysis" in url for url in requests_sent)  # no product was asked for


def test_isgri_light_curve_equals_the_served_file(mmoda, catalog, integral_dispatcher):
    chosen = select_sources(catalog)
    curves = mmoda.get_lightcurve(ISGRI_FIELD, **ISGRI_TIMES, catalog=chosen, time_bin=100 * u.s,
                                  osa_version="OSA11.2", query_type="Dummy")
    (name,) = curves
    assert name == "4U 1700-377"
    series = curves[name]
    with fits.open(integral_dispatcher.workdir / DUMMY_FOLDER / "isgri_query_lc.fits") as served:
        table = served["ISGR-SRC.-LCR"].data
        expected_times = Time(served["ISGR-SRC.-LCR"].header["MJDREF"] + table["TIME"],
                              format="mjd", scale="tt")
        assert np.all(np.abs((series.time - expected_times).to_value(u.s)) < 1e-3)
        np.testing.assert_array_equal(series["rate"].value, table["RATE"])
        np.testing.assert_array_equal(series["empty"], ~(table["FRACEXP"] > 0)
                                      | ~np.isfinite(table["RATE"]))
    assert series["empty"].any() and not series["empty"].all()
    assert series.time.scale == "utc" and series.time.format == "isot"
    assert series.meta["src_name"] == name and series.meta["instrument"] == "isgri"
    kept = mmoda.get_lightcurve(ISGRI_FIELD, **ISGRI_TIMES, catalog=chosen, time_bin=100 * u.s,
                                osa_version="OSA11.2", query_type="Dummy", drop_empty=True)[name]
    assert len(kept) == (~series["empty"]).sum() and not kept["empty"].any()


def test_isgri_multi_source_light_curves(mmoda, catalog):
    chosen = select_sources(catalog, min_significance=12)
    curves = mmoda.get_lightcurve(ISGRI_FIELD, **ISGRI_TIMES, catalog=chosen, time_bin=200 * u.s,
                                  osa_version="OSA10.2", scw_list=[LIGHTCURVE_SCW],
                                  src_name=f"multi-{uuid.uuid4().hex[:8]}")
    assert list(curves) == list(chosen["src_names"])
    for name, series in curves.items():
        assert len(series) == 10 and series.meta["src_name"] == name
        assert np.allclose(series["time_bin"].to_value(u.s), 200)
        assert curves.hdulists[name]["ISGR-SRC.-LCR"].header["NAME"] == name


def test_jemx_image_spectrum_and_light_curve(mmoda, tmp_path):
    catalog = mmoda.query_region(CRAB, 4 * u.deg, **JEMX_TIMES, instrument="jemx",
                                 osa_version="OSA11.2", query_type="Dummy")
    assert list(catalog["src_names"]) == ["Crab"]
    spectra = mmoda.get_spectrum(CRAB, **JEMX_TIMES, instrument="jemx", catalog=catalog,
                                 osa_version="OSA11.2", query_type="Dummy")
    assert list(spectra) == ["Crab"]
    paths = spectra.write(tmp_path)["Crab"]
    assert all(path.exists() for path in paths.values())
    curves = mmoda.get_lightcurve(CRAB, **JEMX_TIMES, instrument="jemx", catalog=catalog,
                                  time_bin=20 * u.s, osa_version="OSA11.2", query_type="Dummy")
    (series,) = curves.values()
    assert len(series) > 10 and series["rate"].unit == u.ct / u.s
    assert series.time[0] > Time(JEMX_OBSERVATION.start) - 1 * u.min


def test_isgri_real_mode_fails_with_the_servers_message(mmoda):
    with conf.set_temp("poll_interval", 0.2):
        with pytest.raises(JobFailedError, match="AnalysisException") as error:
            mmoda.query_region(ISGRI_FIELD, 8 * u.deg, **ISGRI_TIMES, osa_version="OSA10.2",
                               scw_list=["005100410010.001"],
                               src_name=f"real-{uuid.uuid4().hex[:8]}")
    assert error.value.job_id


def test_query_payloads_pin_the_wire_parameters(mmoda, catalog, requests_sent):
    payload = mmoda.query_region(SkyCoord(ISGRI_FIELD.galactic), 8 * u.deg, **ISGRI_TIMES,
                                 max_pointings=10, osa_version="OSA11.2",
                                 energy_range=(25, 80) * u.keV, get_query_payload=True)
    assert payload == {
        "instrument": "isgri", "product_type": "isgri_image", "query_type": "Real",
        "query_status": "new", "api": "True", "RA": "258.5", "DEC": "-38.0",
        "T1": "2003-03-15T23:28:05.000", "T2": "2003-03-16T00:01:25.000",
        "E1_keV": "25.0", "E2_keV": "80.0", "radius": "8.0", "max_pointings": "10",
        "osa_version": "OSA11.2"}
    spectrum = mmoda.get_spectrum(ISGRI_FIELD, **ISGRI_TIMES, catalog=select_sources(catalog),
                                  get_query_payload=True)
    assert spectrum["product_type"] == "isgri_spectrum"
    selected = json.loads(spectrum["selected_catalog"])
    assert selected["cat_column_list"][1] == ["4U 1700-377", "OAO 1657-415", "GX 349+2", "GX 354-0"]
    assert (selected["cat_frame"], selected["cat_coord_units"]) == ("fk5", "deg")
    lc = mmoda.get_lightcurve(CRAB, start_time="2003-03-15", end_time="2003-03-16",
                              instrument="spi_acs", time_bin=0.5 * u.s, get_query_payload=True)
    assert lc == {"instrument": "spi_acs", "product_type": "spi_acs_lc", "query_type": "Real",
                  "query_status": "new", "api": "True", "RA": "83.63308", "DEC": "22.0145",
                  "T1": "2003-03-15T00:00:00.000", "T2": "2003-03-16T00:00:00.000",
                  "time_bin": "0.5"}
    assert requests_sent == []


@pytest.mark.parametrize("call, message", [
    (dict(start_time="2003-03-16", end_time="2003-03-15"), "before end_time"),
    (dict(radius=-1 * u.deg), "between 0 and 180"),
    (dict(radius="8"), "angle Quantity"),  # a plain number is degrees
    (dict(energy_range=(80, 30) * u.keV), "below the upper"),
    (dict(energy_range=(5, 30) * u.keV), "outside the isgri range"),
    (dict(energy_range=(30, 80)), "Quantity"),
    (dict(max_pointings=1000), "unige-hpc-extreme"),
    (dict(max_pointings=60), "unige-hpc-full"),
    (dict(max_pointings=0), "positive integer"),
    (dict(instrument="spi_acs"), "no image product"),
    (dict(instrument="nosuch"), "unknown INTEGRAL instrument"),
    (dict(coordinates="not a place at all"), "are not coordinates"),
    (dict(coordinates=42), "SkyCoord or a string"),
    (dict(scw_list=["12345"]), "science windows"),
    (dict(start_time="yesterday-ish"), "is not a time"),
])
def test_bad_input_raises_before_any_request(mmoda, requests_sent, call, message):
    arguments = dict(coordinates=ISGRI_FIELD, radius=8 * u.deg, **ISGRI_TIMES)
    arguments.update(call)
    with pytest.raises(InvalidQueryError, match=message):
        mmoda.query_region(arguments.pop("coordinates"), arguments.pop("radius"), **arguments)
    assert requests_sent == []


@pytest.mark.parametrize("time_bin, message", [
    (0 * u.s, "positive"), (-5 * u.s, "positive"), (1000 * u.m, "time"), (10, "Quantity"),
    (5000 * u.s, "maximum"),
])
def test_bad_time_bins(mmoda, requests_sent, time_bin, message):
    with pytest.raises(InvalidQueryError, match=message):
        mmoda.get_lightcurve(ISGRI_FIELD, **ISGRI_TIMES, time_bin=time_bin)
    assert requests_sent == []


def test_async_forms_return_the_job_and_the_sync_form_reads_its_result(mmoda, requests_sent):
    from astroquery_mmoda.jobs import Job

    options = dict(**JEMX_TIMES, instrument="jemx", osa_version="OSA11.2", query_type="Dummy")
    job = mmoda.query_region_async(CRAB, 4 * u.deg, **options, detection_threshold=6.5)
    assert isinstance(job, Job) and job.product == "jemx_image" and job.job_id
    products = job.result(timeout=120)
    assert "catalog" in products
    sent = len(requests_sent)
    catalog = mmoda.query_region(CRAB, 4 * u.deg, **options, detection_threshold=6.5)
    assert list(catalog["src_names"]) == list(products["catalog"]["src_names"])
    assert len(catalog) == 1 and len(requests_sent) == sent  # from the cache
    assert mmoda.get_images_async(CRAB, 4 * u.deg, **options, detection_threshold=6.5).finished
    spectrum_job = mmoda.get_spectrum_async(CRAB, catalog=catalog, **options)
    assert isinstance(spectrum_job, Job) and spectrum_job.product == "jemx_spectrum"
    lc_job = mmoda.get_lightcurve_async(CRAB, catalog=catalog, time_bin=20 * u.s, **options)
    assert lc_job.product == "jemx_lc"
    assert len(mmoda.get_lightcurve(CRAB, catalog=catalog, time_bin=20 * u.s, **options)) == 1
