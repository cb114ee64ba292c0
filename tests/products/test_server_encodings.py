"""Products encoded by the dispatcher's own oda_api (numpy 1.x) and the real dispatcher."""
import base64
import json
import subprocess
import textwrap

import numpy as np
import pytest
import requests
from astropy import units as u
from astropy.io import fits

from astroquery_mmoda.products import catalog_from_dict, catalog_to_selected_catalog, decode_products
from .helpers import assert_same_fits, make_fits


@pytest.fixture(scope="module")
def server_python():
    from astroquery_mmoda.testing import provision_dispatcher_venv

    return str(provision_dispatcher_venv() / "bin" / "python")


SERVER_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    np.bool = bool  # the 2022 catalog code still uses the removed alias
    from oda_api.data_products import NumpyDataProduct
    from cdci_data_analysis.analysis.catalog import BasicCatalog

    fits_path, out_json, out_fits = sys.argv[1:4]
    product = NumpyDataProduct.from_fits_file(
        fits_path, meta_data={"src_name": "Crab", "product": "isgri_lc"}, name="lc")
    encoded = product.encode()
    catalog = BasicCatalog(["1A 0535+262", "Crab", "NEW_1"], [84.72, 83.63, 80.1],
                           [26.31, 22.01, -3.5], [125.48, float("nan"), 7.25], unit="deg",
                           frame="fk5")
    # what oda_api itself rebuilds from the same encoding
    NumpyDataProduct.decode(json.loads(json.dumps(encoded))).write_fits_file(out_fits)
    with open(out_json, "w") as handle:
        json.dump({"numpy_data_product_list": [encoded], "catalog": catalog.get_dictionary(),
                   "job_id": "0123456789abcdef", "api_code": "print(1)",
                   "analysis_parameters": {"token": "secret-token-value", "RA": 83.63}}, handle)
    print(np.__version__)
""")


@pytest.fixture(scope="module")
def server_encoded(server_python, tmp_path_factory):
    """Products encoded by oda_api 1.2.37 under numpy 1.x, with oda_api's own rebuild."""
    folder = tmp_path_factory.mktemp("server")
    make_fits(folder / "original.fits")
    script = folder / "encode.py"
    script.write_text(SERVER_SCRIPT)
    done = subprocess.run([server_python, str(script), str(folder / "original.fits"),
                           str(folder / "products.json"), str(folder / "oda_api.fits")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith("1."), "the server side must use numpy 1.x names"
    return folder, json.loads((folder / "products.json").read_text())


@pytest.mark.integration
def test_server_encoded_product_equals_the_original(server_encoded):
    folder, products = server_encoded
    unit_pickle = base64.b64decode(products["numpy_data_product_list"][0]["data_unit_list"][2]["binarys"])
    assert b"numpy.core.multiarray" in unit_pickle and b"numpy._core" not in unit_pickle
    ps = decode_products(products)
    assert list(ps) == ["lc_Crab", "catalog"]
    assert ps.job_id == "0123456789abcdef"
    assert ps.analysis_parameters == {"RA": 83.63}
    assert ps.meta["lc_Crab"]["product"] == "isgri_lc"
    hdul = ps["lc_Crab"]
    with fits.open(folder / "original.fits") as original:
        assert_same_fits(hdul, original)
        assert hdul[2].columns["SCALED"].bscale == 0.5
        assert hdul[1].data.dtype == np.uint16
    with fits.open(folder / "oda_api.fits") as theirs:
        # oda_api's own rebuild adds EXTNAME='PRIMARY' to the primary header and writes
        # variable-length formats as 'PE(<built-in method max ...>)'.
        del theirs[0].header["EXTNAME"]
        assert_same_fits(hdul, theirs, ignore_keywords=["TFORM9", "TFORM10"],
                         ignore_fields=["MATRIX", "BIG"])


@pytest.mark.integration
def test_server_encoded_catalog(server_encoded):
    _, products = server_encoded
    table = decode_products(products)["catalog"]
    assert table.colnames == ["meta_ID", "src_names", "significance", "ra", "dec"]
    assert table["ra"].unit == u.deg and table["ra"].dtype == np.float64
    assert np.isnan(table["significance"][1])
    assert table.meta["LON_NAME"] == "ra" and table.meta["FRAME"] == products["catalog"]["cat_frame"]
    assert json.loads(catalog_to_selected_catalog(table)) == products["catalog"]


@pytest.mark.integration
def test_real_dispatcher_numerical_product(local_dispatcher, mmoda_token):
    token = mmoda_token("general")
    answer = requests.get(f"{local_dispatcher.url}/run_analysis", timeout=60, params=dict(
        instrument="empty", product_type="numerical", query_type="Dummy", p=5, api=True,
        query_status="new", token=token))
    assert answer.status_code == 200
    body = answer.json()
    ps = decode_products(body["products"], job_id=body["job_monitor"]["job_id"])
    assert ps.job_id == body["job_monitor"]["job_id"]
    fits_items = [name for name in ps if ps.kind[name] == "fits"]
    assert fits_items
    images = [hdu.data for name in fits_items for hdu in ps[name] if hdu.data is not None]
    assert any(d.shape == (100, 100) and d.dtype.kind == "f" and d.dtype.itemsize == 8
               for d in images)
    assert "token" not in ps.analysis_parameters
    assert token not in repr(ps) and token not in json.dumps(ps.analysis_parameters)


@pytest.mark.integration
def test_real_dispatcher_accepts_our_selected_catalog(local_dispatcher):
    table = catalog_from_dict({
        "cat_frame": "fk5", "cat_coord_units": "deg", "cat_lon_name": "ra", "cat_lat_name": "dec",
        "cat_column_names": ["meta_ID", "src_names", "significance", "ra", "dec", "FLAG"],
        "cat_column_list": [[0, 1, 2], ["Crab", "Vela", "X"], [20.0, 5.0, None],
                            [83.63, 128.8, 1.0], [22.01, -45.2, 2.0], [0, None, 1]],
        "cat_column_descr": [["meta_ID", "<i8"], ["src_names", "<U4"], ["significance", "<f8"],
                             ["ra", "<f8"], ["dec", "<f8"], ["FLAG", "<i8"]]})
    chosen = table[table["significance"] > 4]
    answer = requests.get(f"{local_dispatcher.url}/run_analysis", timeout=60, params=dict(
        instrument="empty", product_type="dummy", query_type="Dummy", api=True, query_status="new",
        selected_catalog=catalog_to_selected_catalog(chosen)))
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["query_status"] == "done"
