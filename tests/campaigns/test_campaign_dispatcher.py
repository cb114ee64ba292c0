"""A small campaign against the real dispatcher running the real INTEGRAL plugins (Real mode).

The offline DDA stand-in answers light curves for one science window only
(``LIGHTCURVE_SCW``) and "no data" for any other: a two-job campaign thus has
one job done and one failed.
"""
import uuid

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

from astroquery_mmoda import conf
from astroquery_mmoda.campaigns import Campaign
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import JobFailedError
from astroquery_mmoda.testing.integral_sky import ISGRI_OBSERVATION, LIGHTCURVE_SCW

pytestmark = [pytest.mark.integration, pytest.mark.integral]

FIELD = SkyCoord(ISGRI_OBSERVATION.ra, ISGRI_OBSERVATION.dec, unit="deg")
EMPTY_SCW = "005100410010.001"
_PAYLOAD_ONLY = ("instrument", "product_type", "query_type", "query_status", "api", "scw_list")


@pytest.fixture
def mmoda(integral_dispatcher, tmp_path):
    client = MmodaClass(server=integral_dispatcher.url)
    client.cache_location = tmp_path / "cache"
    client.login(integral_dispatcher.mint_token("general"))
    return client


def test_campaign_combines_the_done_job_lists_the_failed_one_and_resumes(mmoda, monkeypatch):
    payload = mmoda.get_lightcurve(FIELD, start_time=Time(ISGRI_OBSERVATION.start),
                                   end_time=Time(ISGRI_OBSERVATION.end), time_bin=200 * u.s,
                                   osa_version="OSA10.2", scw_list=[LIGHTCURVE_SCW], get_query_payload=True)
    params = {name: value for name, value in payload.items() if name not in _PAYLOAD_ONLY}
    params["src_name"] = f"campaign-{uuid.uuid4().hex[:8]}"
    sent = []
    original = mmoda._session.request

    def request(method, url, *args, **kwargs):
        sent.append(repr((url, kwargs)))
        return original(method, url, *args, **kwargs)

    monkeypatch.setattr(mmoda._session, "request", request)

    def campaign():
        return Campaign(mmoda, "isgri", "isgri_lc", params, [LIGHTCURVE_SCW, EMPTY_SCW],
                        kind="lightcurve", max_per_job=1)

    with conf.set_temp("poll_interval", 0.2):
        result = campaign().run(timeout=600, show_progress=False)
        assert result.summary == "ScW 1/2, jobs 1/2 done, 1 failed"
        (label, (plan, error)), = result.failures.items()
        assert plan.scw_list == (EMPTY_SCW,) and isinstance(error, JobFailedError)
        assert len(result.combined) >= 1
        for name, series in result.combined.items():
            assert len(series) == 10 and set(series["job"]) == {"scw0002-0002"}
            assert series.meta["ONTIME"] > 0

        sent.clear()
        again = campaign().run(timeout=600, show_progress=False)
    # the done job came from the result cache: no request named its science window again
    assert not any(LIGHTCURVE_SCW in request for request in sent)
    assert any(EMPTY_SCW in request for request in sent)  # the failed one was asked again
    assert again.summary == result.summary
    assert list(again.combined) == list(result.combined)


# 120 synthetic campaign ScWs, 40 in each of revolutions 100-102: the DDA stand-in serves each
# job a light curve made of one stretch of bins per ScW of the job.
CAMPAIGN_SCWS = [f"{rev:04d}{pointing:04d}0010.001" for rev in (100, 101, 102) for pointing in range(1, 41)]


def test_a_real_mode_campaign_stitches_the_light_curves_of_each_job(mmoda):
    options = dict(start_time=Time("2003-08-01"), end_time=Time("2003-08-31"), time_bin=200 * u.s,
                   osa_version="OSA10.2", query_type="Real")
    with conf.set_temp("poll_interval", 0.2):
        curves = mmoda.get_lightcurve(FIELD, scw_list=CAMPAIGN_SCWS, split_by="revolution", **options)
        assert curves.campaign.summary == "ScW 120/120, jobs 3/3 done, 0 failed"
        # each revolution alone is one job, answered from the cache: the campaign's jobs are these
        per_job = [mmoda.get_lightcurve(FIELD, scw_list=CAMPAIGN_SCWS[rev * 40:(rev + 1) * 40], **options)
                   for rev in range(3)]
    assert len(curves) >= 1 and set(curves) == set(per_job[0])
    for name, series in curves.items():
        parts = [job[name] for job in per_job]
        assert len(series) == sum(len(part) for part in parts) == 120 * 18  # 18 bins of 200 s per ScW
        assert (np.diff(series.time.mjd) > 0).all()  # sorted, no bin twice
        np.testing.assert_array_equal(np.concatenate([part["rate"].value for part in parts]),
                                      series["rate"].value)
        assert series.meta["ONTIME"] == pytest.approx(120 * 3400.0)  # exposure summed
        assert len(set(series["job"])) == 3


def test_a_thousand_scw_real_mode_light_curve_campaign(mmoda):
    """20 jobs of 50 ScW (revolutions 100-119), each answered with its own ScWs' bins."""
    scws = [f"{rev:04d}{pointing:04d}0010.001" for rev in range(100, 120) for pointing in range(1, 51)]
    with conf.set_temp("poll_interval", 0.2):
        curves = mmoda.get_lightcurve(FIELD, start_time=Time("2003-08-01"), end_time=Time("2003-10-31"),
                                      time_bin=1000 * u.s, osa_version="OSA10.2", query_type="Real",
                                      scw_list=scws, timeout=1800)
    assert curves.campaign.summary == "ScW 1000/1000, jobs 20/20 done, 0 failed"
    for name, series in curves.items():
        assert len(series) == 1000 * 4 and (np.diff(series.time.mjd) > 0).all()  # 4 bins per ScW
        assert series.meta["ONTIME"] == pytest.approx(1000 * 3400.0) and len(set(series["job"])) == 20
