"""Campaign orchestration against a fake client (no server).

The fake's ``submit_many`` behaves like the real one where it matters: a request
answered before comes back finished at once (the result cache), any other is a
new job that takes a few polls.
"""
import threading
import time

import numpy as np
import pytest
from astropy.io import fits
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda import conf
from astroquery_mmoda.campaigns.campaign import Campaign, CampaignResult, needs_campaign, run_campaign
from astroquery_mmoda.campaigns.pointings import pointings_from_scw_list
from astroquery_mmoda.integral import LightCurveSet, SpectrumSet
from astroquery_mmoda.exceptions import JobFailedError
from astroquery_mmoda.jobs import JobGroup
from astroquery_mmoda.products import ProductSet

SCWS = [f"{rev:04d}{i:04d}0010.001" for rev in range(100, 110) for i in range(1, 31)]  # 300 ScW
BIN_D = 1000.0 / 86400.0


def lightcurve_products(scw_list, *, rate=3.0, sigma=0.2, job_id="j"):
    """One light-curve bin per ScW (at its rank in SCWS), and one more overlapping the next job."""
    first = SCWS.index(scw_list[0])
    count = len(scw_list) + (1 if first + len(scw_list) < len(SCWS) else 0)
    times = 4000.0 + (first + np.arange(count) + 0.5) * BIN_D
    rng = np.random.default_rng(first)
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("TIME", "1D", unit="d", array=times),
        fits.Column("TIMEDEL", "1D", unit="d", array=np.full(count, BIN_D)),
        fits.Column("RATE", "1E", unit="count/s", array=rate + rng.normal(size=count) * sigma),
        fits.Column("ERROR", "1E", unit="count/s", array=np.full(count, sigma)),
        fits.Column("FRACEXP", "1E", array=np.ones(count))], name="ISGR-SRC.-LCR")
    hdu.header.update(MJDREF=51544.0, TIMESYS="TT", TIMEUNIT="d", NAME="GX 339-4", ONTIME=count * 1000.0)
    hdul = fits.HDUList([fits.PrimaryHDU(), hdu])
    return ProductSet([("lc_GX_339-4", "fits", hdul, {"src_name": "GX 339-4"})], job_id=job_id)


def spectrum_products(scw_list, *, rate=2.0, job_id="j"):
    exposure = 1000.0 * len(scw_list)
    spectrum = fits.BinTableHDU.from_columns([
        fits.Column("CHANNEL", "1I", array=np.arange(4)), fits.Column("RATE", "1E", array=np.full(4, rate)),
        fits.Column("STAT_ERR", "1E", array=np.full(4, 0.5)),
        fits.Column("SYS_ERR", "1E", array=np.zeros(4))])
    spectrum.header.update(HDUCLAS1="SPECTRUM", EXPOSURE=exposure)
    arf = fits.BinTableHDU.from_columns([fits.Column("SPECRESP", "1E", array=np.full(4, 100.0))])
    rmf = fits.BinTableHDU.from_columns([fits.Column("MATRIX", "4E", array=np.eye(4))])
    items = [(f"{kind}_Crab", "fits", fits.HDUList([fits.PrimaryHDU(), hdu]),
              {"src_name": "Crab", "product": f"isgri_{kind}"})
             for kind, hdu in (("spectrum", spectrum), ("arf", arf), ("rmf", rmf))]
    return ProductSet(items, job_id=job_id)


class FakeJob:
    def __init__(self, server, key, scw_list, *, finished=False):
        self.server, self.key, self.scw_list = server, key, scw_list
        self.job_id = f"job{len(server.submitted) if not finished else 'cached'}"
        self.status = "done" if finished else "new"
        self._polls = 0
        self._result = None
        self.released = False

    @property
    def finished(self):
        return self.status in ("done", "failed")

    def update(self, timeout=None):
        with self.server.lock:
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
        time.sleep(0.002)
        with self.server.lock:
            self.server.in_flight -= 1
        if self.status == "new":
            with self.server.lock:
                self.server.submitted.append(self.key)
            self.status = "submitted"
        self._polls += 1
        if self._polls >= 2:
            self.status = "failed" if self.key in self.server.failing else "done"
            if self.status == "done":
                self.server.cache[self.key] = True
        return self.status

    def release(self):
        self._result, self.released = None, True

    def result(self):
        if self.status == "failed":
            raise JobFailedError(f"job {self.job_id} failed on the back end")
        if self._result is None:  # kept, as a real Job keeps its decoded products
            self._result = self.server.make(self.scw_list, job_id=self.job_id)
        return self._result


