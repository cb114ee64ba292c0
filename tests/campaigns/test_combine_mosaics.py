import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda.campaigns.combine_mosaics import MosaicCombiner, combine_mosaics, mosaic_maps

N = 21


def mosaic(intensity, variance, exposure=1000.0, *, crval=(250.0, -40.0), crpix=(11.0, 11.0),
           kinds=("INTENSITY", "VARIANCE", "SIGNIFICANCE", "EXPOSURE"), ontime=900.0):
    intensity = np.broadcast_to(np.asarray(intensity, float), (N, N))
    variance = np.broadcast_to(np.asarray(variance, float), (N, N))
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = intensity / np.sqrt(variance)
    maps = dict(zip(kinds, (intensity, variance, significance, np.broadcast_to(exposure, (N, N)))))
    hdus = [fits.PrimaryHDU()]
    for kind, data in maps.items():
        hdu = fits.ImageHDU(np.array(data, dtype=np.float32), name="ISGR-MOSA-IMA")
        hdu.header.update(IMATYPE=kind, CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CDELT1=-0.1, CDELT2=0.1,
                          CRVAL1=crval[0], CRVAL2=crval[1], CRPIX1=crpix[0], CRPIX2=crpix[1],
                          CUNIT1="deg", CUNIT2="deg", INSTRUME="IBIS", ONTIME=ontime, E_MIN=30.0, E_MAX=80.0)
        hdus.append(hdu)
    return fits.HDUList(hdus)


def images(hdul):
    return {hdu.header["IMATYPE"]: hdu.data for hdu in hdul[1:]}


def test_same_grid_is_inverse_variance_weighted_without_reproject(monkeypatch):
    monkeypatch.setitem(sys.modules, "reproject", None)  # not needed on one grid
    rng = np.random.default_rng(5)
    truth, sigma = 4.0, 2.0
    parts = [(f"j{i}", mosaic(truth + rng.normal(size=(N, N)) * sigma, sigma ** 2)) for i in range(16)]
    combined = combine_mosaics(parts)
    maps = images(combined)
    assert list(maps) == ["INTENSITY", "VARIANCE", "SIGNIFICANCE", "EXPOSURE"]
    np.testing.assert_allclose(maps["VARIANCE"], sigma ** 2 / 16, rtol=1e-6)
    np.testing.assert_allclose(maps["EXPOSURE"], 16000.0)
    np.testing.assert_allclose(maps["SIGNIFICANCE"], maps["INTENSITY"] / np.sqrt(maps["VARIANCE"]), rtol=1e-5)
    assert abs(maps["INTENSITY"].mean() - truth) < 4 * (sigma / 4) / N
    header = combined[1].header
    assert header["NCOMBINE"] == 16 and header["ONTIME"] == pytest.approx(16 * 900.0)
    assert header["INSTRUME"] == "IBIS" and header["E_MIN"] == 30.0
    assert WCS(header).wcs.crval.tolist() == [250.0, -40.0]


def test_unequal_variances_weight_the_better_part():
    combined = images(combine_mosaics([("a", mosaic(10.0, 1.0)), ("b", mosaic(20.0, 4.0, exposure=250.0))]))
    np.testing.assert_allclose(combined["INTENSITY"], (10 + 20 / 4) / (1 + 1 / 4), rtol=1e-6)
    np.testing.assert_allclose(combined["VARIANCE"], 1 / (1 + 1 / 4), rtol=1e-6)
    np.testing.assert_allclose(combined["EXPOSURE"], 1250.0)


def test_pixels_without_valid_variance_do_not_contribute():
    bad = np.full((N, N), 1.0)
    bad[0, 0] = np.nan
    bad[1, 1] = 0.0
    combined = images(combine_mosaics([("a", mosaic(5.0, bad)), ("b", mosaic(7.0, 1.0))]))
    assert combined["INTENSITY"][0, 0] == pytest.approx(7.0)
    assert combined["INTENSITY"][1, 1] == pytest.approx(7.0)
    assert combined["INTENSITY"][2, 2] == pytest.approx(6.0)


def test_jemx_names_are_understood():
    part = mosaic(2.0, 1.0, kinds=("RECONSTRUCTED", "VARIANCE", "RECON_SIG", "EXPOSURE"))
    assert sorted(mosaic_maps(part)) == ["exposure", "intensity", "significance", "variance"]
    assert images(combine_mosaics([("a", part)]))["INTENSITY"][3, 3] == pytest.approx(2.0)


def test_different_grids_are_reprojected():
    pytest.importorskip("reproject")
    # the second grid is shifted by 5 pixels: it covers the first's columns 0-15 only
    first, second = mosaic(1.0, 1.0), mosaic(3.0, 1.0, crpix=(16.0, 11.0))
    combined = images(combine_mosaics([("a", first), ("b", second)]))
    assert combined["INTENSITY"][10, 8] == pytest.approx(2.0, rel=1e-4)
    assert combined["INTENSITY"][10, 18] == pytest.approx(1.0, rel=1e-4)
    assert combined["EXPOSURE"][10, 8] == pytest.approx(2000.0, rel=1e-4)
    assert combined["EXPOSURE"][10, 18] == pytest.approx(1000.0, rel=1e-4)


def test_a_given_wider_grid_covers_every_part():
    pytest.importorskip("reproject")
    wcs = WCS(mosaic(1.0, 1.0)[1].header)
    wcs.wcs.crpix = [21.0, 11.0]
    combiner = MosaicCombiner(wcs=wcs, shape=(N, 2 * N))
    combiner.add(mosaic(1.0, 1.0), job="a")
    combiner.add(mosaic(1.0, 1.0, crval=(250.0 + 2.0 / np.cos(np.radians(40.0)), -40.0)), job="b")
    maps = images(combiner.result())
    assert maps["INTENSITY"].shape == (N, 2 * N)
    assert np.isfinite(maps["INTENSITY"][10, 12]) and np.isfinite(maps["INTENSITY"][10, 30])
    assert np.isnan(maps["INTENSITY"][10, 41]) and maps["EXPOSURE"][10, 41] == 0


def test_different_grids_without_reproject_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "reproject", None)
    combiner = MosaicCombiner()
    combiner.add(mosaic(1.0, 1.0), job="a")
    with pytest.raises(InvalidQueryError, match=r"different sky grids.*pip install reproject"):
        combiner.add(mosaic(1.0, 1.0, crval=(251.0, -40.0)), job="b")


def test_incomplete_mosaics_and_options_are_refused():
    with pytest.raises(InvalidQueryError, match="no variance map"):
        mosaic_maps(mosaic(1.0, 1.0, kinds=("INTENSITY", "X", "SIGNIFICANCE", "EXPOSURE")))
    with pytest.raises(InvalidQueryError, match="both wcs and shape"):
        MosaicCombiner(shape=(3, 3))
    with pytest.raises(InvalidQueryError, match="no mosaic"):
        MosaicCombiner().result()
