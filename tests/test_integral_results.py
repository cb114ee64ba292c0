"""Shaped INTEGRAL results: writing spectra (no dispatcher)."""
import os

import numpy as np
import pytest
from astropy.io import fits

from astroquery_mmoda.integral_results import MAX_NAME_LENGTH, Spectrum, SpectrumSet
from astroquery_mmoda.writing import UnsafeTargetError


def _spectrum(name):
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="CHANNEL", format="J", array=np.arange(3)),
         fits.Column(name="RATE", format="E", array=np.ones(3))], name="SPECTRUM")
    table.header["HDUCLAS1"] = "SPECTRUM"
    table.header["NAME"] = name
    primary = fits.HDUList([fits.PrimaryHDU()])
    return Spectrum(name, fits.HDUList([fits.PrimaryHDU(), table]), primary, primary)


def test_names_that_map_to_one_file_are_numbered_and_point_at_their_own_responses(tmp_path):
    names = ["4U 1700-377", "4U_1700-377", "4U/1700-377"]
    spectra = SpectrumSet({name: _spectrum(name) for name in names})
    paths = spectra.write(tmp_path)
    bases = ["4U_1700-377", "4U_1700-377_2", "4U_1700-377_3"]
    assert [paths[name]["spectrum"].name for name in names] == [f"{b}_spectrum.fits" for b in bases]
    assert len(os.listdir(tmp_path)) == 9
    for name, base in zip(names, bases):
        with fits.open(paths[name]["spectrum"]) as hdul:
            assert hdul["SPECTRUM"].header["NAME"] == name
            assert hdul["SPECTRUM"].header["RESPFILE"] == f"{base}_rmf.fits"
            assert hdul["SPECTRUM"].header["ANCRFILE"] == f"{base}_arf.fits"


def test_an_existing_file_means_nothing_is_written(tmp_path):
    (tmp_path / "Vela_X-1_arf.fits").write_bytes(b"keep me")
    spectra = SpectrumSet({"Crab": _spectrum("Crab"), "Vela X-1": _spectrum("Vela X-1")})
    with pytest.raises(FileExistsError, match="1 file.*exist already, nothing written"):
        spectra.write(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["Vela_X-1_arf.fits"]
    assert (tmp_path / "Vela_X-1_arf.fits").read_bytes() == b"keep me"
    spectra.write(tmp_path, overwrite=True)
    assert len(os.listdir(tmp_path)) == 6
    assert fits.getheader(tmp_path / "Vela_X-1_arf.fits")["SIMPLE"] is True


def test_a_planted_symbolic_link_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    output = tmp_path / "out"
    output.mkdir()
    (output / "Crab_rmf.fits").symlink_to(victim)
    with pytest.raises(UnsafeTargetError, match="symbolic link"):
        _spectrum("Crab").write(output, overwrite=True)
    assert victim.read_bytes() == b"precious"
    assert sorted(os.listdir(output)) == ["Crab_rmf.fits"]


def test_long_source_names_are_capped(tmp_path):
    name = "X" * 300
    paths = _spectrum(name).write(tmp_path, prefix="isgri_")
    assert paths["spectrum"].name == "isgri_" + "X" * (MAX_NAME_LENGTH - 6) + "_spectrum.fits"
    assert len(paths["spectrum"].name) <= 68
    with fits.open(paths["spectrum"]) as hdul:
        assert hdul[1].header["RESPFILE"] == paths["rmf"].name


def test_select_sources_refuses_a_bad_threshold():
    from astropy.table import Table

    from astroquery_mmoda.exceptions import InvalidQueryError
    from astroquery_mmoda.integral_results import select_sources

    catalog = Table({"src_names": ["Crab"], "significance": [80.0]})
    with pytest.raises(InvalidQueryError, match="min_significance must be a number of sigma, not '8'"):
        select_sources(catalog, min_significance="8")


def test_result_mappings_name_what_they_hold_and_show_as_html():
    from astropy.io import fits as _fits
    from astroquery_mmoda.integral import LightCurveSet, Spectrum, SpectrumSet
    from astroquery_mmoda.products import ProductSet

    hdul = _fits.HDUList([_fits.PrimaryHDU(), _fits.BinTableHDU(header=_fits.Header({"DETCHANS": 62}))])
    spectra = SpectrumSet({"OAO 1657-415": Spectrum("OAO 1657-415", hdul, hdul, hdul)},
                          meta={"instrument": "isgri", "job_id": "0123456789abcdef"})
    with pytest.raises(KeyError, match=r"no spectrum 'OAO 1657-41' \(did you mean 'OAO 1657-415'\?\)"):
        spectra["OAO 1657-41"]
    html = spectra._repr_html_()
    assert "<td>OAO 1657-415</td><td>62</td>" in html and "job 0123456789abcdef" in html
    with pytest.raises(KeyError, match="no light curve 'Crab'; there are none"):
        LightCurveSet({}, hdulists={})["Crab"]
    products = ProductSet([("lc_<Crab>", "text", "1.0", {"src_name": "<Crab>"})], job_id="abc")
    with pytest.raises(KeyError, match=r"no product 'lc'.*there are: 'lc_<Crab>'"):
        products["lc"]
    assert "<td>lc_&lt;Crab&gt;</td><td>text</td>" in products._repr_html_()


def test_product_set_show_prints_what_oda_api_prints(capsys):
    from astroquery_mmoda.products import ProductSet

    ProductSet([("lc_Crab", "text", "1.0", {"src_name": "Crab"}), ("catalog", "catalog", "x", {})]).show()
    assert capsys.readouterr().out.splitlines() == [
        "ID=0 prod_name=lc_Crab kind=text meta_data: {'src_name': 'Crab'}",
        "ID=1 prod_name=catalog kind=catalog meta_data: {}"]