class FakeClient:
    def __init__(self, make, failing=()):
        self.make = make
        self.submitted, self.cache, self.lock = [], {}, threading.Lock()
        self.failing = set(failing)
        self.calls = []
        self.in_flight = self.most_in_flight = 0

    def submit_many(self, requests, *, query_type="Real", cache=True):
        self.calls.append((requests, query_type, cache))
        jobs = []
        for instrument, product, params in requests:
            key = repr((instrument, product, sorted(params.items())))
            jobs.append(FakeJob(self, key, params["scw_list"], finished=cache and key in self.cache))
        return JobGroup(jobs)

    def key_of(self, scw_list):
        return repr(("isgri", "isgri_lc", sorted(dict(E1_keV=30.0, scw_list=list(scw_list)).items())))


@pytest.fixture(autouse=True)
def fast_polls():
    with conf.set_temp("poll_interval", 0.001), conf.set_temp("poll_max", 0.002):
        yield


def lc_campaign(client, **kwargs):
    return Campaign(client, "isgri", "isgri_lc", {"E1_keV": 30.0}, SCWS, kind="lightcurve", **kwargs)


def test_a_light_curve_campaign_stitches_every_job():
    client = FakeClient(lightcurve_products)
    campaign = lc_campaign(client, max_per_job=50)
    assert [len(p) for p in campaign.plans] == [50] * 6
    result = campaign.run(timeout=60)
    assert isinstance(result, CampaignResult) and result.complete
    assert result.summary == "ScW 300/300, jobs 6/6 done, 0 failed"
    assert isinstance(result.combined, LightCurveSet) and list(result.combined) == ["GX 339-4"]
    assert result.combined.meta == {"instrument": "isgri", "product": "isgri_lc",
                                    "jobs": [p.label for p in campaign.plans]}
    series = result.combined["GX 339-4"]
    assert len(series) == 300 and series.meta["duplicates_removed"] == 5  # one overlap per job boundary
    assert np.all(np.diff(series.time.mjd) > 0)
    assert series.meta["ONTIME"] == pytest.approx(300 * 1000.0)
    assert series.meta["TELAPSE"] == pytest.approx(300 * 1000.0, rel=1e-6)
    assert sorted(set(series["job"])) == [p.label for p in campaign.plans]
    weights = 1 / series["rate_err"].value ** 2
    mean = np.sum(series["rate"].value * weights) / weights.sum()
    assert abs(mean - 3.0) < 3 / np.sqrt(weights.sum())
    requests, query_type, cache = client.calls[0]
    assert query_type == "Real" and cache is True
    assert requests[0] == ("isgri", "isgri_lc", {"E1_keV": 30.0, "scw_list": SCWS[:50]})
    assert len(client.submitted) == 6


def test_a_resumed_campaign_submits_nothing_for_finished_jobs():
    client = FakeClient(lightcurve_products)
    first = lc_campaign(client, by="revolution").run(timeout=60)
    assert len(client.submitted) == 10
    again = lc_campaign(client, by="revolution")
    assert again.requests() == client.calls[0][0]  # the same jobs, so the cache and journal find them
    second = again.run(timeout=60)
    assert len(client.submitted) == 10
    assert second.summary == "ScW 300/300, jobs 10/10 done, 0 failed"
    np.testing.assert_allclose(second.combined["GX 339-4"]["rate"].value,
                               first.combined["GX 339-4"]["rate"].value)


