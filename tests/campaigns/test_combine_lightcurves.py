import random

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.time import Time
from astropy.timeseries import TimeSeries
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda.campaigns.combine_lightcurves import (LightCurveCombiner, LightCurveSetCombiner,
                                                            combine_lightcurves)

T0 = Time("2012-03-01T00:00:00", scale="tt")


def part(first_bin, count, *, rate=5.0, width=100.0, fracexp=1.0, seed=0):
    rng = np.random.default_rng(seed)
    errors = np.full(count, 0.5)
    series = TimeSeries(time=T0 + (np.arange(first_bin, first_bin + count) + 0.5) * width * u.s,
                        data={"time_bin": np.full(count, width) * u.s,
                              "rate": (rate + rng.normal(size=count) * errors) * u.ct / u.s,
                              "rate_err": errors * u.ct / u.s,
                              "fracexp": np.full(count, fracexp),
                              "empty": np.zeros(count, bool)})
    series.meta["instrument"] = "isgri"
    return series


def test_disjoint_parts_are_sorted_and_conserved_in_any_arrival_order():
    parts = [(f"job{i}", part(20 * i, 20, seed=i)) for i in range(5)]
    shuffled = list(parts)
    random.Random(1).shuffle(shuffled)
    series = combine_lightcurves(shuffled)
    assert len(series) == 100
    assert np.all(np.diff(series.time.mjd) > 0)
    assert series["job"].tolist() == [f"job{i}" for i in range(5) for _ in range(20)]
    expected = np.concatenate([p["rate"].value for _, p in parts])
    np.testing.assert_allclose(series["rate"].value, expected)
    assert series["rate"].unit == u.ct / u.s and series["time_bin"].unit == u.s
    assert series.meta["duplicates_removed"] == 0
    assert series.meta["jobs"] == [f"job{i}" for i in range(5)]
    assert series.meta["instrument"] == "isgri"
    assert series.meta["TSTART"].isot == T0.isot
    assert abs((series.meta["TSTOP"] - T0).to_value(u.s) - 10000.0) < 1e-3
    assert series.meta["TELAPSE"] == pytest.approx(10000.0)
    assert series.meta["ONTIME"] == pytest.approx(10000.0)
    assert series.meta["EXPOSURE"] == pytest.approx(10000.0)
    assert combine_lightcurves(parts)["rate"].value.tolist() == series["rate"].value.tolist()


def test_known_rate_is_recovered_within_errors():
    series = combine_lightcurves([(f"j{i}", part(50 * i, 50, rate=7.0, seed=10 + i)) for i in range(4)])
    weights = 1 / series["rate_err"].value ** 2
    mean = np.sum(series["rate"].value * weights) / weights.sum()
    assert abs(mean - 7.0) < 3 / np.sqrt(weights.sum())


def test_overlap_keeps_the_better_exposed_bin_and_its_share_of_ontime():
    combiner = LightCurveCombiner()
    combiner.add(part(0, 10, rate=1.0, fracexp=0.5), job="b", header={"ONTIME": 500.0, "EXPOSURE": 400.0})
    combiner.add(part(5, 10, rate=2.0, fracexp=1.0), job="a", header={"ONTIME": 1000.0, "EXPOSURE": 900.0})
    series = combiner.result()
    assert len(series) == 15 and series.meta["duplicates_removed"] == 5
    assert series["job"].tolist() == ["b"] * 5 + ["a"] * 10
    assert series["fracexp"].tolist() == [0.5] * 5 + [1.0] * 10
    # "b" keeps half of its good time, "a" all of it
    assert series.meta["ONTIME"] == pytest.approx(250.0 + 1000.0)
    assert series.meta["EXPOSURE"] == pytest.approx(200.0 + 900.0)
    assert series.meta["TELAPSE"] == pytest.approx(1500.0)


def test_equal_duplicates_are_resolved_by_job_label_not_arrival():
    one, other = part(0, 3, rate=1.0, seed=1), part(0, 3, rate=1.0, seed=2)
    for order in ([("x", one), ("w", other)], [("w", other), ("x", one)]):
        series = combine_lightcurves(order)
        assert series["job"].tolist() == ["w"] * 3
        np.testing.assert_allclose(series["rate"].value, other["rate"].value)


def test_empty_bins_do_not_count_as_exposure_and_lose_to_real_bins():
    gap = part(0, 4, fracexp=1.0)
    gap["empty"][:] = True
    gap["rate"][:] = np.nan
    series = combine_lightcurves([("a", gap), ("b", part(2, 4))])
    assert series["job"].tolist() == ["a", "a", "b", "b", "b", "b"]
    assert series.meta["ONTIME"] == pytest.approx(400.0)


def test_fits_light_curves_of_the_test_sky_stitch_with_header_keywords(tmp_path):
    from astroquery_mmoda.integral import lightcurve_to_timeseries
    from astroquery_mmoda.testing.integral_sky import sky_sources, write_isgri_lightcurve

    source = sky_sources("isgri")[0]
    path = write_isgri_lightcurve(tmp_path / "lc.fits", source)
    with fits.open(path) as hdul:
        header = hdul[1].header.copy()
        series = lightcurve_to_timeseries(hdul)
        curves = LightCurveSetCombiner()
        for job in ("second", "first"):  # the same job twice: every bin a duplicate
            mapping = type("Curves", (dict,), {})({source.name: series})
            mapping.hdulists = {source.name: hdul}
            curves.add(mapping, job=job)
    combined = curves.result()[source.name]
    assert len(combined) == len(series) and combined.meta["duplicates_removed"] == len(series)
    assert set(combined["job"]) == {"first"}
    assert combined.meta["ONTIME"] == pytest.approx(header["ONTIME"])
    good = ~series["empty"]
    np.testing.assert_allclose(combined["rate"].value[good], series["rate"].value[good])


@pytest.mark.parametrize("columns", [["rate"], ["time_bin"]])
def test_parts_without_the_needed_columns_are_refused(columns):
    series = part(0, 2)
    series.keep_columns(["time"] + columns)
    with pytest.raises(InvalidQueryError, match="'time_bin' and 'rate'"):
        LightCurveCombiner().add(series, job="a")


def test_nothing_to_combine_is_an_error():
    with pytest.raises(InvalidQueryError, match="no light curve"):
        LightCurveCombiner().result()
