import random

import pytest
from astropy.table import Table
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda.campaigns.plan import (JobPlan, max_scw_per_job, normalize_scw_list,
                                             revolution, split_scw_list)


def scws(revolutions, per_revolution):
    return [f"{rev:04d}{i:04d}0010.001" for rev in revolutions for i in range(1, per_revolution + 1)]


def test_split_by_count_covers_every_scw_once_within_the_limit():
    items = scws(range(100, 110), 37)  # 370 ScW
    plans = split_scw_list(items, max_per_job=50)
    assert [len(p) for p in plans] == [50] * 7 + [20]
    flat = [scw for p in plans for scw in p.scw_list]
    assert flat == sorted(items)
    assert plans[0].label == "scw0001-0050" and plans[-1].label == "scw0351-0370"
    assert all(isinstance(p, JobPlan) and isinstance(p.scw_list, tuple) for p in plans)


def test_split_is_deterministic_whatever_the_order_and_repeats():
    items = scws(range(665, 672), 12)
    shuffled = items + items[:5]
    random.Random(3).shuffle(shuffled)
    for by in ("count", "revolution"):
        assert split_scw_list(items, max_per_job=20, by=by) == \
            split_scw_list(shuffled, max_per_job=20, by=by)


def test_split_by_revolution_keeps_each_job_in_one_revolution():
    items = scws([665], 120) + scws([666], 3)
    plans = split_scw_list(items, max_per_job=50, by="revolution")
    assert [(p.label, len(p)) for p in plans] == [("rev0665a", 50), ("rev0665b", 50),
                                                  ("rev0665c", 20), ("rev0666", 3)]
    assert all(len(p.revolutions) == 1 for p in plans)
    assert plans[-1].revolutions == [666]


def test_hpc_limit_and_table_input():
    table = Table({"scw_id": scws([1000], 600)})
    plans = split_scw_list(table, max_per_job=max_scw_per_job(["unige-hpc-full"]))
    assert [len(p) for p in plans] == [500, 100]
    assert max_scw_per_job() == 50 and max_scw_per_job(["other"]) == 50
    assert max_scw_per_job(("unige-hpc-extreme",)) == 500


def test_revolution_and_normalize():
    assert revolution("175200330010.001") == 1752
    assert normalize_scw_list(" 066500220010.001 ,066500220010.001") == ["066500220010.001"]


@pytest.mark.parametrize("bad, message", [
    ([], "it is empty"), (["0665"], "not '0665'"), ("066500220010.001,x", "not 'x'"),
    (Table({"id": ["066500220010.001"]}), "'scw_id' column"), (42, "not int")])
def test_bad_lists_are_refused(bad, message):
    with pytest.raises(InvalidQueryError, match=message):
        split_scw_list(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_per_job=0), "positive integer"), (dict(max_per_job=True), "positive integer"),
    (dict(max_per_job=501), "above the largest"), (dict(by="month"), "'count' or 'revolution'")])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(InvalidQueryError, match=message):
        split_scw_list(["066500220010.001"], **kwargs)