def test_a_failed_job_is_listed_and_can_be_retried(caplog):
    client = FakeClient(lightcurve_products)
    campaign = lc_campaign(client, max_per_job=100)
    client.failing.add(client.key_of(SCWS[100:200]))
    result = campaign.run(timeout=60)
    assert not result.complete
    assert result.summary == "ScW 200/300, jobs 2/3 done, 1 failed"
    (label, (plan, error)), = result.failures.items()
    assert label == "scw0101-0200" and plan.scw_list == tuple(SCWS[100:200])
    assert isinstance(error, JobFailedError) and "failed on the back end" in str(error)
    assert result.failed_scw == SCWS[100:200]
    assert campaign.group.failures == {1: error}
    with pytest.raises(InvalidQueryError, match=r"use campaign.result\(\)"):
        campaign.group.results()
    assert set(result.combined["GX 339-4"]["job"]) == {"scw0001-0100", "scw0201-0300"}
    assert "1 of 3 jobs failed (scw0101-0200)" in caplog.text
    client.failing.clear()
    retried = result.retry(timeout=60)
    assert retried.complete and retried.summary == "ScW 300/300, jobs 3/3 done, 0 failed"
    assert len(retried.combined["GX 339-4"]) == 300
    assert client.calls[-1][0] == campaign.requests([plan])


def test_a_spectrum_campaign_sums_exposure_and_recovers_the_rate():
    client = FakeClient(spectrum_products)
    campaign = Campaign(client, "isgri", "isgri_spectrum", {}, SCWS, kind="spectrum", max_per_job=40,
                        max_concurrent=2)
    result = campaign.run(timeout=60)
    assert 1 <= client.most_in_flight <= 2
    assert isinstance(result.combined, SpectrumSet)
    spec = result.combined["Crab"].spectrum[1]
    assert spec.header["EXPOSURE"] == pytest.approx(300 * 1000.0)
    assert spec.header["NCOMBINE"] == 8
    np.testing.assert_allclose(spec.data["RATE"], 2.0)
    expected = np.sqrt(sum((1000.0 * len(p) * 0.5) ** 2 for p in campaign.plans)) / 300000.0
    np.testing.assert_allclose(spec.data["STAT_ERR"], expected, rtol=1e-6)


def test_folded_jobs_forget_their_products():
    client = FakeClient(lightcurve_products)
    campaign = lc_campaign(client, max_per_job=150)
    group = campaign.submit()
    assert not any(job.released for job in group.jobs)
    campaign.wait(timeout=60)
    assert all(job.finished and job.released and job._result is None for job in group.jobs)
    assert len(campaign.result().combined["GX 339-4"]) == 300


def test_progress_before_anything_ran_and_bad_arguments():
    campaign = lc_campaign(FakeClient(lightcurve_products))
    assert campaign.progress() == "ScW 0/300, jobs 0/6 done, 0 failed"
    assert campaign.n_scw == 300 and "isgri/isgri_lc" in repr(campaign)
    assert campaign.result().combined is None
    with pytest.raises(InvalidQueryError, match="kind must be one of"):
        Campaign(FakeClient(None), "isgri", "isgri_lc", {}, SCWS, kind="movie")
    with pytest.raises(InvalidQueryError, match="not in params"):
        Campaign(FakeClient(None), "isgri", "isgri_lc", {"scw_list": SCWS}, SCWS, kind="lightcurve")
    with pytest.raises(InvalidQueryError, match="max_concurrent"):
        lc_campaign(FakeClient(None), max_concurrent=0)
    assert [len(p) for p in lc_campaign(FakeClient(None), roles=["unige-hpc-full"]).plans] == [300]


def test_one_call_entry_point_and_when_a_campaign_is_needed():
    client = FakeClient(spectrum_products)
    result = run_campaign(client, "isgri", "isgri_spectrum", {"E1_keV": 30.0},
                          pointings_from_scw_list(SCWS[:120]), kind="spectrum", by="revolution",
                          query_type="Dummy", timeout=60)
    assert result.summary == "ScW 120/120, jobs 4/4 done, 0 failed"
    assert [p.label for p in result.plans] == ["rev0100", "rev0101", "rev0102", "rev0103"]
    assert client.calls[0][1] == "Dummy"
    assert result.combined["Crab"].spectrum[1].header["EXPOSURE"] == pytest.approx(120000.0)
    assert not needs_campaign(None) and not needs_campaign(SCWS[:50]) and not needs_campaign(SCWS[:49] * 3)
    assert needs_campaign(SCWS[:51]) and needs_campaign(pointings_from_scw_list(SCWS[:2]))
    assert not needs_campaign(SCWS, roles=["unige-hpc-full"])
    with pytest.raises(InvalidQueryError, match="not 'bad'"):
        needs_campaign(["bad"])


