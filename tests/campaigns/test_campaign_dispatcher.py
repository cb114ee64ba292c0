"""A small campaign against the real dispatcher running the real INTEGRAL plugins (Real mode).

The offline DDA stand-in answers light curves for one science window only
(``LIGHTCURVE_SCW``) and "no data" for any other: a two-job campaign thus has
one job done and one failed.
"""
import uuid

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
