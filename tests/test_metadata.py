"""Unit tests of the two meta-data dialects (`astroquery_mmoda.metadata`); offline."""
import json

import pytest

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.metadata import parse_meta_data


# -- the two meta-data dialects ---------------------------------------------------------

SOURCE_QUERY = [{"query_name": "src_query"},
                {"name": "RA", "units": "deg", "value": 10.0},
                {"name": "T1", "units": "isot", "value": "2017-03-06T13:26:48.000"},
                {"name": "token", "units": "str", "value": None}]
PRODUCT_QUERY = [{"query_name": "restricted_query"}, {"product_name": "restricted"},
                 {"name": "band", "units": "str", "value": "g"}]


def test_meta_data_1_3_3_string_blocks():
    raw = [[{"instrumet": "x"}, {"prod_dict": {"restricted": "restricted_query"}},
            json.dumps(SOURCE_QUERY), json.dumps(PRODUCT_QUERY)]]
    products, parameters = parse_meta_data(raw)
    assert products == {"restricted": "restricted_query"}
    band = [p for p in parameters if p["name"] == "band"][0]
    assert band["product"] == "restricted" and band["allowed_values"] is None
    assert [p["name"] for p in parameters] == ["RA", "T1", "token", "band"]


def test_meta_data_1_3_6_lists_with_restrictions():
    source = [dict(p, restrictions={"is_optional": False}) if "name" in p else p
              for p in SOURCE_QUERY]
    product = [{"query_name": "restricted_query"}, {"product_name": "restricted"},
               {"name": "band", "units": "str", "value": "g", "owl_uri": ["x"],
                "restrictions": {"is_optional": False, "allowed_values": ["g", "r", "z"]}},
               {"name": "size", "units": "arcmin", "value": 3.0,
                "restrictions": {"is_optional": True, "min_value": 0.1, "max_value": 10}}]
    products, parameters = parse_meta_data(
        [[{"instrumet": "x"}, {"prod_dict": {"restricted": "restricted_query"}}, source, product]])
    by_name = {p["name"]: p for p in parameters}
    assert by_name["band"]["allowed_values"] == ["g", "r", "z"]
    assert by_name["size"]["min"] == 0.1 and by_name["size"]["max"] == 10
    assert by_name["size"]["optional"] is True and by_name["RA"]["optional"] is False


@pytest.mark.parametrize("raw", [[], [[]], [["not json"]], [[{"instrumet": "x"}, 5]]])
def test_meta_data_malformed(raw):
    with pytest.raises(ProtocolError):
        parse_meta_data(raw)
