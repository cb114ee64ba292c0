"""Catalogs both ways, ECSV tables, binaries, pictures, text and gravitational-wave products."""
import base64
import hashlib
import json
import pickle

import numpy as np
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, QTable, Table
from astropy.utils.exceptions import AstropyUserWarning

from astroquery_mmoda.exceptions import InvalidQueryError, ProtocolError
from astroquery_mmoda.products import catalog_from_dict, catalog_to_selected_catalog, decode_products
from .helpers import b64pickle, binary_item, CATALOG, ECSV, JWT, picture, PNG


def test_catalog_decoding_and_exact_round_trip():
    table = catalog_from_dict(dict(CATALOG, cat_meta={"event": "GW1"}))
    assert table.meta == {"event": "GW1", "FRAME": "fk5", "COORD_UNIT": "deg", "LON_NAME": "ra",
                          "LAT_NAME": "dec"}
    assert table["ra"].unit == u.deg and table["dec"].dtype == np.float64
    assert np.isnan(table["significance"][2]) and np.isnan(table["dec"][2])
    assert isinstance(table["NEW_SOURCE"], MaskedColumn) and table["NEW_SOURCE"].mask.tolist() == [
        False, True, False]
    assert table["src_names"].dtype == np.dtype("<U11")
    text = catalog_to_selected_catalog(table)
    assert json.loads(text) == CATALOG
    assert list(json.loads(text)) == ["cat_frame", "cat_coord_units", "cat_column_list",
                                      "cat_column_names", "cat_column_descr", "cat_lat_name",
                                      "cat_lon_name"]
    assert catalog_to_selected_catalog(catalog_from_dict(json.loads(text))) == text


def test_catalog_after_astropy_filtering_and_quantities():
    table = catalog_from_dict(CATALOG)
    bright = table[(table["significance"] > 200) | (table["meta_ID"] == 0)]
    bright = bright[[not name.startswith("NEW") for name in bright["src_names"]]]
    sent = json.loads(catalog_to_selected_catalog(bright))
    assert sent["cat_column_list"][1] == ["1A 0535+262", "Crab"]
    assert sent["cat_column_list"][5] == [-32768, None]
    qtable = QTable(bright)
    qtable["ra"] = qtable["ra"].to(u.arcmin)
    assert json.loads(catalog_to_selected_catalog(qtable))["cat_column_list"][3] == pytest.approx(
        [84.72, 83.63])
    masked = Table(bright, masked=True)
    masked["significance"].mask[0] = True
    assert json.loads(catalog_to_selected_catalog(masked))["cat_column_list"][2] == [None, 1358.72]


def test_catalog_defaults_and_required_columns():
    plain = Table({"meta_ID": [1], "src_names": ["Crab"], "significance": [np.float32(9)],
                   "ra": [83.6], "dec": [22.0], "v": [[1.0, np.nan]]})
    sent = json.loads(catalog_to_selected_catalog(plain))
    assert (sent["cat_frame"], sent["cat_coord_units"], sent["cat_lon_name"]) == ("fk5", "deg", "ra")
    assert sent["cat_column_descr"][2] == ["significance", "<f4"]
    assert sent["cat_column_descr"][5] == ["v", "<f8", [2]] and sent["cat_column_list"][5] == [[1.0, None]]
    with pytest.raises(InvalidQueryError, match="significance"):
        catalog_to_selected_catalog(Table({"meta_ID": [1], "src_names": ["x"], "ra": [1.0], "dec": [2.0]}))
    renamed = catalog_from_dict(dict(CATALOG, cat_lon_name="RA_OBJ"))
    with pytest.raises(InvalidQueryError, match="RA_OBJ"):
        catalog_to_selected_catalog(renamed)
    with pytest.raises(InvalidQueryError):
        catalog_to_selected_catalog({"not": "a table"})


@pytest.mark.parametrize("bad", [
    [], {"cat_column_names": ["a"], "cat_column_list": []},
    dict(CATALOG, cat_column_list=[[1], [2, 3]] + CATALOG["cat_column_list"][2:]),
    dict(CATALOG, cat_column_names="ra")])
def test_malformed_catalogs(bad):
    with pytest.raises(ProtocolError, match="catalog"):
        decode_products({"catalog": bad})


