"""Objects of interest added to a catalog (`astroquery_mmoda.catalogs`)."""
from pathlib import Path

import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from astroquery_mmoda.exceptions import InvalidQueryError
from astroquery_mmoda.integral import add_sources, select_sources
from astroquery_mmoda.params import check_catalog


def catalog():
    table = Table({"meta_ID": [0, 1], "src_names": ["4U 1700-377", "NEW_1"], "significance": [30.5, 9.0],
                   "ra": [255.98, 256.5], "dec": [-37.84, -38.0], "ISGRI_FLAG": [1, 0], "FLAG": [0, 0]})
    table.meta["instrument"] = "isgri"
    return table


def test_sources_by_position_and_by_name(monkeypatch):
    from astropy.coordinates import name_resolve

    recorded = Path(__file__).parent / "data" / "sesame_crab.txt"
    monkeypatch.setattr(name_resolve, "download_file", lambda url, *args, **kwargs: str(recorded))
    chosen = add_sources(select_sources(catalog()),
                         [("IGR J17091-3624 and a long name", SkyCoord(257.28, -36.41, unit="deg")), "Crab"])
    assert list(chosen["src_names"]) == ["4U 1700-377", "IGR J17091-3624 and a long name", "Crab"]
    assert list(chosen["meta_ID"]) == [0, 1, 2] and list(chosen["significance"]) == [30.5, 0.0, 0.0]
    assert chosen["ra"][2] == pytest.approx(83.63308333) and chosen.meta["instrument"] == "isgri"
    check_catalog(chosen, "isgri")  # still a catalog the methods take


def test_a_name_already_there_is_not_added_twice_and_bad_sources_are_refused():
    assert len(add_sources(catalog(), {"4U 1700-377": SkyCoord(0, 0, unit="deg")})) == 2
    with pytest.raises(InvalidQueryError, match="a source needs a name"):
        add_sources(catalog(), [(None, SkyCoord(0, 0, unit="deg"))])
    with pytest.raises(InvalidQueryError, match="src_names, ra and dec"):
        add_sources(Table({"x": [1]}), ["Crab"])
