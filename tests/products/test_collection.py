"""ProductSet: a read-only mapping; select, write and repr."""
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from astroquery_mmoda.products import decode_products, NamedBytes, ProductSet
from astroquery_mmoda.writing import UnsafeTargetError
from .helpers import b64pickle, JWT, named_set, PNG


def test_select():
    ps = named_set()
    crab = ps.select(src_name="Crab")
    assert list(crab) == ["isgri_lc_Crab", "isgri_lc_Crab_2", "spectrum_Crab"]
    assert crab.job_id == "J42" and crab.kind["spectrum_Crab"] == "fits"
    assert list(ps.select(src_name="Crab", product="isgri_spectrum")) == ["spectrum_Crab"]
    assert list(ps.select(FRAME="fk5")) == ["catalog"]
    assert list(ps.select(nothing=1)) == []
    assert list(ps.select(src_name=np.array([1, 2]))) == []  # odd comparisons never crash
    assert len(ps.select()) == len(ps)


def test_write(tmp_path):
    ps = named_set()
    paths = ps.write(tmp_path / "out", prefix="run1_")
    names = [p.name for p in paths]
    assert names == ["run1_isgri_lc_Crab.fits", "run1_isgri_lc_Crab_2.fits",
                     "run1_isgri_spectrum_Vela_X-1.fits", "run1_isgri_rmf.fits", "run1_catalog_2.fits",
                     "run1_spectrum_Crab.fits", "run1_blob_.._.._etc_passwd.bin", "run1_catalog.ecsv",
                     "run1_phot.ecsv", "run1_plot.png", "run1_note.txt"]
    assert all(p.parent == tmp_path / "out" for p in paths)
    with fits.open(paths[0]) as hdul:
        assert hdul[1].name == "LC" and np.array_equal(hdul[0].data, np.ones((3, 3)))
    assert Table.read(paths[7], format="ascii.ecsv")["src_names"][1] == "Crab"
    assert paths[6].read_bytes() == b"\x00\x01unknown"
    assert paths[9].read_bytes() == PNG
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ps.write(tmp_path / "out", prefix="run1_")
    assert ps.write(tmp_path / "out", prefix="run1_", overwrite=True) == paths
    assert ProductSet([("a b", "gw", {"x": 1}, {}), ("a_b", "text", 2.5, {})]).write(tmp_path) == [
        tmp_path / "a_b.json", tmp_path / "a_b.txt"]
    assert ProductSet([("x", "binary", NamedBytes(b"1", suggested_suffix="../../x"), {})]).write(
        tmp_path / "odd") == [tmp_path / "odd" / "x.bin"]


def test_repr_is_readable_and_token_free():
    ps = named_set()
    text = repr(ps)
    assert text.splitlines()[0] == "<ProductSet job_id='J42': 11 products>"
    assert len(text.splitlines()) == 12
    line = next(line for line in text.splitlines() if "isgri_spectrum_Vela_X-1" in line)
    assert "fits" in line and "HDUs: PRIMARY, LC" in line and "src_name=Vela X-1" in line
    assert "3 rows x 7 columns" in text and "(.png)" in text
    assert JWT not in text and "<token>" in text
    assert repr(ProductSet()) == "<ProductSet job_id=None: 0 products>"


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_write_never_follows_a_symbolic_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "note.txt").symlink_to(victim)
    products = ProductSet([("lc", "text", "1.0", {}), ("note", "text", "evil", {})])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        products.write(tmp_path / "out")
    with pytest.raises(UnsafeTargetError, match="symbolic link"):
        products.write(tmp_path / "out", overwrite=True)
    assert victim.read_text() == "precious"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["note.txt"]


def test_write_is_all_or_nothing(tmp_path):
    ProductSet([("a", "text", "old", {})]).write(tmp_path)
    broken = ProductSet([("a", "text", "new", {}), ("b", "table", "not a table", {})])
    with pytest.raises(AttributeError):
        broken.write(tmp_path, overwrite=True)
    assert [path.name for path in tmp_path.iterdir()] == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old"


def test_file_names_are_safe_on_every_system(tmp_path):
    products = ProductSet([
        ("CON", "text", "x", {}), ("nul.tar", "binary", NamedBytes(b"\x00", name="nul.tar"), {}),
        ("COM1", "fits", fits.HDUList([fits.PrimaryHDU()]), {}),
        ("setup", "binary", NamedBytes(b"MZ\x90", name="setup.exe"), {}),
        ("run", "binary", NamedBytes(b"@echo", name="run.bat"), {}),
        ("page", "binary", NamedBytes(b"<script>", name="page.hta"), {}),
        ("tool", "binary", NamedBytes(b"print(1)", name="tool.py"), {}),
        ("events", "binary", NamedBytes(b"\x01\x02", name="events.ROOT"), {}),
        ("console", "text", "not a device", {})])
    names = [path.name for path in products.write(tmp_path)]
    assert names == ["_CON.txt", "_nul.tar.tar", "_COM1.fits", "setup.bin", "run.bin", "page.bin",
                     "tool.bin", "events.root", "console.txt"]
    assert NamedBytes(b"MZ\x90", name="setup.exe").suggested_suffix == ".bin"
    assert NamedBytes(b"x", name="spectrum.pha").suggested_suffix == ".pha"


def test_numpy_product_starting_with_a_table_gets_an_empty_primary_hdu(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column("A", "J", array=[1, 2])]).data
    unit = {"hdu_type": "bintable", "name": "LC", "binarys": b64pickle(table),
            "header": {"XTENSION": "BINTABLE", "EXTNAME": "LC"}}
    ps = decode_products({"numpy_data_product_list": [{"name": "lc", "data_unit_list": [unit]}]})
    hdul = ps["lc"]
    assert [type(hdu) for hdu in hdul] == [fits.PrimaryHDU, fits.BinTableHDU]
    assert hdul[0].data is None and hdul[1].name == "LC"
    (path,) = ps.write(tmp_path)
    with fits.open(path) as written:
        assert [hdu.name for hdu in written] == ["PRIMARY", "LC"]
        assert written[1].data["A"].tolist() == [1, 2]