def test_ascii_tables_and_refused_binary_tables():
    ps = decode_products({"astropy_table_product_ascii_list": [
        {"name": "phot", "meta_data": json.dumps({"src_name": "Mrk 421", "product": "photometry"}),
         "ascii": ECSV, "binary": None},
        json.dumps({"name": "phot", "meta_data": "{}", "ascii": ECSV})]})
    assert list(ps) == ["phot_Mrk_421", "phot"]
    assert ps["phot"]["E"].unit == u.keV and len(ps["phot"]) == 2
    assert ps.meta["phot_Mrk_421"]["src_name"] == "Mrk 421"
    with pytest.raises(ProtocolError, match="unsupported") as refused:
        decode_products({"astropy_table_product_binary_list": [
            {"name": "t", "binary": b64pickle(Table({"a": [1]}), protocol=2), "ascii": None}]})
    assert "ask the service to send it as ECSV text" in str(refused.value)
    assert "use_binary=False" in str(refused.value)
    with pytest.raises(ProtocolError, match="not an ECSV"):  # never read as a file name
        decode_products({"astropy_table_product_ascii_list": [{"ascii": "/etc/passwd"}]})


def test_binary_products_new_and_legacy():
    fits_bytes = b"SIMPLE  =                    T" + bytes(50)
    ps = decode_products({"binary_data_product_list": [
        binary_item(fits_bytes, "spec"), json.dumps(binary_item(b"\xfa\xfb?>", "None")),
        base64.urlsafe_b64encode(b"root\x00\x01\xff\xfe").decode()]})
    assert list(ps) == ["spec", "binary", "binary_2"]
    assert ps["spec"] == fits_bytes and ps["spec"].suggested_suffix == ".fits"
    assert ps["spec"].name == "spec" and ps.meta["spec"]["md5"] == hashlib.md5(fits_bytes).hexdigest()
    assert ps["binary"].suggested_suffix == ".bin" and ps["binary"].name is None
    assert ps["binary_2"] == b"root\x00\x01\xff\xfe" and ps.meta["binary_2"] == {}
    assert "NamedBytes(name='spec'" in repr(ps["spec"])
    assert pickle.loads(pickle.dumps(ps["spec"])).suggested_suffix == ".fits"


@pytest.mark.parametrize("item, message", [
    (binary_item(b"abc", md5="0" * 32), "md5 mismatch"),
    ({"name": "x", "data": "abc$", "md5": None}, "not valid URL-safe base64"),
    ({"name": "x", "data": 12}, "not a base64 string"),
    ("not+base64/at all!", "legacy binary"),
    (["list"], "neither an object"),
])
def test_bad_binaries(item, message):
    with pytest.raises(ProtocolError, match=message):
        decode_products({"binary_data_product_list": [item]})


def test_pictures():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'
    ps = decode_products({"binary_image_product_list": [
        picture(PNG, filename="lc_plot.png"), picture(b"\xff\xd8\xff\xe0rest", "jpg", name="sky"),
        picture(svg, "svg"), picture(b"GIF89a...", None)]})
    assert list(ps) == ["lc_plot", "sky", "image", "image_2"]
    assert [ps[n].suggested_suffix for n in ps] == [".png", ".jpg", ".svg", ".gif"]
    assert ps.meta["sky"] == {"plot": "spectrum"} and ps.kind["sky"] == "image"
    with pytest.raises(ProtocolError, match="not an image"):
        decode_products({"binary_image_product_list": [picture(b"MZ\x90\x00 executable")]})
    with pytest.raises(ProtocolError, match="img_type 'png' but the data is jpeg"):
        decode_products({"binary_image_product_list": [picture(b"\xff\xd8\xff\xe0", "png")]})


