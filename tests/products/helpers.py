"""Products encoded like the dispatcher encodes them, and reference products for the tests."""
import base64
import hashlib
import io
import json
import pickle
import secrets

import jwt
import numpy as np
from astropy.io import fits

from astroquery_mmoda.products import decode_products


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(20)
JWT = jwt.encode({"sub": "x@example.org", "exp": 4102444800}, secrets.token_hex(32), algorithm="HS256")


def b64pickle(obj, protocol=None):
    return base64.b64encode(pickle.dumps(obj, protocol=protocol)).decode()


def hdu_type(hdu):
    return {fits.PrimaryHDU: "primary", fits.ImageHDU: "image", fits.BinTableHDU: "bintable",
            fits.TableHDU: "table"}[type(hdu)]


def encode_unit(hdu, units_dict=None):
    """One data unit as NumpyDataUnit.encode(use_pickle=True) writes it."""
    data = hdu.data  # read first: astropy updates the header (scaling) on access
    payload = None
    if data is not None:
        payload = b64pickle(data if isinstance(data, fits.FITS_rec) else np.array(data))
    return {"data": None, "dt": None if data is None else str(data.dtype), "name": hdu.name,
            "header": {key: value for key, value in hdu.header.items() if key},
            "binarys": payload, "meta_data": {}, "hdu_type": hdu_type(hdu), "units_dict": units_dict}


def encode_product(hdus, name="lc", meta=None):
    return {"name": name, "meta_data": json.dumps(meta or {}),
            "data_unit_list": [encode_unit(hdu) for hdu in hdus]}


def reopened(hdul):
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    buffer.seek(0)
    return fits.open(buffer)


def assert_same_fits(ours, reference, **ignore):
    ours = reopened(ours)
    assert [h.name for h in ours] == [h.name for h in reference]
    diff = fits.FITSDiff(ours, reference, ignore_comments=["*"], **ignore)
    assert diff.identical, diff.report()
    for mine, theirs in zip(ours, reference):
        if isinstance(theirs, (fits.BinTableHDU, fits.TableHDU)):
            assert [c.unit for c in mine.columns] == [c.unit for c in theirs.columns]


def make_fits(path):
    """A file with every kind of HDU and column the dispatcher's products carry."""
    primary = fits.PrimaryHDU(np.arange(12.0).reshape(3, 4))
    primary.header["OBJECT"] = "Crab"
    primary.header["HISTORY"] = "made for a test"
    primary.header["HIERARCH ODA LONG KEYWORD"] = 3
    primary.header["LONGSTR"] = "x" * 100
    image = fits.ImageHDU(np.arange(6, dtype=np.uint16).reshape(2, 3) + 60000, name="COUNTS")
    image.header["BUNIT"] = "count"
    columns = [
        fits.Column("TIME", "D", unit="d", array=np.linspace(0, 1, 4)),
        fits.Column("RATE", "E", unit="count/s", array=np.array([1.5, np.nan, 3, 4])),
        fits.Column("NAME", "8A", array=["Crab", "1A 0535", "", "x y"]),
        fits.Column("FLAG", "L", array=[True, False, True, False]),
        fits.Column("CHAN", "J", null=-1, array=[1, -1, 3, 4]),
        fits.Column("SCALED", "E", bscale=0.5, bzero=10, array=[10.0, 10.5, 11.0, 12.0]),
        fits.Column("OFFSET", "J", bzero=100, array=[100, 101, -5, 7]),
        fits.Column("CUBE", "6E", dim="(3,2)", array=np.arange(24.0).reshape(4, 2, 3)),
        fits.Column("MATRIX", "PE()", array=[np.arange(3.0), np.arange(1.0), np.arange(0.0),
                                             np.arange(5.0)]),
        fits.Column("BIG", "QJ()", array=[np.arange(2), np.arange(7), np.arange(1), np.arange(2)]),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="ISGR-SRC.-LCR")
    table.header["TIMEDEL"] = 0.25
    ascii_table = fits.TableHDU.from_columns(
        [fits.Column("E", "E12.5", unit="keV", array=[1.0, 2.5]),
         fits.Column("ID", "I6", array=[7, 8]), fits.Column("S", "A5", array=["ab", "cde"])],
        name="ASCII")
    fits.HDUList([primary, image, table, ascii_table]).writeto(path)


FUZZ_SEEDS = [pickle.dumps(np.arange(6.0).reshape(2, 3)),
              pickle.dumps(np.rec.array([(1.0, "x")], names="a,b")),
              pickle.dumps(fits.BinTableHDU.from_columns(
                  [fits.Column("A", "J", array=[1, 2]), fits.Column("S", "3A", array=["a", "b"]),
                   fits.Column("V", "PJ()", array=[[1], [2, 3]])]).data, protocol=4)]


CATALOG = {
    "cat_frame": "fk5", "cat_coord_units": "deg",
    "cat_column_list": [[0, 7, 9], ["1A 0535+262", "Crab", "NEW_1"], [125.48, 1358.72, None],
                        [84.72, 83.63, 80.0], [26.31, 22.01, None], [-32768, None, 1],
                        [0.00028, 0.00028, 0.5]],
    "cat_column_names": ["meta_ID", "src_names", "significance", "ra", "dec", "NEW_SOURCE", "ERR_RAD"],
    "cat_column_descr": [["meta_ID", "<i8"], ["src_names", "<U11"], ["significance", "<f8"],
                         ["ra", "<f8"], ["dec", "<f8"], ["NEW_SOURCE", "<i8"], ["ERR_RAD", "<f8"]],
    "cat_lat_name": "dec", "cat_lon_name": "ra",
}


ECSV = "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: E, unit: keV, datatype: float64}\n" \
       "# - {name: nuFnu, datatype: float64}\nE nuFnu\n1.0 3.0\n2.0 4.0\n"


def binary_item(data, name="file", md5=None):
    return {"name": name, "data": base64.urlsafe_b64encode(data).decode(),
            "md5": md5 or hashlib.md5(data).hexdigest()}


def picture(data, img_type="png", **extra):
    return dict({"img_type": img_type, "b64data": base64.urlsafe_b64encode(data).decode(),
                 "metadata": {"plot": "spectrum"}, "name": None}, **extra)


def named_set():
    image = {"name": "PRIMARY", "hdu_type": "primary", "binarys": b64pickle(np.ones((3, 3))),
             "header": {"SIMPLE": True}}
    lc = {"name": "LC", "hdu_type": "bintable", "binarys": b64pickle(
        fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=[1.0])]).data)}

    def product(name, src, product):
        return {"name": name, "meta_data": json.dumps({"src_name": src, "product": product}),
                "data_unit_list": [image, lc]}
    return decode_products({
        "numpy_data_product_list": [product("isgri_lc", "Crab", "isgri_lc"),
                                    product("isgri_lc", "Crab", "isgri_lc"),
                                    product(None, "Vela X-1", "isgri_spectrum"),
                                    product("None", "", "isgri_rmf"),
                                    product("catalog", "", "x"),
                                    product("spectrum_Crab", "Crab", "isgri_spectrum")],
        "binary_data_product_list": [binary_item(b"\x00\x01unknown", "blob ../../etc/passwd")],
        "catalog": CATALOG, "binary_image_product_list": [picture(PNG, name="plot")],
        "text_product_list": [{"name": "note", "value": f"token {JWT}"}],
        "astropy_table_product_ascii_list": [{"name": "phot", "ascii": ECSV, "meta_data": "{}"}],
        "job_id": "J42"})
