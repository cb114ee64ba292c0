"""Campaigns of many jobs against the real dispatcher with the INTEGRAL plugins.

The jobs use ``query_type="Dummy"``: the test sky's DDA stand-in serves
per-ScW products in Real mode for one science window only, while in Dummy mode
the plugins answer every job with the test sky's fixed products (they ignore
``scw_list``).  So every job of a campaign gets the same, known input, through
the real dispatcher's encoding and the client's decoding: a stitched light
curve must equal one job's (every other bin a duplicate), a summed spectrum
must have the jobs' summed exposure, their counts, and one job's rates.
Requests are counted by a `~astroquery_mmoda.testing.FaultProxy` in front of
the dispatcher, which also plays one failed job.
"""
import json
import tracemalloc
import uuid

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

from astroquery_mmoda import conf
from astroquery_mmoda.campaigns import Campaign, LightCurveSetCombiner
from astroquery_mmoda.campaigns.campaign import _lightcurves, _spectra
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import JobFailedError
from astroquery_mmoda.testing import FaultProxy

pytestmark = [pytest.mark.integration, pytest.mark.integral]

FIELD = SkyCoord(257.0, -40.0, unit="deg")
SCWS = [f"{100 + n // 50:04d}{n % 50 + 1:04d}0010.001" for n in range(1000)]  # 20 revolutions of 50
_PAYLOAD_ONLY = ("instrument", "product_type", "query_type", "query_status", "api", "scw_list")
_METHODS = {"isgri_lc": ("get_lightcurve", {"time_bin": 1000 * u.s}), "isgri_spectrum": ("get_spectrum", {}),
            "isgri_image": ("get_images", {})}


@pytest.fixture
def proxy(integral_dispatcher):
    with FaultProxy(integral_dispatcher.url) as proxy:
        yield proxy


@pytest.fixture
def mmoda(integral_dispatcher, proxy, tmp_path):
    client = MmodaClass(server=proxy.url)
    client.cache_location = tmp_path / "cache"
    client.login(integral_dispatcher.mint_token("general"))
    with conf.set_temp("poll_interval", 0.2):
        yield client


def shared_params(client, product):
    """The parameters every job of the campaign shares (a fresh src_name: nothing cached elsewhere)."""
    method, extra = _METHODS[product]
    payload = getattr(client, method)(FIELD, start_time=Time("2003-03-15"), end_time=Time("2003-03-16"),
                                      scw_list=SCWS[:1], osa_version="OSA10.2", query_type="Dummy",
                                      get_query_payload=True, **extra)
    params = {name: value for name, value in payload.items() if name not in _PAYLOAD_ONLY}
    params["src_name"] = f"campaign-{uuid.uuid4().hex[:8]}"
    return params


def one_job(client, product, params):
    return client.get_product("isgri", product, query_type="Dummy", cache=False,
                              scw_list=SCWS[:50], **params)


def analysis_requests(proxy):
    return [r for r in proxy.requests if r.path.rstrip("/").endswith("run_analysis")]


def campaign(client, product, params, kind, scws=SCWS, **options):
    return Campaign(client, "isgri", product, params, scws, kind=kind, by="revolution",
                    query_type="Dummy", **options)