def test_text_and_gw_products_and_ignored_keys():
    ps = decode_products({
        "text_product_list": [{"name": "summary", "value": "all good", "meta_data": {"uri": "x"}},
                              json.dumps({"name": "count", "value": 3}),
                              {"name": "fit", "value": {"a": 1.0}}],
        "gw_strain_product_list": [{"name": "Strain", "value": [1.0, 2.0], "t0": 1e9, "dt": 0.1}],
        "gw_spectrogram_product": {"value": [[1.0]], "x0": 0, "dx": 1, "yindex": [1.0]},
        "gw_skymap_product": {"skymaps": {"GW170817": {"name": None, "meta_data": "{}",
                                                       "data_unit_list": []}},
                              "contours": {"GW170817": {"levels": [50, 90], "contours": []}}},
        "progress_product_list": [{"name": "p", "value": 1}], "api_code": "import os",
        "prod_process_message": "", "session_id": "S", "extra_metadata": {}, "prod_uris": {},
        "analysis_parameters": json.dumps({"token": JWT, "src_name": f"x {JWT}"})})
    assert list(ps) == ["summary", "count", "fit", "Strain", "spectrogram", "skymap_GW170817",
                        "contours_GW170817", "p"]
    assert ps["summary"] == "all good" and ps["count"] == 3 and ps["fit"] == {"a": 1.0}
    assert ps.meta["summary"] == {"uri": "x"}
    assert [ps.kind[n] for n in ps] == ["text"] * 3 + ["gw", "gw", "fits", "gw", "progress"]
    assert ps["p"] == 1
    assert ps.meta["skymap_GW170817"] == {"event": "GW170817"}
    assert ps.analysis_parameters == {"src_name": "x <token>"}
    with pytest.warns(AstropyUserWarning, match=r"1 product\(s\) refused, 1 decoded .*"
                                                r"text_product_list.1. has no value"):
        ps = decode_products({"text_product_list": [{"value": 1}, {"name": "x"}]})
    assert list(ps) == ["text"] and dict(ps.refused) == {
        "text_product_list[1] (x)": "text_product_list[1] has no value"}
    with pytest.raises(ProtocolError, match="text_product_list.0. has no value"):
        decode_products({"text_product_list": [{"name": "x"}]})


def test_catalog_names_are_text_never_truncated():
    catalog = dict(CATALOG, cat_column_list=[[0, 7], ["Crab Nebula", "Café X-1 ☉"], [1.0, 2.0],
                                             [83.63, 1.0], [22.01, 2.0], [1, 2], [0.1, 0.2]])
    catalog["cat_column_descr"] = [["src_names", "|S4"] if name == "src_names" else [name, descr]
                                   for name, descr in CATALOG["cat_column_descr"]]
    table = catalog_from_dict(catalog)
    assert table["src_names"].dtype.kind == "U"
    assert table["src_names"].tolist() == ["Crab Nebula", "Café X-1 ☉"]
    assert all(isinstance(name, str) for name in table["src_names"])
    sent = json.loads(catalog_to_selected_catalog(table))
    assert sent["cat_column_list"][1] == ["Crab Nebula", "Café X-1 ☉"]
    wide = dict(CATALOG, cat_column_descr=[[n, "|S12" if n == "src_names" else d]
                                           for n, d in CATALOG["cat_column_descr"]])
    assert catalog_from_dict(wide)["src_names"].tolist() == ["1A 0535+262", "Crab", "NEW_1"]
    assert catalog_from_dict(wide)["src_names"].dtype == np.dtype("<U12")


def test_one_refused_product_does_not_lose_the_others():
    products = {"astropy_table_product_binary_list": [
        {"name": "spectrum", "binary": b64pickle(Table({"a": [1]}), protocol=2), "ascii": None}],
        "astropy_table_product_ascii_list": [{"name": "phot", "ascii": ECSV}],
        "binary_image_product_list": [picture(PNG, name="plot")],
        "text_product_list": "not a list"}
    with pytest.warns(AstropyUserWarning) as caught:
        ps = decode_products(products)
    assert list(ps) == ["phot", "plot"]
    assert ps["phot"]["E"].unit == u.keV and ps["plot"].startswith(PNG[:8])
    assert list(ps.refused) == ["astropy_table_product_binary_list[0] (spectrum)", "text_product_list"]
    assert "ECSV" in ps.refused["astropy_table_product_binary_list[0] (spectrum)"]
    assert "not a list" in ps.refused["text_product_list"]
    (warning,) = caught
    assert "2 product(s) refused, 2 decoded" in str(warning.message)
    assert "refused: astropy_table_product_binary_list[0] (spectrum), text_product_list" in repr(ps)
    assert dict(ps.select(src_name="x").refused) == dict(ps.refused)
