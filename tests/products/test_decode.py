"""decode_products: naming, error messages, and fuzzing of the products dictionary."""
import base64
import json
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products import ProductSet, decode_products
from .helpers import b64pickle, CATALOG, ECSV, FUZZ_SEEDS, named_set, PNG


def test_naming_rule():
    ps = named_set()
    assert list(ps) == ["isgri_lc_Crab", "isgri_lc_Crab_2", "isgri_spectrum_Vela_X-1", "isgri_rmf",
                        "catalog_2", "spectrum_Crab", "blob_../../etc/passwd", "catalog", "phot",
                        "plot", "note"]
    assert ps.kind["catalog"] == "catalog" and ps["catalog"].meta["FRAME"] == "fk5"
    assert ps.job_id == "J42"
    with pytest.raises(TypeError):
        ps["x"] = 1  # read-only
    with pytest.raises(TypeError):
        ps.meta["isgri_rmf"] = {}


def test_errors_never_carry_huge_data():
    huge = "A" * 100000 + "!"
    with pytest.raises(ProtocolError) as info:
        decode_products({"numpy_data_product_list": [{"data_unit_list": [
            {"hdu_type": "weird" + huge}]}]})
    assert len(str(info.value)) < 1000
    with pytest.raises(ProtocolError) as info:
        decode_products({"text_product_list": [huge]})
    assert len(str(info.value)) < 1000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20)
PRODUCT_KEYS = ["numpy_data_product", "numpy_data_product_list", "binary_data_product_list",
                "catalog", "astropy_table_product_ascii_list", "astropy_table_product_binary_list",
                "binary_image_product_list", "text_product_list", "gw_strain_product_list",
                "gw_spectrogram_product", "gw_skymap_product", "analysis_parameters", "job_id"]
unit_fields = st.fixed_dictionaries({}, optional={
    "name": json_values, "hdu_type": st.sampled_from(["primary", "image", "bintable", "table", None, "x"]),
    "header": json_values | st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    "binarys": st.none() | st.text(max_size=30) | st.sampled_from([b64pickle(np.ones(2)), b64pickle(
        np.array([(1,)], dtype=[("a", "i4")])), b64pickle([1, 2]), b64pickle(FUZZ_SEEDS)]),
    "units_dict": json_values, "data": json_values})
structured = st.fixed_dictionaries({}, optional={
    "numpy_data_product_list": st.lists(st.fixed_dictionaries(
        {"data_unit_list": st.lists(unit_fields | json_values, max_size=3)},
        optional={"name": json_values, "meta_data": json_values}), max_size=2),
    "catalog": st.fixed_dictionaries({}, optional={key: json_values for key in CATALOG}),
    "binary_data_product_list": st.lists(json_values | st.fixed_dictionaries(
        {"data": st.text(max_size=20)}, optional={"md5": json_values, "name": json_values}), max_size=3),
    "binary_image_product_list": st.lists(json_values | st.fixed_dictionaries(
        {"b64data": st.sampled_from(["", base64.urlsafe_b64encode(PNG).decode(), "@@"])},
        optional={"img_type": json_values, "metadata": json_values}), max_size=2),
    "text_product_list": st.lists(json_values, max_size=3),
    "astropy_table_product_ascii_list": st.lists(json_values | st.fixed_dictionaries(
        {"ascii": st.sampled_from([ECSV, ECSV[:40], "a b\n1 2\n"]) | st.text(max_size=30)}), max_size=2),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(PRODUCT_KEYS), json_values, max_size=6) | structured
       | json_values)
def test_fuzzed_products_raise_only_protocol_error(products):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        try:
            ps = decode_products(products)
        except ProtocolError:
            return
    repr(ps)
    assert isinstance(ps, ProductSet)


def test_doubly_encoded_table_meta_data_is_read_without_a_warning():
    # nb2workflow tables carry their meta-data as a JSON string of a JSON string.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ps = decode_products({"astropy_table_product_ascii_list": [
            {"name": "phot", "ascii": ECSV, "meta_data": '"{}"'},
            {"name": "lc", "ascii": ECSV, "meta_data": json.dumps(json.dumps({"src_name": "Crab"}))}]})
    assert list(ps) == ["phot", "lc_Crab"]
    assert ps.meta["phot"] == {} and ps.meta["lc_Crab"] == {"src_name": "Crab"}
    with pytest.warns(AstropyUserWarning, match="not a JSON object"):
        ps = decode_products({"astropy_table_product_ascii_list": [
            {"name": "t", "ascii": ECSV, "meta_data": json.dumps(json.dumps(json.dumps({})))}]})
    assert ps.meta["t"] == {"raw": json.dumps(json.dumps(json.dumps({})))}


def test_echo_progress_and_unknown_keys_are_products(tmp_path):
    echo = {"src_name": "1E 1740.7-2942", "RA": 265.97845833, "token": None, "p": 10.0,
            "struct": {"a": [1, 2]}, "optional_def_none": None}
    ps = decode_products({"echo": echo, "job_id": "0a5cf9ccde3eb0fa", "session_id": "S",
                          "input_prod_list": [], "api_code": "print(1)", "analysis_parameters": {}})
    assert list(ps) == ["echo"] and ps.kind["echo"] == "echo"
    assert ps["echo"] == {key: value for key, value in echo.items() if key != "token"}
    # the dispatcher's return_progress demonstration instrument answers its product as ``p``
    ps = decode_products({"p": 5, "job_id": "25359762b667880d", "input_prod_list": []})
    assert list(ps) == ["p"] and ps["p"] == 5 and ps.kind["p"] == "other"
    html = "<div>step 3 of 7</div>"
    ps = decode_products({"progress_product_list": [{"name": "progress", "value": html}],
                          "extra_metadata": {"progress": {}}, "prod_uris": {"progress": None},
                          "numpy_data_product_list": [], "text_product_list": []})
    assert list(ps) == ["progress"] and ps["progress"] == html and ps.kind["progress"] == "progress"
    ps = decode_products({"progress_product_html_output": [html], "name": ["progress"],
                          "file_name": [], "image": [], "prod_process_message": ""})
    assert list(ps) == ["progress"] and ps["progress"] == html
    ps = decode_products({"echo": echo, "p": "text", "progress_product_list": [{"value": html}]})
    written = ps.write(tmp_path)
    assert [path.name for path in written] == ["echo.json", "progress.txt", "p.json"]
    assert json.loads(written[0].read_text())["struct"] == {"a": [1, 2]}
    assert written[1].read_text() == html and json.loads(written[2].read_text()) == "text"
    with pytest.raises(ProtocolError, match=r"progress_product_list\[0\] has no value"):
        decode_products({"progress_product_list": [{"name": "progress"}]})


def test_released_data_units_leave_the_answer_once_decoded():
    """``release=True``: the text of each large data unit goes as soon as it is decoded."""
    from astropy.io import fits

    from .helpers import encode_product

    large = fits.ImageHDU(np.arange(400_000, dtype=np.float64), name="BIG")
    small = fits.ImageHDU(np.arange(10, dtype=np.float64), name="SMALL")
    products = {"numpy_data_product_list": [encode_product([fits.PrimaryHDU(), large, small])]}
    kept = decode_products(json.loads(json.dumps(products)))
    units = products["numpy_data_product_list"][0]["data_unit_list"]
    released = decode_products(products, release=True)
    assert units[1]["binarys"] is None and isinstance(units[2]["binarys"], str)
    for result in (kept, released):
        hdul = result[next(iter(result))]
        assert hdul["BIG"].data.tolist() == list(range(400_000)) and hdul["SMALL"].data[-1] == 9
