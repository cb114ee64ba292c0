"""User values to wire values: the functions of `astroquery_mmoda.params`, without a dispatcher."""
import json

import pytest
from astropy import units as u
from astropy.table import Table
from astropy.time import Time

from astroquery_mmoda import params
from astroquery_mmoda.exceptions import InvalidQueryError


def spec(name, *, unit=None, product=None, query=None, allowed=None, low=None, high=None):
    """One parameter description, as `parse_meta_data` makes it."""
    return {"name": name, "default": None, "unit": unit, "query": query, "product": product,
            "allowed_values": allowed, "min": low, "max": high, "optional": None}


PRODUCTS = {"numerical": "numerical_query", "table": "table_query"}
PARAMETERS = [spec("src_name", query="src_query"), spec("token", query="src_query"),
              spec("T1", unit="sec", query="src_query"),
              spec("p", unit="W", product="numerical", query="numerical_query", low=0, high=10),
              spec("mode", product="table", query="table_query", allowed=["fast", "slow"])]
META = (PRODUCTS, PARAMETERS)


# -- names -------------------------------------------------------------------------------

def test_suggest_names_close_candidates_only():
    assert params.suggest("src_nam", ["src_name", "RA"]) == " (did you mean 'src_name'?)"
    assert params.suggest("zzz", ["src_name", "RA"]) == ""


@pytest.mark.parametrize("value", ["", None, 3])
def test_check_name_wants_a_non_empty_string(value):
    with pytest.raises(InvalidQueryError, match=f"instrument must be a non-empty string, not {value!r}"):
        params.check_name("instrument", value)


def test_check_request_refuses_reserved_names_and_query_types():
    params.check_request("empty", "numerical", "Dummy", {"p": 1})
    with pytest.raises(InvalidQueryError, match=r"query_type must be one of \('Real', 'Dummy'\)"):
        params.check_request("empty", "numerical", "real", {})
    with pytest.raises(InvalidQueryError, match="^token cannot be given as parameters: the client sets it"):
        params.check_request("empty", "numerical", "Real", {"token": "x"})
    with pytest.raises(InvalidQueryError, match="^api, session_id cannot .* sets them"):
        params.check_request("empty", "numerical", "Real", {"session_id": "x", "api": 1})


def test_split_request_reads_tuples_and_dicts():
    assert params.split_request(("a", "b", {"p": 1}), "Real") == ("a", "b", "Real", {"p": 1})
    item = {"instrument": "a", "product": "b", "p": 1, "query_type": "Dummy"}
    assert params.split_request(item, "Real") == ("a", "b", "Dummy", {"p": 1})
    assert item["instrument"] == "a"  # the caller's dict is left alone
    with pytest.raises(InvalidQueryError, match="needs 'instrument' and 'product'"):
        params.split_request({"product": "b"}, "Real")
    with pytest.raises(InvalidQueryError, match="not int"):
        params.split_request(42, "Real")


def test_product_parameters_keep_the_shared_queries():
    names = [p["name"] for p in params.product_parameters("empty", "numerical", META)]
    assert names == ["src_name", "token", "T1", "p"]
    with pytest.raises(InvalidQueryError, match=r"empty has no product 'numerica' \(did you mean "
                                                r"'numerical'\?\); its products are: numerical, table"):
        params.product_parameters("empty", "numerica", META)


# -- values ------------------------------------------------------------------------------

def test_wire_value_converts_times_and_quantities():
    assert params.wire_value("T1", Time(52713.0, format="mjd"), "sec") == "2003-03-15T00:00:00.000"
    assert params.wire_value("T1", 2 * u.min, "sec") == 120.0
    assert params.wire_value("d", 1 * u.d, "days") == 1.0
    assert params.wire_value("p", 5, None) == 5
    with pytest.raises(InvalidQueryError, match="T1 must be a single time"):
        params.wire_value("T1", Time([52713.0, 52714.0], format="mjd"), None)
    with pytest.raises(InvalidQueryError, match="unit is unknown without validation"):
        params.wire_value("p", 5 * u.W, None)
    with pytest.raises(InvalidQueryError, match="p is given in m, which cannot be converted to the "
                                                "parameter's unit 'W'"):
        params.wire_value("p", 5 * u.m, "W")
    with pytest.raises(InvalidQueryError, match="p cannot be a Table"):
        params.wire_value("p", Table({"a": [1]}), None)


def test_wire_value_sends_a_catalog_as_selected_catalog():
    catalog = Table({"meta_ID": [1], "src_names": ["Crab"], "significance": [20.0],
                     "ra": [83.63], "dec": [22.01]})
    wire = json.loads(params.wire_value("selected_catalog", catalog, None))
    assert wire["cat_column_names"][:2] == ["meta_ID", "src_names"]
    assert wire["cat_column_list"][1] == ["Crab"]


def test_check_restrictions():
    params.check_restrictions("p", 10, {"min": 0, "max": 10})
    params.check_restrictions("p", True, {"min": 5})  # booleans are not numbers here
    with pytest.raises(InvalidQueryError, match="p=11 is above the allowed maximum 10"):
        params.check_restrictions("p", 11, {"min": 0, "max": 10})
    with pytest.raises(InvalidQueryError, match="p=-1 is below the allowed minimum 0"):
        params.check_restrictions("p", -1, {"min": 0})
    with pytest.raises(InvalidQueryError, match=r"mode='x' is not allowed; choose one of \['a'\]"):
        params.check_restrictions("mode", "x", {"allowed_values": ["a"]})


