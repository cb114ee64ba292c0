"""FITS-like products (NumpyDataProduct): data units, headers, units and their errors."""
import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from astroquery_mmoda.exceptions import ProtocolError
from astroquery_mmoda.products import decode_products
from .helpers import assert_same_fits, b64pickle, encode_product, encode_unit, make_fits, reopened


def test_numpy_product_round_trip(tmp_path):
    make_fits(tmp_path / "t.fits")
    with fits.open(tmp_path / "t.fits") as hdul:
        hdul[2].data["MATRIX"], hdul[2].data["BIG"]  # noqa: B018
        product = encode_product(hdul, meta={"src_name": "Crab", "product": "isgri_lc"})
    ps = decode_products({"numpy_data_product_list": [product]})
    assert list(ps) == ["lc_Crab"]
    assert ps.kind["lc_Crab"] == "fits"
    assert ps.meta["lc_Crab"] == {"src_name": "Crab", "product": "isgri_lc"}
    with fits.open(tmp_path / "t.fits") as original:
        assert_same_fits(ps["lc_Crab"], original)
    assert "EXTNAME" not in ps["lc_Crab"][0].header


def test_numpy_product_units_dict_extname_and_no_data():
    table = fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=[1.0, 2.0]),
                                           fits.Column("RATE", "E", array=[3.0, 4.0])])
    units = [{"data": None, "dt": None, "name": "PRIMARY", "binarys": None, "meta_data": {},
              "hdu_type": "primary", "units_dict": None,
              "header": {"SIMPLE": True, "BITPIX": 8, "NAXIS": 0, "EXTEND": True}},
             encode_unit(table, units_dict={"TIME": "d", "RATE": "count/s"}),
             {"name": "PLAIN", "hdu_type": "bintable", "header": {"TTYPE1": "E", "TUNIT1": "keV"},
              "binarys": b64pickle(np.array([(1.0,)], dtype=[("E", "f8")])), "dt": "x"},
             {"name": "IMG", "hdu_type": "image", "header": {"BUNIT": "ct", "NAXIS": 2},
              "binarys": b64pickle(np.ones((2, 2), np.float32))}]
    units[1]["name"] = "LC"
    hdul = decode_products({"numpy_data_product": {"name": None, "meta_data": None,
                                                   "data_unit_list": units}})["numpy_data_product"]
    assert [h.name for h in hdul] == ["PRIMARY", "LC", "PLAIN", "IMG"]
    assert hdul[0].data is None
    assert [c.unit for c in hdul[1].columns] == ["d", "count/s"]
    assert hdul[2].columns["E"].unit == "keV"
    assert hdul[3].header["BUNIT"] == "ct" and hdul[3].data.dtype == np.float32
    assert reopened(hdul)[1].header["TUNIT1"] == "d"


def test_numpy_product_meta_data_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    legacy = f"{{'src_name': __import__('os').system('touch {marker}')}}"
    product = {"name": "x", "meta_data": legacy, "data_unit_list": []}
    with pytest.warns(AstropyUserWarning, match="not a JSON object"):
        ps = decode_products({"numpy_data_product_list": [product, dict(product, name="y")]})
    assert ps.meta["x"] == {"raw": legacy} and ps.meta["y"] == {"raw": legacy}
    assert not marker.exists()
    ps = decode_products({"numpy_data_product_list": [dict(product, meta_data='{"a": NaN}')]})
    assert np.isnan(ps.meta["x"]["a"])


@pytest.mark.parametrize("unit, message", [
    ({"hdu_type": "image", "binarys": "not base64!"}, "not valid base64"),
    ({"hdu_type": "image", "binarys": "abc"}, "not valid base64"),
    ({"hdu_type": "image", "binarys": b64pickle({"a": 1})}, "not an array"),
    ({"hdu_type": "bintable", "binarys": b64pickle(np.ones(3))}, "bintable unit with image data"),
    ({"hdu_type": "weird", "binarys": None}, "unknown hdu_type"),
    ({"hdu_type": "image", "binarys": None, "data": "[[1, 2]]"}, "non-pickle"),
    ({"hdu_type": "image", "header": ["x"]}, "header is not an object"),
    ("not a unit", "not an object"),
])
def test_malformed_units_name_the_product(unit, message):
    products = {"numpy_data_product_list": [{"name": "x", "meta_data": "{}", "data_unit_list": [unit]}],
                "job_id": "abc"}
    with pytest.raises(ProtocolError, match=message) as info:
        decode_products(products)
    assert "numpy_data_product_list[0]" in str(info.value) and "abc" in str(info.value)


def test_invalid_header_cards_are_dropped_with_a_warning():
    unit = {"hdu_type": "image", "binarys": b64pickle(np.zeros(2)),
            "header": {"GOOD": 1, "BAD": "caf\u00e9", "LIST": [1, 2], "NAN": float("nan"),
                       "long keyword here": "x"}}
    with pytest.warns(AstropyUserWarning, match="BAD"):
        hdul = decode_products({"numpy_data_product": {"data_unit_list": [unit]}})[
            "numpy_data_product"]
    header = hdul[0].header
    assert header["GOOD"] == 1 and header["LIST"] == "1,2" and header["NAN"] == "nan"
    assert header["long keyword here"] == "x" and "BAD" not in header


def test_image_product_large_native_array():
    image = np.random.default_rng(0).random((200, 300))
    unit = {"name": "PRIMARY", "hdu_type": "primary", "binarys": b64pickle(image), "dt": "float64",
            "header": {"SIMPLE": True, "BITPIX": -64, "NAXIS": 2, "NAXIS1": 300, "NAXIS2": 200}}
    hdul = decode_products({"numpy_data_product_list": [{"name": "mosaic", "meta_data": "{}",
                                                         "data_unit_list": [unit]}]})["mosaic"]
    assert np.array_equal(hdul[0].data, image) and hdul[0].header["NAXIS1"] == 300


def test_checksum_datasum_and_blank_cards_are_kept():
    image = fits.PrimaryHDU(np.arange(4.0))
    image.header.append(("", "  a blank card of the server"), end=True)
    image.header.append(("OBJECT", "Crab"), end=True)  # trailing blank cards are padding
    with reopened(fits.HDUList([image])) as hdul:
        hdul[0].add_checksum()
        unit = encode_unit(hdul[0])
        unit["header"] = dict(hdul[0].header.items())  # as oda_api sends it: blank card included
    assert {"CHECKSUM", "DATASUM", ""} <= set(unit["header"])
    header = decode_products({"numpy_data_product": {"data_unit_list": [unit]}})[
        "numpy_data_product"][0].header
    assert header["CHECKSUM"] == unit["header"]["CHECKSUM"]
    assert header["DATASUM"] == unit["header"]["DATASUM"]
    assert [str(value) for value in header[""]] == ["  a blank card of the server"]
    assert reopened(fits.HDUList([fits.PrimaryHDU(header=header)]))[0].header["DATASUM"] == \
        unit["header"]["DATASUM"]