def mosaic_products(scw_list, *, job_id="j"):
    """A 5x5 mosaic whose intensity is the job's first revolution number, variance 1."""
    hdus = [fits.PrimaryHDU()]
    for kind, value in (("INTENSITY", float(scw_list[0][:4])), ("VARIANCE", 1.0), ("EXPOSURE", 500.0)):
        hdu = fits.ImageHDU(np.full((5, 5), value, dtype=np.float32))
        hdu.header.update(IMATYPE=kind, CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CDELT1=-0.1, CDELT2=0.1,
                          CRVAL1=250.0, CRVAL2=-40.0, CRPIX1=3.0, CRPIX2=3.0)
        hdus.append(hdu)
    return ProductSet([("mosaic", "fits", fits.HDUList(hdus), {})], job_id=job_id)


def test_a_mosaic_campaign_co_adds_every_job():
    client = FakeClient(mosaic_products)
    result = Campaign(client, "isgri", "isgri_image", {}, SCWS[:120], kind="image",
                      by="revolution").run(timeout=60)
    maps = {hdu.header["IMATYPE"]: hdu.data for hdu in result.combined[1:]}
    np.testing.assert_allclose(maps["INTENSITY"], (100 + 101 + 102 + 103) / 4)
    np.testing.assert_allclose(maps["VARIANCE"], 0.25)
    np.testing.assert_allclose(maps["EXPOSURE"], 2000.0)
    assert result.combined[1].header["NCOMBINE"] == 4


def test_a_job_without_a_mosaic_is_a_failure():
    client = FakeClient(lambda scw_list, job_id: ProductSet([], job_id=job_id))
    result = Campaign(client, "isgri", "isgri_image", {}, SCWS[:10], kind="image").run(timeout=60)
    assert result.combined is None and "returned no mosaic" in str(result.failures["scw0001-0010"][1])


def test_a_timeout_keeps_what_was_folded_and_the_campaign_can_wait_again():
    from astroquery_mmoda.exceptions import TimeoutError

    campaign = lc_campaign(FakeClient(lightcurve_products), max_per_job=50)
    campaign.submit()
    stuck = campaign.group.jobs[0]
    stuck.update = lambda timeout=None: stuck.status  # never finishes
    with pytest.raises(TimeoutError):
        campaign.wait(timeout=0.5)
    assert campaign.progress() == "ScW 250/300, jobs 5/6 done, 0 failed"
    del stuck.update
    assert campaign.wait(timeout=60).result().summary == "ScW 300/300, jobs 6/6 done, 0 failed"


def catalog_products(scw_list, *, job_id="j"):
    """Crab in every job (most significant in revolution 102), a new source in revolution 101 only."""
    from astropy.table import Table

    rev = int(scw_list[0][:4])
    rows = [("Crab", 30.0 + 10 * (rev == 102), 83.63, 22.01)] + [("NEW_1", 8.0, 80.0, 20.0)] * (rev == 101)
    names, significance, ra, dec = zip(*rows)
    table = Table({"meta_ID": np.arange(len(rows)), "src_names": names, "significance": significance,
                   "ra": ra, "dec": dec})
    return ProductSet([("mosaic_catalog", "catalog", table, {})], job_id=job_id)


def test_a_catalog_campaign_lists_each_source_once():
    client = FakeClient(catalog_products)
    result = Campaign(client, "isgri", "isgri_image", {}, SCWS[:120], kind="catalog",
                      by="revolution").run(timeout=60)
    table = result.combined
    assert table["src_names"].tolist() == ["Crab", "NEW_1"]
    assert table["significance"].tolist() == [40.0, 8.0]
    assert table["jobs"].tolist() == ["rev0100,rev0101,rev0102,rev0103", "rev0101"]
    assert table.meta["jobs"] == ["rev0100", "rev0101", "rev0102", "rev0103"]
    assert table.meta["product"] == "isgri_image"


def test_a_job_without_a_catalog_is_a_failure():
    client = FakeClient(lambda scw_list, job_id: ProductSet([], job_id=job_id))
    result = Campaign(client, "isgri", "isgri_image", {}, SCWS[:10], kind="catalog").run(timeout=60)
    assert result.combined is None and "returned no source catalog" in str(result.failures["scw0001-0010"][1])