def test_restrictions_refuse_containers_and_never_print_huge_values():
    bounded = spec("n", low=2, high=8)
    with pytest.raises(InvalidQueryError, match=r"n=a int is above the allowed maximum 8"):
        params.check_restrictions("n", 10 ** 5000, bounded)
    with pytest.raises(InvalidQueryError, match="n must be a single value, not a set"):
        params.check_restrictions("n", {5}, bounded)
    numeric_default = dict(spec("p"), default=10.0)
    with pytest.raises(InvalidQueryError, match="p must be a single value, not a list"):
        params.check_restrictions("p", [1, 2], numeric_default)
    params.check_restrictions("scw_list", ["066500220010.001"], dict(spec("scw_list"), default=""))


def test_swapped_times_are_refused_as_the_integral_methods_refuse_them():
    specs = [spec("T1", query="src_query"), spec("T2", query="src_query")]
    with pytest.raises(InvalidQueryError, match=r"T1 \(2003-03-16T00:00:00.000\) must be before T2"):
        params.check_params("isgri", "isgri_image", {"T1": Time("2003-03-16"), "T2": Time("2003-03-15")},
                            specs)
    with pytest.raises(InvalidQueryError, match=r"T1 \(52714.0\) must be before T2 \(52713.0\)"):
        params.check_params("isgri", "isgri_image", {"T1": 52714.0, "T2": 52713.0, "T_format": "mjd"}, specs)
    assert params.check_params("isgri", "isgri_image", {"T1": "2003-03-15", "T2": "2003-03-16"}, specs)
    assert params.check_params("isgri", "isgri_image", {"T1": "2003-03-15"}, specs) == {"T1": "2003-03-15"}


def test_check_params_converts_and_validates():
    specs = params.product_parameters("empty", "numerical", META)
    assert params.check_params("empty", "numerical", {"p": 5 * u.W, "T1": 1 * u.min, "dry_run": True},
                               specs) == {"p": 5.0, "T1": 60.0, "dry_run": True}
    with pytest.raises(InvalidQueryError, match=r"empty/numerical has no parameter 'pp' \(did you mean "
                                                r"'p'\?\)\. See Mmoda.get_parameters"):
        params.check_params("empty", "numerical", {"pp": 1}, specs)
    with pytest.raises(InvalidQueryError, match="above the allowed maximum"):
        params.check_params("empty", "numerical", {"p": 11}, specs)


def test_convert_unchecked_knows_units_only_from_a_description():
    assert params.convert_unchecked({"T1": 1 * u.min, "x": 1}, META) == {"T1": 60.0, "x": 1}
    with pytest.raises(InvalidQueryError, match="unit is unknown"):
        params.convert_unchecked({"T1": 1 * u.min})


def test_payload():
    assert params.payload("empty", "numerical", "Real", {"p": "5"}) == {
        "p": "5", "instrument": "empty", "product_type": "numerical", "query_type": "Real",
        "query_status": "new", "api": "True"}


def test_parameters_table_leaves_out_the_token():
    table = params.parameters_table(params.product_parameters("empty", "numerical", META),
                                    instrument="empty", product="numerical", server="http://x")
    assert list(table["name"]) == ["src_name", "T1", "p"]
    assert list(table["unit"]) == ["", "sec", "W"]
    assert table["max"][2] == 10
    assert table.meta == {"instrument": "empty", "product": "numerical", "server": "http://x"}


def test_times_agree_with_t_format_and_mjd_numbers_get_a_hint():
    from astropy.time import Time

    t1 = Time("2003-03-15T23:27:40")
    assert params.agree_times({"T1": t1, "T_format": "mjd"})["T1"] == pytest.approx(t1.utc.mjd)
    assert params.agree_times({"T1": "2003-03-15", "T_format": "mjd"})["T1"] == 52713.0
    with pytest.raises(InvalidQueryError, match=r"looks like an MJD: give T1=Time\(52713.9775"):
        params.agree_times({"T1": 52713.9775})
    with pytest.raises(InvalidQueryError, match="looks like an MJD"):
        params.time_range(52713.9775, 52714.0)


def test_skycoord_values_and_catalogs_are_converted_or_refused():
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    crab = SkyCoord(83.63308, 22.0145, unit="deg")
    assert params.wire_value("RA", crab, "deg") == 83.63308
    assert params.wire_value("DEC", crab, "deg") == 22.0145
    with pytest.raises(InvalidQueryError, match="cannot be a SkyCoord"):
        params.wire_value("src_name", crab, None)
    with pytest.raises(InvalidQueryError, match="must be a catalog Table"):
        params.wire_value("selected_catalog", ["4U 1700-377"], None)
    empty = Table({"src_names": [], "significance": []}, meta={"instrument": "isgri"})
    with pytest.raises(InvalidQueryError, match="no rows"):
        params.check_catalog(empty)
    jemx = Table({"src_names": ["Crab"], "significance": [9.0]}, meta={"instrument": "jemx"})
    with pytest.raises(InvalidQueryError, match="comes from a jemx image"):
        params.check_catalog(jemx, "isgri")
