"""Pointings from HEASARC's intscw table.

HEASARC cannot be reached from the test machines: only the network is mocked.
``Heasarc.query_tap`` (the one request) answers with the recorded VOTable
tests/data/heasarc_intscw_crab.xml, whose shape follows HEASARC's documentation
of intscw and astroquery's own heasarc tests; everything else (the ADQL,
the VOTable parsing, the shaping) runs for real.
"""
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from astropy.time import Time
from astroquery.exceptions import InvalidQueryError
from astroquery.heasarc import Heasarc
from pyvo.dal import TAPResults

from astroquery_mmoda.campaigns.plan import split_scw_list
from astroquery_mmoda.campaigns.pointings import (find_pointings, pointings_from_scw_list,
                                                  pointings_query, shape_pointings)

RECORDING = Path(__file__).parent.parent / "data" / "heasarc_intscw_crab.xml"
CRAB = SkyCoord(83.633, 22.0145, unit="deg")


@pytest.fixture
def recorded_tap(monkeypatch):
    sent = []

    def query_tap(self, query, *, maxrec=None):
        sent.append((query, maxrec))
        return TAPResults(parse(str(RECORDING)))

    monkeypatch.setattr(type(Heasarc), "query_tap", query_tap)
    return sent


def test_pointings_from_the_recorded_answer(recorded_tap):
    table = find_pointings(CRAB, start_time="2003-01-30", end_time="2003-02-10", radius=10 * u.deg,
                           maxrec=5000)
    (query, maxrec), = recorded_tap
    assert maxrec == 5000
    assert query.startswith("SELECT scw_id, scw_ver, scw_type, ra, dec, start_date, end_date, good_isgri "
                            "FROM intscw WHERE CONTAINS(POINT('ICRS',ra,dec),"
                            "CIRCLE('ICRS',83.633,22.0145,10.0))=1")
    assert "scw_type = 'POINTING'" in query
    assert table.colnames == ["scw_id", "revolution", "start_time", "end_time", "ra", "dec", "good_isgri"]
    assert table["scw_id"].tolist() == ["004300020010.001", "004300030010.001", "004300040010.001",
                                        "004300050010.001", "004400010010.001", "004400020010.001",
                                        "004400030010.001"]  # no slews
    assert table["revolution"].tolist() == [43, 43, 43, 43, 44, 44, 44]
    assert isinstance(table["start_time"], Time) and table["start_time"].scale == "utc"
    assert table["start_time"][0].mjd == pytest.approx(52670.1035)
    assert np.all(table["end_time"] > table["start_time"])
    assert table["ra"].unit == u.deg and table["ra"][3] == pytest.approx(83.63)
    assert table["good_isgri"].unit == u.s and table.meta["source"] == "HEASARC intscw"
    assert [len(p) for p in split_scw_list(table, max_per_job=50, by="revolution")] == [4, 3]


def test_minimum_good_time_and_time_range_are_applied(recorded_tap):
    table = find_pointings(CRAB, start_time="2003-01-30", end_time="2003-02-01T00:00:00",
                           min_good_isgri=1000 * u.s)
    query = recorded_tap[0][0]
    assert "good_isgri >= 1000.0" in query
    assert f"start_date <= {float(Time('2003-02-01').mjd)!r}" in query
    # the answer is checked again: the 410 s ScW and revolution 44 (after the end) are dropped
    assert table["scw_id"].tolist() == ["004300020010.001", "004300030010.001", "004300050010.001"]


def test_query_is_built_without_any_request():
    query = pointings_query("83.63 22.01", start_time="2003-02-01", end_time="2003-02-02", radius=5 * u.deg)
    assert "CIRCLE('ICRS',83.63,22.01,5.0)" in query and "good_isgri" not in query.split("WHERE")[1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(position="nowhere"), "not a position"),
    (dict(start_time="2003-02-02", end_time="2003-02-01"), "before end_time"),
    (dict(start_time="yesterday"), "must be times"),
    (dict(radius=5 * u.s), "must be an angle"),
    (dict(min_good_isgri=-1), "min_good_isgri")])
def test_bad_requests_are_refused_before_any_request(kwargs, message):
    options = dict(position=CRAB, start_time="2003-02-01", end_time="2003-02-02")
    options.update(kwargs)
    position = options.pop("position")
    with pytest.raises(InvalidQueryError, match=message):
        pointings_query(position, **options)


def test_upper_case_columns_and_integer_versions_are_understood():
    from astropy.table import Table

    answer = Table({"SCW_ID": ["4300020010"], "SCW_VER": [1], "SCW_TYPE": ["pointing"], "RA": [1.0],
                    "DEC": [2.0], "START_DATE": [52670.0], "END_DATE": [52670.1], "GOOD_ISGRI": [100.0]})
    assert shape_pointings(answer)["scw_id"].tolist() == ["004300020010.001"]
    with pytest.raises(InvalidQueryError, match="lacks the columns good_isgri"):
        shape_pointings(answer[["SCW_ID", "SCW_VER", "SCW_TYPE", "RA", "DEC", "START_DATE", "END_DATE"]])


def test_a_users_own_list():
    table = pointings_from_scw_list("004400020010.001,004300020010.001")
    assert table["scw_id"].tolist() == ["004300020010.001", "004400020010.001"]
    assert table["revolution"].tolist() == [43, 44]
    assert table["ra"].mask.all() and table.meta["source"] == "user list"
    with pytest.raises(InvalidQueryError, match="not 'x'"):
        pointings_from_scw_list(["x"])
