"""Sky mosaics and source catalogs, as the plugins read them in Dummy mode."""
import math
import warnings
from pathlib import Path

import numpy as np

from .fits_common import _base_keys, _grouping_hdu, _seed, _time_keys, _write
from .model import catalog_dict, sky_sources


def _write_mosaic(path, observation):
    from astropy.io import fits

    n = observation.npix
    sources = sky_sources(observation.instrument)
    y, x = np.mgrid[0:n, 0:n].astype(float)
    sigma = observation.noise_at_pixel(x, y)
    psf = observation.psf_fwhm_deg / (2.0 * math.sqrt(2.0 * math.log(2.0))) / observation.pixel_deg
    intensity = np.zeros((n, n))
    rng = np.random.default_rng(_seed("mosaic", observation.scw_id))
    noise = rng.normal(size=(n, n)) * sigma
    for source in sources:
        sx, sy = observation.pixel(source.ra, source.dec)
        px, py = source.pixel
        # The pixel holding the source shows exactly its catalog rate and significance.
        offset = ((px - sx) ** 2 + (py - sy) ** 2) / (2 * psf ** 2)
        intensity += source.rate * np.exp(offset - ((x - sx) ** 2 + (y - sy) ** 2) / (2 * psf ** 2))
        noise[py, px] = 0.0
    intensity += noise
    exposure = observation.ontime * (observation.noise_rate / sigma) ** 2

    if observation.instrument == "isgri":
        kinds = (("INTENSITY", intensity, "count/s"), ("VARIANCE", sigma ** 2, "count2/s2"),
                 ("SIGNIFICANCE", intensity / sigma, ""), ("EXPOSURE", exposure, "s"))
        channels = (40, 80)
    else:
        kinds = (("RECONSTRUCTED", intensity, "count/s"), ("VARIANCE", sigma ** 2, "count2/s2"),
                 ("RECON_SIG", intensity / sigma, ""), ("EXPOSURE", exposure, "s"))
        channels = (46, 222)
    extname = ("ISGR" if observation.instrument == "isgri" else "JMX2") + "-MOSA-IMA"
    keys = dict(_base_keys(observation), **_time_keys(observation))
    e_mean = 0.5 * (observation.e_min + observation.e_max)
    images = []
    for imatype, data, unit in kinds:
        hdu = fits.ImageHDU(data.astype(np.float32), name=extname)
        header = hdu.header
        header["IMATYPE"] = imatype
        header["BUNIT"] = unit
        for axis, (ctype, crval, cdelt) in enumerate(
                (("RA---TAN", observation.ra, -observation.pixel_deg),
                 ("DEC--TAN", observation.dec, observation.pixel_deg)), start=1):
            header[f"CTYPE{axis}"] = ctype
            header[f"CRPIX{axis}"] = (n + 1) / 2.0
            header[f"CRVAL{axis}"] = crval
            header[f"CDELT{axis}"] = cdelt
            header[f"CUNIT{axis}"] = "deg"
        header["RADESYS"] = "FK5"
        header["EQUINOX"] = 2000.0
        header["E_MIN"] = observation.e_min
        header["E_MAX"] = observation.e_max
        for key, value in keys.items():
            header[key] = value
        images.append(hdu)

    rows = [(extname, kind[0]) for kind in kinds]
    extra = [dict(name="MEMBER_LOCATION", format="256A", array=[""] * 4),
             dict(name="MEMBER_URI_TYPE", format="3A", array=[""] * 4),
             dict(name="IMATYPE", format="32A", array=[r[1] for r in rows]),
             dict(name="CHANMIN", format="1I", array=np.full(4, channels[0], np.int16)),
             dict(name="CHANMAX", format="1I", array=np.full(4, channels[1], np.int16)),
             dict(name="E_MIN", format="1E", unit="keV", array=np.full(4, observation.e_min)),
             dict(name="E_MEAN", format="1E", unit="keV", array=np.full(4, e_mean)),
             dict(name="E_MAX", format="1E", unit="keV", array=np.full(4, observation.e_max)),
             dict(name="TFIRST", format="1D", unit="d", array=np.full(4, observation.tstart)),
             dict(name="TLAST", format="1D", unit="d", array=np.full(4, observation.tstop)),
             dict(name="TELAPSE", format="1D", unit="s", array=np.full(4, observation.telapse)),
             dict(name="ONTIME", format="1D", unit="s", array=np.full(4, observation.ontime))]
    grouping = _grouping_hdu(rows, observation, member_type="IMAGE", extra_columns=extra,
                             keys=dict(keys, GRPNAME=extname + "-IDX", IDXMEMBR=extname))
    return _write(path, [grouping] + images)


def _write_catalog(path, instrument):
    from astropy.io.fits.verify import VerifyWarning
    from astropy.table import Table

    cat = catalog_dict(instrument, min_significance=None)
    table = Table(cat["cat_column_list"], names=cat["cat_column_names"],
                  dtype=[d[1] for d in cat["cat_column_descr"]],
                  meta={"FRAME": "fk5", "COORD_UNIT": "deg", "LON_NAME": "ra", "LAT_NAME": "dec"})
    with warnings.catch_warnings():
        # COORD_UNIT becomes a HIERARCH card, as when the dispatcher writes a catalog.
        warnings.filterwarnings("ignore", "Keyword name", VerifyWarning)
        table.write(path, format="fits", overwrite=True)
    return Path(path)


# Responses: log-spaced grids; Gaussian redistribution; smooth effective areas.
