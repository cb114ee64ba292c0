"""The Dummy-mode files of the test sky, without a server."""
import filecmp
import time
import warnings

import numpy as np
import pytest

from astroquery_mmoda.testing.sky import sky_sources, write_dummy_products


def test_sky_generation_is_complete_deterministic_and_quick(tmp_path, record_property):
    started = time.perf_counter()
    first = write_dummy_products(tmp_path / "a")
    record_property("sky_generation_s", round(time.perf_counter() - started, 3))
    second = write_dummy_products(tmp_path / "b")
    names = {path.name for path in first}
    expected = {"isgri_query_mosaic.fits", "query_catalog.fits", "isgri_query_lc.fits",
                "jemx_query_mosaic.fits", "jemx_query_catalog.fits", "jemx_query_lc.fits.gz",
                "jemx_query_spectrum_spec_Crab_pha.fits.gz", "jemx_query_spectrum_arf_Crab.fits.gz",
                "jemx_query_spectrum_rmf_Crab.fits.gz", "query_spiacs_lc.txt"}
    for source in sky_sources("isgri"):
        expected |= {f"query_spectrum_{kind}_sum_{source.name}.fits" for kind in ("isgri", "arf", "rmf")}
    assert names == expected
    fits_files = [p.name for p in first if p.suffix == ".fits"]
    assert all(filecmp.cmp(tmp_path / "a" / n, tmp_path / "b" / n, shallow=False) for n in fits_files)
    assert [p.name for p in second] == [p.name for p in first]


def test_source_pixels_agree_with_the_mosaic_wcs(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    write_dummy_products(tmp_path)
    for filename, instrument in (("isgri_query_mosaic.fits", "isgri"), ("jemx_query_mosaic.fits", "jemx")):
        with fits.open(tmp_path / filename) as hdus:
            with warnings.catch_warnings():
                # Real OSA mosaics also carry DATE-OBS/MJDREF, which WCS "fixes" with a warning.
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(hdus[2].header)
            intensity, significance = hdus[2].data, hdus[4].data
            for source in sky_sources(instrument):
                x, y = wcs.world_to_pixel_values(source.ra, source.dec)
                assert (int(np.round(x)), int(np.round(y))) == source.pixel
                px, py = source.pixel
                assert significance[py, px] == pytest.approx(source.significance, rel=1e-5)
                assert intensity[py, px] == pytest.approx(source.rate, rel=1e-5)
                # a PSF blob, not a single hot pixel (JEM-X pixels are about the PSF's size)
                if instrument == "isgri":
                    assert 0.2 * source.rate < intensity[py, px + 1] + intensity[py, px - 1]