def test_a_thousand_scw_mosaic_campaign_in_twenty_jobs_bounded_memory_and_resumed(mmoda, proxy):
    params = shared_params(mmoda, "isgri_image")
    tracemalloc.start()
    one_job(mmoda, "isgri_image", params)
    one_job_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    proxy.reset_counts()
    result = campaign(mmoda, "isgri_image", params, "image", max_concurrent=2).run(
        timeout=900, show_progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.summary == "ScW 1000/1000, jobs 20/20 done, 0 failed"
    sent = analysis_requests(proxy)
    assert len(sent) == 20  # Dummy jobs answer at once: one request each
    sent_scws = [scw for r in sent for scw in r.params["scw_list"].split(",")]
    assert sorted(sent_scws) == SCWS
    # Every job is folded as it arrives, then released: the answers in flight (two) and the
    # running sums, never twenty jobs' mosaics at once.
    assert peak < 5 * one_job_peak, (peak, one_job_peak)
    maps = {hdu.header.get("IMATYPE"): hdu for hdu in result.combined if hdu.header.get("IMATYPE")}
    assert maps["INTENSITY"].header["NCOMBINE"] == 20

    proxy.reset_counts()
    again = campaign(mmoda, "isgri_image", params, "image").run(timeout=900, show_progress=False)
    assert analysis_requests(proxy) == []  # finished jobs: from the result cache, no submission
    assert again.summary == result.summary
    np.testing.assert_allclose(again.combined[1].data, result.combined[1].data)


def test_stitching_twenty_copies_of_a_known_light_curve_gives_it_back(mmoda, proxy):
    params = shared_params(mmoda, "isgri_lc")
    known_set = _lightcurves(one_job(mmoda, "isgri_lc", params))
    (known,) = known_set.values()
    alone = LightCurveSetCombiner()
    alone.add(known_set, job="one")
    (alone,) = alone.result().values()
    result = campaign(mmoda, "isgri_lc", params, "lightcurve").run(timeout=900, show_progress=False)
    assert result.complete and len(result.combined) == 1
    (curve,) = result.combined.values()
    assert len(curve) == len(known) and curve.meta["duplicates_removed"] == 19 * len(known)
    np.testing.assert_allclose(curve.time.mjd, known.time.mjd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(curve["rate"].value, known["rate"].value)
    np.testing.assert_allclose(curve["rate_err"].value, known["rate_err"].value)

    def counts(series):  # counts are conserved: a duplicate bin is counted once
        return np.nansum(series["rate"].value * u.Quantity(series["time_bin"]).to_value(u.s))

    assert counts(known) > 0 and counts(curve) == pytest.approx(counts(known))
    for key in ("ONTIME", "EXPOSURE", "TELAPSE"):
        assert curve.meta[key] == pytest.approx(alone.meta[key]) and alone.meta[key] > 0
    first_start = known.time[0] - u.Quantity(known["time_bin"][0]) / 2
    assert abs((curve.meta["TSTART"] - first_start).to_value(u.s)) < 1e-3
    assert set(curve["job"]) <= {plan.label for plan in result.plans}


def test_summing_known_spectra_sums_exposure_and_counts_and_keeps_the_rates(mmoda):
    params = shared_params(mmoda, "isgri_spectrum")
    known = _spectra(one_job(mmoda, "isgri_spectrum", params))
    result = campaign(mmoda, "isgri_spectrum", params, "spectrum", scws=SCWS[:150]).run(
        timeout=900, show_progress=False)
    assert result.summary == "ScW 150/150, jobs 3/3 done, 0 failed"
    assert sorted(result.combined) == sorted(known)
    for name, single in known.items():
        part, total = single.spectrum[1], result.combined[name].spectrum[1]
        exposure = part.header["EXPOSURE"]
        assert total.header["EXPOSURE"] == pytest.approx(3 * exposure)
        assert total.header["NCOMBINE"] == 3
        np.testing.assert_allclose(total.data["RATE"], part.data["RATE"], rtol=1e-6)  # the known rates
        np.testing.assert_allclose(total.data["RATE"] * total.header["EXPOSURE"],
                                   3 * part.data["RATE"] * exposure, rtol=1e-6)  # counts conserved
        np.testing.assert_allclose(total.data["STAT_ERR"], part.data["STAT_ERR"] / np.sqrt(3), rtol=1e-6)
        np.testing.assert_allclose(result.combined[name].arf[1].data["SPECRESP"],
                                   single.arf[1].data["SPECRESP"], rtol=1e-6)


def _failed_answer(record):
    return json.dumps({"query_status": "failed", "products": {},
                       "exit_status": {"status": 1, "message": "failed: isgri_lc",
                                       "error_message": "AnalysisException: the back end broke"},
                       "job_monitor": {"job_id": "0123456789abcdef",
                                       "session_id": record.params.get("session_id")}})


def test_a_failed_job_of_twenty_is_listed_and_retried_alone(mmoda, proxy):
    params = shared_params(mmoda, "isgri_lc")
    broken = SCWS[500]  # revolution 110
    proxy.replace(_failed_answer, path="run_analysis", times=None,
                  when=lambda sent: broken in sent.get("scw_list", ""))
    result = campaign(mmoda, "isgri_lc", params, "lightcurve").run(timeout=900, show_progress=False)
    assert result.summary == "ScW 950/1000, jobs 19/20 done, 1 failed"
    (label, (plan, error)), = result.failures.items()
    assert label == "rev0110" and broken in plan.scw_list and isinstance(error, JobFailedError)
    assert result.failed_scw == SCWS[500:550]
    (curve,) = result.combined.values()
    assert "rev0110" not in set(curve["job"])

    proxy.clear()
    proxy.reset_counts()
    retried = result.retry(timeout=900)
    assert retried.complete and retried.summary == "ScW 1000/1000, jobs 20/20 done, 0 failed"
    sent = analysis_requests(proxy)
    assert len(sent) == 1 and sent[0].params["scw_list"].split(",") == SCWS[500:550]
