"""The folder of Dummy-mode product files of ``isgri`` and ``jemx``."""
from pathlib import Path


from .acs import acs_light_curve_text
from .images import _write_catalog, _write_mosaic
from .lightcurves import _write_jemx_lightcurve, write_isgri_lightcurve
from .model import ISGRI_OBSERVATION, JEMX_OBSERVATION, sky_sources
from .spectra import _response, _write_isgri_spectra, _write_jemx_spectra


def write_dummy_products(folder):
    """Write every file the ``isgri`` and ``jemx`` plugins read in Dummy mode.

    Mosaics and catalogs of both fields, a spectrum with its ARF and RMF for
    each ISGRI source and for the Crab, the ISGRI light curve of the brightest
    ISGRI source and the JEM-X light curve of the Crab.  Also
    ``query_spiacs_lc.txt`` for ``spi_acs`` in Dummy mode (which the plugin
    cannot serve: test SPI-ACS in Real mode).

    Parameters
    ----------
    folder : path-like
        Created if needed.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [_write_mosaic(folder / "isgri_query_mosaic.fits", ISGRI_OBSERVATION),
               _write_catalog(folder / "query_catalog.fits", "isgri"),
               _write_mosaic(folder / "jemx_query_mosaic.fits", JEMX_OBSERVATION),
               _write_catalog(folder / "jemx_query_catalog.fits", "jemx")]
    isgri_response = _response("isgri")
    for source in sky_sources("isgri"):
        written += _write_isgri_spectra(folder, source, isgri_response)
    brightest = max(sky_sources("isgri"), key=lambda s: s.significance)
    written.append(write_isgri_lightcurve(folder / "isgri_query_lc.fits", brightest))
    crab = next(s for s in sky_sources("jemx") if s.name == "Crab")
    written += _write_jemx_spectra(folder, crab, _response("jemx"))
    written.append(_write_jemx_lightcurve(folder / "jemx_query_lc.fits.gz", crab))
    acs = folder / "query_spiacs_lc.txt"
    acs.write_text(acs_light_curve_text("2003-03-15T23:30:10", 150.0))
    written.append(acs)
    return written


# -- SPI-ACS ------------------------------------------------------------------------
