"""``get_lightcurve`` and co. run a long ``scw_list`` as a campaign (real dispatcher, Dummy mode).

In Dummy mode every job answers the same products whatever its science
windows: a campaign of two jobs stitches two copies of one light curve, and
the duplicates removed must give back the single job's curve.
"""
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from astroquery_mmoda.exceptions import InvalidQueryError
from astroquery_mmoda.integral import LightCurveSet, SpectrumSet, select_sources
from astroquery_mmoda.testing.integral_sky import ISGRI_OBSERVATION
from tests.client_helpers import logged_in_client

pytestmark = [pytest.mark.integration, pytest.mark.integral]

FIELD = SkyCoord(ISGRI_OBSERVATION.ra, ISGRI_OBSERVATION.dec, unit="deg")
OPTIONS = dict(start_time=Time(ISGRI_OBSERVATION.start), end_time=Time(ISGRI_OBSERVATION.end),
               osa_version="OSA11.2", query_type="Dummy")
# 60 science windows of revolutions 0665 and 0666: two jobs of 30 (the limit is 50 without roles)
SCWS = [f"{rev:04d}{index:04d}0010.001" for rev in (665, 666) for index in range(30)]


@pytest.fixture(scope="module")
def mmoda(integral_dispatcher, tmp_path_factory):
    return logged_in_client(integral_dispatcher, tmp_path_factory.mktemp("campaign-cache"))


@pytest.fixture(scope="module")
def chosen(mmoda):
    return select_sources(mmoda.query_region(FIELD, 8 * u.deg, max_pointings=10, **OPTIONS))


@pytest.fixture
def submissions(mmoda, monkeypatch):
    """How many new jobs the client has submitted since the test began (a function)."""
    sent = []
    original = mmoda._session.request

    def request(method, url, *args, **kwargs):
        fields = dict(kwargs.get("params") or {}, **dict(kwargs.get("data") or {}))
        sent.append(fields.get("query_status") == "new" and url.endswith("run_analysis"))
        return original(method, url, *args, **kwargs)

    monkeypatch.setattr(mmoda._session, "request", request)
    return lambda: sum(sent)


def test_a_long_scw_list_is_one_combined_light_curve_and_resumes_from_the_cache(mmoda, chosen, submissions):
    single = mmoda.get_lightcurve(FIELD, catalog=chosen, time_bin=100 * u.s, **OPTIONS)
    before = submissions()
    curves = mmoda.get_lightcurve(FIELD, catalog=chosen, time_bin=100 * u.s, scw_list=SCWS, **OPTIONS)
    assert submissions() - before == 2
    assert isinstance(curves, LightCurveSet) and list(curves) == list(single)
    assert curves.campaign.summary == "ScW 60/60, jobs 2/2 done, 0 failed" and curves.campaign.complete
    assert curves.meta["campaign"] == curves.campaign.summary and len(curves.meta["jobs"]) == 2
    for name, series in curves.items():
        assert len(series) == len(single[name])  # the second job's copy of each bin was dropped
        assert (series.time == single[name].time).all()
    again = mmoda.get_lightcurve(FIELD, catalog=chosen, time_bin=100 * u.s, scw_list=Table({"scw_id": SCWS}),
                                 **OPTIONS)
    assert submissions() - before == 2  # both jobs came from the cache
    assert again.campaign.summary == curves.campaign.summary


def test_a_campaign_payload_is_one_request_per_job(mmoda, chosen, submissions):
    before = submissions()
    payloads = mmoda.get_spectrum(FIELD, catalog=chosen, scw_list=SCWS, split_by="revolution",
                                  get_query_payload=True, **OPTIONS)
    assert [payload["scw_list"] for payload in payloads] == [",".join(SCWS[:30]), ",".join(SCWS[30:])]
    assert {payload["product_type"] for payload in payloads} == {"isgri_spectrum"}
    assert submissions() == before


def test_summed_spectra_and_a_combined_catalog(mmoda, chosen):
    spectra = mmoda.get_spectrum(FIELD, catalog=chosen, scw_list=SCWS, **OPTIONS)
    assert isinstance(spectra, SpectrumSet) and set(chosen["src_names"]) <= set(spectra)
    assert spectra.campaign.summary == "ScW 60/60, jobs 2/2 done, 0 failed"
    catalog = mmoda.query_region(FIELD, 8 * u.deg, scw_list=SCWS, **OPTIONS)
    assert isinstance(catalog, Table) and "4U 1700-377" in list(catalog["src_names"])
    assert catalog.meta["campaign"] == catalog.campaign.summary


def test_async_methods_refuse_a_campaign_before_any_request(mmoda, submissions):
    before = submissions()
    with pytest.raises(InvalidQueryError, match="60 science windows are more than one job takes"):
        mmoda.get_lightcurve_async(FIELD, time_bin=100 * u.s, scw_list=SCWS, **OPTIONS)
    assert submissions() == before
