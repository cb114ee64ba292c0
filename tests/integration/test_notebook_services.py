"""Notebook services: a real nb2service behind the current dispatcher's nb2workflow plugin.

The instrument ``notebooks`` runs the notebooks of
``astroquery_mmoda.testing.service_notebooks`` (one product each), as the public
MMODA runs its notebook-based services.  Each run starts a notebook kernel: about
ten seconds.
"""
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda.exceptions import JobFailedError
from astroquery_mmoda.products import NamedBytes
from astroquery_mmoda.testing.notebook_service import INSTRUMENT
from tests.client_helpers import logged_in_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(notebook_dispatcher, tmp_path_factory):
    return logged_in_client(notebook_dispatcher, tmp_path_factory.mktemp("notebook-cache"))


@pytest.fixture(scope="module")
def results(client):
    """Products of each notebook, fetched once for the module."""
    done = {}

    def get(product, **params):
        key = (product, tuple(sorted(params.items())))
        if key not in done:
            done[key] = client.get_product(INSTRUMENT, product, **params)
        return done[key]
    return get


def test_every_notebook_is_a_product(client):
    assert INSTRUMENT in client.list_instruments()
    assert client.list_products(INSTRUMENT) == ["binary", "failing", "image", "lightcurve", "picture",
                                                "slow", "summary", "table"]


def test_parameters_carry_the_ontologys_types_units_and_restrictions(client):
    table = client.get_parameters(INSTRUMENT, "table")
    rows = {row["name"]: row for row in table}
    # ra/dec are annotated as the point of interest: the dispatcher calls them RA/DEC
    assert rows["RA"]["unit"] == "deg" and rows["RA"]["default"] == 83.63
    assert rows["radius"]["unit"] == "deg" and rows["radius"]["type"] == "oda:Angle"
    assert (rows["radius"]["min"], rows["radius"]["max"]) == (0.1, 10.0)
    assert rows["n_rows"]["type"] == "oda:Integer" and rows["n_rows"]["default"] == 4
    assert (rows["n_rows"]["min"], rows["n_rows"]["max"]) == (1, 100)
    summary = {row["name"]: row for row in client.get_parameters(INSTRUMENT, "summary")}
    assert sorted(summary["band"]["allowed_values"]) == ["hard", "soft"]
    assert summary["threshold"]["type"] == "oda:Float"
    lightcurve = {row["name"]: row for row in client.get_parameters(INSTRUMENT, "lightcurve")}
    assert lightcurve["time_bin"]["unit"] == "s" and lightcurve["time_bin"]["min"] == 1.0
    assert lightcurve["T1"]["type"] == "oda:TimeInstant"


@pytest.mark.parametrize("params, message", [
    ({"band": "medium"}, r"band='medium' is not allowed; choose one of"),
    ({"threshold": [1, 2]}, "threshold must be a single value"),
    ({"treshold": 3.0}, "did you mean 'threshold'"),
])
def test_bad_values_are_refused_before_any_request(client, monkeypatch, params, message):
    client.get_parameters(INSTRUMENT, "summary")  # the description, fetched once
    sent = []
    monkeypatch.setattr(client._dispatcher, "run_analysis",
                        lambda *args, **kwargs: sent.append(args) or pytest.fail("a request was sent"))
    with pytest.raises(InvalidQueryError, match=message):
        client.get_product(INSTRUMENT, "summary", **params)
    assert sent == []


def test_a_table_with_units(results):
    products = results("table", n_rows=3, radius=2 * u.deg)
    table = products["sources"]
    assert isinstance(table, Table) and len(table) == 3
    assert table["ra"].unit == u.deg and table["energy"].unit == u.keV
    assert table["flux"].unit == u.erg / u.cm**2 / u.s
    assert list(table["src_name"]) == ["Source 0", "Source 1", "Source 2"]
    assert table["ra"][-1] == pytest.approx(83.63 + 2)
    assert table.meta["ORIGIN"] == "astroquery_mmoda test service"


def test_a_light_curve(results):
    hdul = results("lightcurve", time_bin=60 * u.s)["lc"]
    assert isinstance(hdul, fits.HDUList)
    data = hdul["LC"].data
    assert len(data) == 5  # 300 s in 60 s bins
    assert np.allclose(data["RATE"], 100.0 + 10.0 * np.sin(np.arange(5)))
    assert np.allclose(data["ERROR"], np.sqrt(data["RATE"]))


def test_an_image_with_its_wcs(results):
    from astropy.wcs import WCS

    hdul = results("image", side=16)["image"]
    image = hdul[0].data
    assert image.shape == (16, 16) and image.dtype == np.float32
    assert np.unravel_index(np.argmax(image), image.shape) == (8, 8)
    ra, dec = WCS(hdul[0].header).wcs.crval
    assert (ra, dec) == pytest.approx((83.63, 22.01))


def test_a_png_picture(results, tmp_path):
    picture = results("picture", title="Crab")["plot"]
    assert isinstance(picture, NamedBytes) and picture.suggested_suffix == ".png"
    assert bytes(picture).startswith(b"\x89PNG\r\n\x1a\n")


def test_text_and_numbers_keep_their_types(results):
    products = results("summary", band="soft", threshold=4.0)
    assert products["report"] == "1 sources above 4.0 sigma in the soft band"
    assert products["peak"] == 10.0 and isinstance(products["peak"], float)
    assert products["n_detected"] == 1 and isinstance(products["n_detected"], int)


def test_a_binary_file(results, tmp_path):
    products = results("binary", n_bytes=300)
    payload = products["payload"]
    assert isinstance(payload, NamedBytes)
    assert bytes(payload) == bytes(i % 256 for i in range(300))
    written = products.write(tmp_path)
    assert [path.read_bytes() for path in written] == [bytes(payload)]


def test_a_failing_notebook_says_why(client):
    with pytest.raises(JobFailedError, match="no usable data in science window 066500230010.001"):
        client.get_product(INSTRUMENT, "failing", cache=False)


def test_an_async_notebook_reports_progress_then_finishes(client):
    job = client.submit(INSTRUMENT, "slow", seconds=4, return_progress=True)
    products = job.result(timeout=300)
    assert products["done"] == "waited 4 s"
    assert job.status == "done"
    # the progress answers carry the notebook's trace so far, as HTML
    (report,) = job.progress["progress_product_list"]
    assert report["name"] == "progress" and "<title>slow_output</title>" in report["value"]


def test_results_come_from_the_cache_the_second_time(client, results, monkeypatch):
    first = results("summary", band="hard")
    monkeypatch.setattr(client._dispatcher, "run_analysis",
                        lambda *args, **kwargs: pytest.fail("a request was sent"))
    again = client.get_product(INSTRUMENT, "summary", band="hard")
    assert dict(again) == dict(first)


def test_the_command_line_lists_and_gets_notebook_products(notebook_dispatcher, tmp_path):
    from tests.test_cli import Cli

    cli = Cli(tmp_path, notebook_dispatcher.url, notebook_dispatcher.mint_token("general"))
    done = cli("parameters", INSTRUMENT, "table")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[2:]}
    assert rows["radius"] == ["1.5", "deg", "0.1", "10.0"] and rows["n_rows"] == ["4", "1", "100"]

    done = cli("get", INSTRUMENT, "binary", "n_bytes=5", "-o", "out")
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()
    assert (cli.cwd / path).read_bytes() == bytes(range(5))

    done = cli("get", INSTRUMENT, "failing")
    assert done.returncode == 1
    assert "no usable data in science window" in done.stderr
