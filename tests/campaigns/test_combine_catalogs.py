"""Merging the source catalogs of many image jobs."""
import json

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda.campaigns import CatalogCombiner, combine_catalogs
from astroquery_mmoda.products import catalog_to_selected_catalog


def catalog(rows):
    names, significance, ra, dec = zip(*rows)
    table = Table({"meta_ID": np.arange(len(rows)), "src_names": list(names),
                   "significance": list(significance), "ra": list(ra), "dec": list(dec),
                   "ERR_RAD": [0.02] * len(rows)})
    table["ra"].unit = table["dec"].unit = u.deg
    table.meta.update(FRAME="fk5", COORD_UNIT="deg", LON_NAME="ra", LAT_NAME="dec")
    return table


def test_a_source_seen_by_several_jobs_is_listed_once_with_its_best_row():
    merged = combine_catalogs([
        ("rev0100", catalog([("GX 339-4", 30.0, 255.706, -48.790), ("4U 1630-47", 12.0, 248.504, -47.393)])),
        ("rev0101", catalog([("GX 339-4", 45.0, 255.707, -48.789)])),
        ("rev0102", catalog([("4U 1630-47", 11.0, 248.505, -47.394), ("GX 339-4", 38.0, 255.705, -48.79)])),
    ], meta={"instrument": "isgri"})
    assert merged["src_names"].tolist() == ["GX 339-4", "4U 1630-47"]
    assert merged["significance"].tolist() == [45.0, 12.0]
    assert merged["ra"][0] == pytest.approx(255.707)  # the position of the best detection
    assert merged["n_jobs"].tolist() == [3, 2]
    assert merged["jobs"].tolist() == ["rev0100,rev0101,rev0102", "rev0100,rev0102"]
    assert merged["meta_ID"].tolist() == [0, 1] and merged.meta["instrument"] == "isgri"
    assert merged["ra"].unit == u.deg


def test_new_sources_match_by_position_not_by_their_per_job_name():
    merged = combine_catalogs([
        ("a", catalog([("NEW_1", 8.0, 10.0, 20.0), ("NEW_2", 7.5, 30.0, -5.0)])),
        ("b", catalog([("NEW_1", 9.0, 30.01, -5.01)])),  # b's NEW_1 is a's NEW_2 (0.8 arcmin away)
    ])
    assert len(merged) == 2
    assert merged["significance"].tolist() == [9.0, 8.0]
    assert merged["jobs"].tolist() == ["a,b", "a"]
    assert merged["ra"].tolist() == pytest.approx([30.01, 10.0])


def test_a_different_name_at_the_same_place_is_the_same_source_and_the_radius_decides():
    parts = [("a", catalog([("IGR J17091-3624", 20.0, 257.28, -36.41)])),
             ("b", catalog([("IGR J17091-362", 25.0, 257.30, -36.41)]))]  # 0.97 arcmin apart
    assert len(combine_catalogs(parts)) == 1
    assert len(combine_catalogs(parts, match_radius=0.5 * u.arcmin)) == 2


def test_the_merged_catalog_can_be_sent_back_as_a_selected_catalog():
    merged = combine_catalogs([("a", catalog([("Crab", 50.0, 83.63, 22.01)])),
                               ("b", catalog([("Crab", 60.0, 83.63, 22.01), ("NEW_1", 8.0, 80.0, 20.0)]))])
    selected = json.loads(catalog_to_selected_catalog(merged))
    assert selected["cat_column_list"][selected["cat_column_names"].index("src_names")] == ["Crab", "NEW_1"]


def test_empty_and_bad_catalogs():
    combiner = CatalogCombiner()
    assert len(combiner.result(meta={"a": 1})) == 0 and combiner.result(meta={"a": 1}).meta == {"a": 1}
    combiner.add(catalog([("Crab", 50.0, 83.63, 22.01)])[:0], job="empty")
    assert len(combiner) == 0
    with pytest.raises(InvalidQueryError, match="catalog of job x has no significance"):
        combiner.add(Table({"src_names": ["a"], "ra": [1.0], "dec": [2.0]}), job="x")
