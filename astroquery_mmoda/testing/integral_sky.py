"""A synthetic INTEGRAL sky for the local dispatcher's INTEGRAL plugins.

``LocalDispatcher(integral=True)`` runs the dispatcher with the INTEGRAL plugins
(``isgri``, ``jemx``, ``spi_acs``).  Offline they have no archive to read, so
this module gives them one, generated at run time and deterministic:

* the product files that ``isgri`` and ``jemx`` read in ``query_type="Dummy"``
  mode, made from `TEST_SKY`: sky mosaics, source catalogs, spectra with their
  responses, light curves (`write_dummy_products`);
* `AcsService`, a loopback stand-in of the SPI-ACS light-curve web service that
  ``spi_acs`` calls in ``Real`` mode;
* `DdaService`, a loopback stand-in of the DDA analysis back-end of ``isgri`` and
  ``jemx`` in ``Real`` mode: it answers the connection test and refuses every
  analysis, so that such requests fail within seconds, except for two science
  windows: jobs of `SUBMITTED_SCW` stay ``submitted``, and ``isgri_lc`` of
  `LIGHTCURVE_SCW` gives one light curve per catalog source, as the public
  service does;
* `multi_source_lightcurve_envelope` and `ReplayDispatcher`: such a multi-source
  light-curve answer without a server (encoded by the dispatcher's own code),
  and a loopback server replaying prepared answers.

Times are INTEGRAL Julian Dates (IJD = MJD - 51544, in TT) as in OSA products.
"""
import dataclasses
import datetime
import gzip
import hashlib
import http.server
import json
import math
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.parse
import warnings
import zlib
from pathlib import Path

import numpy as np

__all__ = ["SkySource", "Observation", "TEST_SKY", "ISGRI_OBSERVATION", "JEMX_OBSERVATION",
           "ACS_BURSTS", "SUBMITTED_SCW", "LIGHTCURVE_SCW", "DUMMY_FOLDER", "DEFAULT_DETECTION_THRESHOLD",
           "IJD_MJDREF", "sky_sources", "catalog_dict", "utc_to_ijd", "write_dummy_products",
           "write_isgri_lightcurve", "acs_light_curve_text", "AcsService", "DdaService",
           "ReplayDispatcher", "start_integral_services", "multi_source_lightcurve_envelope"]

IJD_MJDREF = 51544.0
#: Folder, inside the dispatcher's working directory, holding the Dummy-mode files.
DUMMY_FOLDER = "integral-dummy-cache"
#: Science window whose ``Real``-mode jobs the DDA stand-in keeps ``submitted``.
SUBMITTED_SCW = "999999990010.001"
#: Science window for which the DDA stand-in computes ISGRI light curves of every
#: catalog source (``isgri_lc`` in ``Real`` mode).
LIGHTCURVE_SCW = "999999990020.001"
#: The plugins' default ``detection_threshold`` (sigma); catalogs keep sources above it.
DEFAULT_DETECTION_THRESHOLD = 7.0

_LAUNCH = datetime.datetime(2002, 10, 17, tzinfo=datetime.timezone.utc)
_END_OF_SCIENCE = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)
_IJD_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def _parse_utc(isot):
    value = datetime.datetime.fromisoformat(str(isot).strip().replace("Z", ""))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def utc_to_ijd(isot):
    """INTEGRAL Julian Date (MJD in TT minus 51544) of a UTC time.

    Parameters
    ----------
    isot : str or `datetime.datetime`
        UTC time, e.g. ``"2003-03-15T23:28:05"``.

    Returns
    -------
    float
    """
    from astropy.time import Time

    moment = isot if isinstance(isot, datetime.datetime) else _parse_utc(isot)
    moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return float(Time(moment, scale="utc").tt.mjd - IJD_MJDREF)


def _isot(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# -- what is observed -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Observation:
    """One synthetic pointing (science window) and the map made from it.

    Attributes
    ----------
    instrument : str
        ``"isgri"`` or ``"jemx"``.
    scw_id : str
        Science window identifier.
    start : str
        UTC start time.
    telapse, ontime : float
        Elapsed and good time (s).
    ra, dec : float
        Pointing direction and map centre (deg).
    e_min, e_max : float
        Energy band of the mosaic, catalog and light curves (keV).
    npix : int
        The mosaic is ``npix`` x ``npix`` pixels, TAN projection.
    pixel_deg : float
        Pixel size (deg).
    psf_fwhm_deg : float
        Width of the point-spread function (deg).
    noise_rate : float
        1-sigma noise of the intensity map where the exposure is full (count/s).
    crab_rate : float
        Count rate of the Crab in the band (count/s), for fluxes in mCrab.
    """

    instrument: str
    scw_id: str
    start: str
    telapse: float
    ontime: float
    ra: float
    dec: float
    e_min: float
    e_max: float
    npix: int
    pixel_deg: float
    psf_fwhm_deg: float
    noise_rate: float
    crab_rate: float

    @property
    def tstart(self):
        """Start time (IJD)."""
        return utc_to_ijd(self.start)

    @property
    def tstop(self):
        """End time (IJD)."""
        return self.tstart + self.telapse / 86400.0

    @property
    def end(self):
        """UTC end time (ISO)."""
        return _isot(_parse_utc(self.start) + datetime.timedelta(seconds=self.telapse))

    def plane(self, ra, dec):
        """Gnomonic (TAN) plane coordinates (deg) of a sky position around the map centre."""
        ra0, dec0 = math.radians(self.ra), math.radians(self.dec)
        ra1, dec1 = np.radians(ra), np.radians(dec)
        cos_c = (math.sin(dec0) * np.sin(dec1)
                 + math.cos(dec0) * np.cos(dec1) * np.cos(ra1 - ra0))
        xi = np.cos(dec1) * np.sin(ra1 - ra0) / cos_c
        eta = (math.cos(dec0) * np.sin(dec1) - math.sin(dec0) * np.cos(dec1) * np.cos(ra1 - ra0)) / cos_c
        return np.degrees(xi), np.degrees(eta)

    def pixel(self, ra, dec):
        """0-based pixel coordinates (x, y) of a sky position in the mosaic."""
        xi, eta = self.plane(ra, dec)
        centre = (self.npix - 1) / 2.0
        # RA grows to the left (negative CDELT1).
        return centre - xi / self.pixel_deg, centre + eta / self.pixel_deg

    def relative_exposure(self, xi, eta):
        """Exposure relative to on-axis at plane offsets ``xi``, ``eta`` (deg)."""
        xi, eta = np.abs(np.asarray(xi, float)), np.abs(np.asarray(eta, float))
        if self.instrument == "isgri":
            # IBIS: 9 deg square fully coded field, zero response 14.5 deg off-axis.
            def coded(offset):
                return np.clip(1.0 - (offset - 4.5) / 10.0, 0.0, 1.0)
            return coded(xi) * coded(eta)
        # JEM-X: collimator response falling linearly to zero at 6.6 deg.
        return np.clip(1.0 - np.hypot(xi, eta) / 6.6, 0.0, 1.0)

    def noise_at_pixel(self, x, y):
        """1-sigma intensity noise (count/s) at 0-based pixel (x, y)."""
        centre = (self.npix - 1) / 2.0
        xi = (centre - np.asarray(x, float)) * self.pixel_deg
        eta = (np.asarray(y, float) - centre) * self.pixel_deg
        return self.noise_rate / np.sqrt(np.maximum(self.relative_exposure(xi, eta), 1e-3))


#: ISGRI science window of revolution 51 (March 2003) towards the Galactic bulge edge.
ISGRI_OBSERVATION = Observation(
    instrument="isgri", scw_id="005100410010.001", start="2003-03-15T23:28:05",
    telapse=2000.0, ontime=1850.0, ra=258.5, dec=-38.0, e_min=20.0, e_max=40.0,
    npix=128, pixel_deg=0.1, psf_fwhm_deg=0.2, noise_rate=0.75, crab_rate=150.0)

#: JEM-X 2 science window of revolution 102 (August 2003), a Crab observation.
JEMX_OBSERVATION = Observation(
    instrument="jemx", scw_id="010200210010.001", start="2003-08-15T17:14:22",
    telapse=2200.0, ontime=2050.0, ra=84.2, dec=24.2, e_min=3.0, e_max=35.0,
    npix=128, pixel_deg=0.05, psf_fwhm_deg=0.05, noise_rate=0.3, crab_rate=95.0)

_OBSERVATIONS = {"isgri": ISGRI_OBSERVATION, "jemx": JEMX_OBSERVATION}


@dataclasses.dataclass(frozen=True)
class SkySource:
    """A source of the test sky, with the truth the products are made from.

    Attributes
    ----------
    name : str
        Catalog name (``NEW_<n>`` for a source not in the reference catalog).
    ra, dec : float
        ICRS position (deg).
    instrument : str
        Whose field it is in: ``"isgri"`` or ``"jemx"``.
    significance : float
        Detection significance (sigma) in the catalog and at the source's pixel
        of the significance map.
    rate : float
        Count rate (count/s) in the observation's band: the catalog flux, the
        value of the intensity map at the source's pixel, the sum of the
        spectrum's model over the band's channels and the light curve's mean.
    flux_mcrab : float
        ``rate`` in mCrab.
    photon_index : float
        Photon index of the (cut-off) power-law spectrum.
    cutoff_kev : float or None
        Exponential cut-off energy.
    new : bool
        ``NEW_SOURCE`` flag of the catalog.
    err_rad : float
        Position error radius (deg).
    variability : float
        Fractional amplitude of the light curve's modulation.
    """

    name: str
    ra: float
    dec: float
    instrument: str
    significance: float
    rate: float
    flux_mcrab: float
    photon_index: float
    cutoff_kev: float = None
    new: bool = False
    err_rad: float = 0.00028
    variability: float = 0.05

    @property
    def observation(self):
        """The `Observation` the source is seen in."""
        return _OBSERVATIONS[self.instrument]

    @property
    def pixel(self):
        """0-based (x, y) indices of the mosaic pixel that contains the source."""
        x, y = self.observation.pixel(self.ra, self.dec)
        return int(round(float(x))), int(round(float(y)))

    @property
    def skycoord(self):
        """The position as a `~astropy.coordinates.SkyCoord`."""
        from astropy.coordinates import SkyCoord

        return SkyCoord(self.ra, self.dec, unit="deg", frame="icrs")


def _source(name, ra, dec, instrument, *, significance=None, flux_mcrab=None, photon_index=2.0,
            **options):
    observation = _OBSERVATIONS[instrument]
    x, y = observation.pixel(ra, dec)
    sigma = float(observation.noise_at_pixel(round(float(x)), round(float(y))))
    if significance is None:
        rate = flux_mcrab / 1000.0 * observation.crab_rate
        significance = rate / sigma
    else:
        rate = significance * sigma
    return SkySource(name=name, ra=ra, dec=dec, instrument=instrument, significance=significance,
                     rate=rate, flux_mcrab=1000.0 * rate / observation.crab_rate,
                     photon_index=photon_index, **options)


#: The synthetic sky: `SkySource` objects at their real positions (NEW_1 excepted).
#: ISGRI field: bright known sources, a new source (NEW_1, above 8 sigma) and two
#: faint ones (7.6 and 5.6 sigma).  JEM-X field: the Crab and A 0535+26 (below the
#: default threshold).
TEST_SKY = (
    _source("4U 1700-377", 255.98654, -37.84414, "isgri", significance=21.2, photon_index=2.4,
            cutoff_kev=60.0, variability=0.3),
    _source("OAO 1657-415", 255.20375, -41.65600, "isgri", significance=17.8, photon_index=1.2,
            cutoff_kev=25.0, variability=0.15),
    _source("GX 349+2", 256.43542, -36.42306, "isgri", significance=13.9, photon_index=2.8),
    _source("GX 354-0", 262.99054, -33.83403, "isgri", significance=11.3, photon_index=2.0),
    _source("NEW_1", 259.65500, -39.87200, "isgri", significance=9.4, photon_index=2.0, new=True,
            err_rad=0.05),
    _source("IGR J17091-3624", 257.28171, -36.40714, "isgri", significance=7.6, photon_index=1.6),
    _source("1RXS J170849.0-400910", 257.19529, -40.14789, "isgri", significance=5.6,
            photon_index=1.3),
    _source("Crab", 83.63308, 22.01450, "jemx", flux_mcrab=1000.0, photon_index=2.1,
            variability=0.01),
    _source("A 0535+26", 84.72738, 26.31578, "jemx", significance=6.2, photon_index=1.8),
)


def sky_sources(instrument, *, min_significance=None, include_new=True):
    """The `TEST_SKY` sources of one instrument.

    Parameters
    ----------
    instrument : {"isgri", "jemx"}
    min_significance : float, optional
        Keep sources strictly above it, as the dispatcher's ``detection_threshold`` does.
    include_new : bool
        Keep ``NEW_SOURCE`` sources.

    Returns
    -------
    tuple of SkySource
    """
    return tuple(s for s in TEST_SKY if s.instrument == instrument
                 and (min_significance is None or s.significance > min_significance)
                 and (include_new or not s.new))


def catalog_dict(instrument="isgri", *, min_significance=DEFAULT_DETECTION_THRESHOLD):
    """A source catalog of the test sky in the dispatcher's JSON form.

    This is the form of the ``catalog`` product of an image and of the
    ``selected_catalog`` parameter (as a JSON string).

    Parameters
    ----------
    instrument : {"isgri", "jemx"}
    min_significance : float or None
        Keep sources strictly above it; `None` keeps all.

    Returns
    -------
    dict
    """
    sources = sky_sources(instrument, min_significance=min_significance)
    columns = [("meta_ID", "<i8", list(range(len(sources)))),
               ("src_names", f"<U{max([len(s.name) for s in sources] + [1])}",
                [s.name for s in sources]),
               ("significance", "<f8", [s.significance for s in sources]),
               ("ra", "<f8", [s.ra for s in sources]),
               ("dec", "<f8", [s.dec for s in sources])]
    if instrument == "isgri":
        columns += [("NEW_SOURCE", "<i8", [1 if s.new else -32768 for s in sources]),
                    ("ISGRI_FLAG", "<i8", [0 if s.new else 2 for s in sources])]
    columns += [("FLAG", "<i8", [0] * len(sources)), ("ERR_RAD", "<f8", [s.err_rad for s in sources])]
    return {"cat_frame": "fk5", "cat_coord_units": "deg",
            "cat_column_names": [c[0] for c in columns],
            "cat_column_list": [c[2] for c in columns],
            "cat_column_descr": [[c[0], c[1]] for c in columns],
            "cat_lat_name": "dec", "cat_lon_name": "ra"}


# -- FITS generators ----------------------------------------------------------------

_ISGRI = {"instrume": "IBIS", "detnam": "ISGRI"}
_JEMX = {"instrume": "JMX2", "detnam": "JMX2"}


def _seed(*parts):
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def _base_keys(observation):
    names = _ISGRI if observation.instrument == "isgri" else _JEMX
    return {"TELESCOP": "INTEGRAL", "INSTRUME": names["instrume"], "DETNAM": names["detnam"],
            "ORIGIN": "synthetic", "CREATOR": "astroquery_mmoda test sky"}


def _time_keys(observation, unit="d"):
    return {"DATE-OBS": observation.start, "DATE-END": observation.end,
            "TSTART": observation.tstart, "TSTOP": observation.tstop,
            "TELAPSE": observation.telapse, "ONTIME": observation.ontime,
            "MJDREF": IJD_MJDREF, "TIMESYS": "TT", "TIMEREF": "LOCAL", "TIMEUNIT": unit}


def _source_keys(source):
    return {"NAME": source.name, "SOURCEID": "J" + source.name.replace(" ", ""),
            "RA_OBJ": source.ra, "DEC_OBJ": source.dec, "RADECSYS": "FK5", "EQUINOX": 2000.0}


def _table_hdu(name, columns, keys=None):
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([fits.Column(**c) for c in columns], name=name)
    for key, value in (keys or {}).items():
        hdu.header[key] = value
    return hdu


def _write(path, hdus):
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU()] + list(hdus)).writeto(path, overwrite=True)
    return Path(path)


def _grouping_hdu(rows, observation, *, member_type, extra_columns=(), keys=None):
    n = len(rows)
    columns = [dict(name="MEMBER_XTENSION", format="8A", array=[member_type] * n),
               dict(name="MEMBER_NAME", format="32A", array=[r[0] for r in rows]),
               dict(name="MEMBER_VERSION", format="1J", array=np.ones(n, np.int32)),
               dict(name="MEMBER_POSITION", format="1J", array=np.arange(2, n + 2, dtype=np.int32))]
    columns += list(extra_columns)
    grouping_keys = {"BASETYPE": "DAL_GROUP", "TELESCOP": "INTEGRAL",
                     "INSTRUME": _base_keys(observation)["INSTRUME"]}
    grouping_keys.update(keys or {})
    return _table_hdu("GROUPING", columns, grouping_keys)


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
_RESPONSES = {
    "isgri": {"channels": np.geomspace(13.0, 1000.0, 63), "energies": np.geomspace(13.0, 1000.0, 151)},
    "jemx": {"channels": np.geomspace(3.0, 35.0, 33), "energies": np.geomspace(2.0, 40.0, 101)},
}


def _effective_area(instrument, energy):
    if instrument == "isgri":
        threshold = 1.0 / (1.0 + np.exp(-(energy - 18.0) / 2.0))
        return 1100.0 * threshold * np.exp(-(energy / 300.0) ** 1.3)
    window = 1.0 - np.exp(-(energy / 3.2) ** 3)
    return 95.0 * window / (1.0 + (energy / 22.0) ** 4)


def _resolution_sigma(instrument, energy):
    if instrument == "isgri":
        return 8.0 / 2.3548 * np.sqrt(energy / 100.0)
    return energy * 0.4 * np.sqrt(1.0 / energy + 1.0 / 60.0) / 2.3548


def _response(instrument):
    """(channel edges, energy edges, ARF, redistribution matrix)."""
    grids = _RESPONSES[instrument]
    channels, energies = grids["channels"], grids["energies"]
    centres = np.sqrt(energies[1:] * energies[:-1])
    sigma = _resolution_sigma(instrument, centres)
    erf = np.frompyfunc(math.erf, 1, 1)
    edges = erf((channels[None, :] - centres[:, None]) / (math.sqrt(2.0) * sigma[:, None])).astype(float)
    matrix = 0.5 * np.diff(edges, axis=1)
    return channels, energies, _effective_area(instrument, centres), matrix


def _model_counts(source, channels, energies, arf, matrix):
    """Folded count rate per channel (count/s), normalised to the source's band rate."""
    centres = np.sqrt(energies[1:] * energies[:-1])
    photons = centres ** -source.photon_index * np.diff(energies)
    if source.cutoff_kev:
        photons = photons * np.exp(-centres / source.cutoff_kev)
    counts = (photons * arf) @ matrix
    band = _band_channels(source.observation, channels)
    return counts * source.rate / counts[band].sum()


def _band_channels(observation, channels):
    centres = np.sqrt(channels[1:] * channels[:-1])
    return (centres >= observation.e_min) & (centres <= observation.e_max)


def _background_shape(instrument, channels):
    centres = np.sqrt(channels[1:] * channels[:-1])
    if instrument == "isgri":
        lines = 0.6 * np.exp(-0.5 * ((centres - 59.0) / 3.0) ** 2) + 0.4 * np.exp(
            -0.5 * ((centres - 75.0) / 3.5) ** 2)
        return np.diff(channels) * ((centres / 30.0) ** -1.3 + lines)
    return np.diff(channels) * (centres / 10.0) ** -0.5


def _spectrum_hdus(source, response):
    observation = source.observation
    names = _ISGRI if source.instrument == "isgri" else _JEMX
    channels, energies, arf, matrix = response
    nchan, nbin = len(channels) - 1, len(energies) - 1
    model = _model_counts(source, channels, energies, arf, matrix)
    # Background-dominated errors whose band total matches the image noise at the source.
    band = _band_channels(observation, channels)
    background = _background_shape(source.instrument, channels)
    band_sigma = source.rate / source.significance
    errors = np.sqrt(background / background[band].sum()) * band_sigma
    rng = np.random.default_rng(_seed("spectrum", source.name))
    rate = model + rng.normal(size=nchan) * errors
    low = channels[1:] <= (15.0 if source.instrument == "isgri" else 3.0)
    quality = np.where(low, 1, 0).astype(np.int16)
    exposure = observation.ontime * 0.8 if source.instrument == "isgri" else observation.ontime
    common = {"HDUCLASS": "OGIP", "TELESCOP": "INTEGRAL", "INSTRUME": names["instrume"],
              "DETNAM": names["detnam"], "CHANTYPE": "PI", "DETCHANS": nchan}

    spectrum_name = ("ISGR-EVTS-SPE" if source.instrument == "isgri" else "JMX2-PHA1-SPE")
    spec_keys = dict(common, HDUCLAS1="SPECTRUM", HDUCLAS2="NET", HDUCLAS3="RATE", HDUVERS="1.2.1",
                     EXPOSURE=exposure, AREASCAL=1.0, BACKSCAL=1.0, CORRSCAL=0.0, BACKFILE="NONE",
                     CORRFILE="NONE", RESPFILE="NONE", ANCRFILE="NONE", POISSERR=False,
                     ORIGIN="synthetic", CREATOR="astroquery_mmoda test sky", TLMIN1=0, TLMAX1=nchan - 1)
    spec_keys.update(_source_keys(source))
    spec_keys.update(_time_keys(observation))
    spectrum = _table_hdu(spectrum_name, [
        dict(name="CHANNEL", format="1I", array=np.arange(nchan, dtype=np.int16)),
        dict(name="RATE", format="1E", unit="count/s", array=rate),
        dict(name="SYS_ERR", format="1E", array=np.zeros(nchan)),
        dict(name="STAT_ERR", format="1E", unit="count/s", array=errors),
        dict(name="QUALITY", format="1I", array=quality),
        dict(name="GROUPING", format="1I", array=np.zeros(nchan, np.int16))], spec_keys)

    arf_name = "ISGR-ARF.-RSP" if source.instrument == "isgri" else "JMX2-AXIS-ARF"
    arf_hdu = _table_hdu(arf_name, [
        dict(name="ENERG_LO", format="1E", unit="keV", array=energies[:-1]),
        dict(name="ENERG_HI", format="1E", unit="keV", array=energies[1:]),
        dict(name="SPECRESP", format="1E", unit="cm**2", array=arf)],
        dict(common, HDUCLAS1="RESPONSE", HDUCLAS2="SPECRESP", HDUVERS="1.1.0"))

    rmf_name = "ISGR-RMF.-RSP" if source.instrument == "isgri" else "JMX2-RMF.-RSP"
    rmf_hdu = _table_hdu(rmf_name, [
        dict(name="ENERG_LO", format="1E", unit="keV", array=energies[:-1]),
        dict(name="ENERG_HI", format="1E", unit="keV", array=energies[1:]),
        dict(name="N_GRP", format="1I", array=np.ones(nbin, np.int16)),
        dict(name="F_CHAN", format="1I", array=np.zeros(nbin, np.int16)),
        dict(name="N_CHAN", format="1I", array=np.full(nbin, nchan, np.int16)),
        dict(name="MATRIX", format=f"{nchan}E", array=matrix.astype(np.float32))],
        dict(common, HDUCLAS1="RESPONSE", HDUCLAS2="RSP_MATRIX", HDUCLAS3="REDIST", HDUVERS="1.3.0",
             LO_THRES=0.0, TLMIN4=0, TLMAX4=nchan - 1))
    ebounds_name = "ISGR-EBDS-MOD" if source.instrument == "isgri" else "JMX2-FBDS-MOD"
    ebounds = _table_hdu(ebounds_name, [
        dict(name="CHANNEL", format="1I", array=np.arange(nchan, dtype=np.int16)),
        dict(name="E_MIN", format="1E", unit="keV", array=channels[:-1]),
        dict(name="E_MAX", format="1E", unit="keV", array=channels[1:])],
        dict(common, HDUCLAS1="RESPONSE", HDUCLAS2="EBOUNDS", HDUVERS="1.2.0", TLMIN1=0,
             TLMAX1=nchan - 1))
    return spectrum, arf_hdu, rmf_hdu, ebounds


def _write_isgri_spectra(folder, source, response):
    spectrum, arf, rmf, ebounds = _spectrum_hdus(source, response)
    grouping = _grouping_hdu([(rmf.name,), (ebounds.name,)], source.observation, member_type="BINTABLE")
    return [_write(folder / f"query_spectrum_isgri_sum_{source.name}.fits", [spectrum]),
            _write(folder / f"query_spectrum_arf_sum_{source.name}.fits", [arf]),
            _write(folder / f"query_spectrum_rmf_sum_{source.name}.fits", [grouping, rmf, ebounds])]


def _write_jemx_spectra(folder, source, response):
    spectrum, arf, rmf, ebounds = _spectrum_hdus(source, response)
    # The jemx plugin reads these three names whatever the source.
    return [_write(folder / "jemx_query_spectrum_spec_Crab_pha.fits.gz", [spectrum]),
            _write(folder / "jemx_query_spectrum_arf_Crab.fits.gz", [arf]),
            _write(folder / "jemx_query_spectrum_rmf_Crab.fits.gz", [rmf, ebounds])]


def _bins(observation, time_bin, gap):
    """Bin starts (IJD), bin width (d) and good-time fraction per bin."""
    width = time_bin / 86400.0
    count = int(math.ceil(observation.telapse / time_bin))
    starts = observation.tstart + width * np.arange(count)
    good = np.clip((observation.tstop - starts) / width, 0.0, 1.0)
    if gap is not None:
        gap_start = observation.tstart + gap[0] / 86400.0
        gap_stop = gap_start + gap[1] / 86400.0
        overlap = np.clip(np.minimum(starts + width, gap_stop) - np.maximum(starts, gap_start), 0, None)
        good = np.clip(good - overlap / width, 0.0, 1.0)
    good[good < 1e-6] = 0.0
    return starts, width, good


def _modulation(source, times):
    phase = (_seed("phase", source.name) % 1000) / 1000.0 * 2.0 * math.pi
    seconds = (times - times[0]) * 86400.0
    return 1.0 + source.variability * np.sin(2.0 * math.pi * seconds / 1500.0 + phase)


def write_isgri_lightcurve(path, source, *, time_bin=100.0):
    """Write an ISGRI light curve of a test-sky source as OSA makes it.

    The light curve covers `ISGRI_OBSERVATION`, in bins of ``time_bin`` seconds,
    with a 260 s telemetry gap half-way: bins inside it have ``FRACEXP`` 0 and a
    NaN rate.  Times are bin centres in IJD (header ``MJDREF`` = 51544, ``TIMESYS``
    TT, ``TIMEUNIT`` d); ``TIMEDEL`` and ``XAX_E`` are in days.

    Parameters
    ----------
    path : path-like
    source : SkySource
        An ISGRI source of `TEST_SKY` (or any `SkySource` in the ISGRI field).
    time_bin : float
        Bin width (s).

    Returns
    -------
    pathlib.Path
    """
    observation = ISGRI_OBSERVATION
    starts, width, good = _bins(observation, time_bin, gap=(0.55 * observation.telapse, 260.0))
    times = starts + width / 2.0
    count = len(times)
    rng = np.random.default_rng(_seed("isgri-lc", source.name, time_bin))
    sigma_pix = source.rate / source.significance
    empty = good == 0
    exposure = np.where(empty, 1.0, good * time_bin)
    errors = sigma_pix * np.sqrt(observation.ontime / exposure)
    rates = source.rate * _modulation(source, times) + rng.normal(size=count) * errors
    background = 130.0 * good * time_bin
    total = rng.poisson(background + 0.5 * np.clip(rates, 0, None) * good * time_bin).astype(float)
    rates[empty] = np.nan
    errors[empty] = np.nan
    keys = dict(_base_keys(observation), **_source_keys(source), **_time_keys(observation))
    keys.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="NET", HDUCLAS3="RATE", ISDCLEVL="LCR",
                E_MIN=observation.e_min, E_MAX=observation.e_max, EUNIT="keV", TIMEDEL=width,
                XAX_E=width / 2.0, TIMEPIXR=0.5, TIMEZERO=0.0)
    table = _table_hdu("ISGR-SRC.-LCR", [
        dict(name="TIME", format="1D", unit="d", array=times),
        dict(name="TOT_COUNTS", format="1E", unit="count", array=total),
        dict(name="BACKV", format="1E", unit="count", array=background),
        dict(name="BACKE", format="1E", unit="count", array=np.sqrt(background)),
        dict(name="RATE", format="1E", unit="count/s", array=rates),
        dict(name="ERROR", format="1E", unit="count/s", array=errors),
        dict(name="FRACEXP", format="1E", array=good),
        dict(name="XAX_E", format="1E", unit="d", array=np.full(count, width / 2.0)),
        dict(name="TIMEDEL", format="1D", unit="d", array=np.full(count, width))], keys)
    return _write(path, [table])


def _roemer_delay_s(ijd, ra, dec):
    """Light travel time (s) from the Earth to the solar-system barycentre towards (ra, dec).

    A low-precision solar ephemeris: good to a few seconds, plenty for a test file.
    """
    days = ijd - 0.5
    mean_anomaly = math.radians(357.528 + 0.9856003 * days)
    sun_longitude = math.radians(280.460 + 0.9856474 * days + 1.915 * math.sin(mean_anomaly)
                                 + 0.020 * math.sin(2 * mean_anomaly))
    distance = 1.00014 - 0.01671 * math.cos(mean_anomaly) - 0.00014 * math.cos(2 * mean_anomaly)
    obliquity = math.radians(23.439)
    ra, dec = math.radians(ra), math.radians(dec)
    source = (math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec))
    earth = (-distance * math.cos(sun_longitude),
             -distance * math.sin(sun_longitude) * math.cos(obliquity),
             -distance * math.sin(sun_longitude) * math.sin(obliquity))
    return 499.005 * sum(e * s for e, s in zip(earth, source))


def _write_jemx_lightcurve(path, source, time_bin=20.0):
    observation = JEMX_OBSERVATION
    starts, width, good = _bins(observation, time_bin, gap=None)
    times = starts + width / 2.0
    count = len(times)
    rng = np.random.default_rng(_seed("jemx-lc", source.name, time_bin))
    background_rate = 25.0
    exposure = np.maximum(good * time_bin, 1e-9)
    model = source.rate * _modulation(source, times)
    errors = np.sqrt((model + background_rate) * exposure) / exposure
    rates = model + rng.normal(size=count) * errors
    background_errors = np.sqrt(background_rate * exposure) / exposure
    delay = _roemer_delay_s(float(times.mean()), source.ra, source.dec) / 86400.0
    keys = dict(_base_keys(observation), **_source_keys(source), **_time_keys(observation))
    keys.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="NET", HDUCLAS3="RATE", ISDCLEVL="LCR",
                E_MIN=observation.e_min, E_MAX=observation.e_max, EUNIT="keV", TIMEDEL=width,
                TIMEPIXR=0.5, TIMEZERO=0.0)
    table = _table_hdu("JMX2-SRC.-LCR", [
        dict(name="TIME", format="1D", unit="d", array=times),
        dict(name="RATE", format="1E", unit="count/s", array=rates),
        dict(name="ERROR", format="1E", unit="count/s", array=errors),
        dict(name="BRATE", format="1E", unit="count/s", array=np.full(count, background_rate)),
        dict(name="BERROR", format="1E", unit="count/s", array=background_errors),
        dict(name="BARYTIME", format="1D", unit="d", array=times + delay),
        dict(name="FRACEXP", format="1E", array=good),
        dict(name="TIMEDEL", format="1D", unit="d", array=np.full(count, width))], keys)
    grouping = _grouping_hdu([("JMX2-SRC.-LCR",)], observation, member_type="BINTABLE",
                             extra_columns=[dict(name="NAME", format="20A", array=[source.name])],
                             keys={"IDXMEMBR": "JMX2-SRC.-LCR"})
    return _write(path, [grouping, table])


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

#: Bursts in the SPI-ACS stand-in's data: (UTC peak time, peak counts per 50 ms
#: above background, rise time s, decay time s).
ACS_BURSTS = (("2003-03-15T23:30:00", 2500.0, 0.3, 2.5),)
_ACS_BIN_S = 0.05
_ACS_BACKGROUND = 3200.0  # counts per 50 ms
_ACS_MAX_HALF_SPAN_S = 3600.0


def acs_light_curve_text(t0_isot, dt_s):
    """The SPI-ACS stand-in's answer for ``t0_isot`` +/- ``dt_s``.

    One line per 50 ms bin, ``<IJD> <s since t0> <counts> <s since UTC midnight>``,
    single spaces, as the SPI-ACS light-curve service writes it.  Counts are
    Poisson draws around a slowly varying background of about 3200 per bin plus
    the `ACS_BURSTS`; the same request always gives the same answer.  Times
    outside the mission (before the 2002-10-17 launch, after February 2025)
    give ``NoData``.

    Parameters
    ----------
    t0_isot : str
        Centre of the interval (UTC).
    dt_s : float
        Half-width of the interval (s), at most 3600.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For a malformed time or ``dt_s``.
    """
    t0 = _parse_utc(t0_isot)
    dt_s = float(dt_s)
    if not 0 < dt_s <= _ACS_MAX_HALF_SPAN_S:
        raise ValueError(f"dt_s must be in (0, {_ACS_MAX_HALF_SPAN_S:g}] s, not {dt_s:g}")
    if not _LAUNCH <= t0 - datetime.timedelta(seconds=dt_s) or t0 + datetime.timedelta(
            seconds=dt_s) > _END_OF_SCIENCE:
        return "NoData"
    count = int(round(2 * dt_s / _ACS_BIN_S))
    offsets = -dt_s + _ACS_BIN_S * np.arange(count)
    t0_ijd = utc_to_ijd(t0)
    ijd = t0_ijd + offsets / 86400.0
    seconds = ijd * 86400.0
    expected = _ACS_BACKGROUND * (1.0 + 0.03 * np.sin(2 * math.pi * seconds / 5400.0))
    for peak_time, amplitude, rise, decay in ACS_BURSTS:
        since = seconds - utc_to_ijd(peak_time) * 86400.0
        profile = np.where(since < 0, np.exp(-np.abs(since) / rise), np.exp(-since / decay))
        expected = expected + amplitude * np.where(np.abs(since) < 60.0, profile, 0.0)
    rng = np.random.default_rng(_seed("acs", t0.isoformat(), f"{dt_s:.3f}"))
    counts = rng.poisson(expected)
    midnight = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    since_midnight = (t0 - midnight).total_seconds() + offsets
    return "\n".join(f"{i:.10f} {o:.3f} {c:d} {m:.3f}"
                     for i, o, c, m in zip(ijd, offsets, counts, since_midnight)) + "\n"


# -- loopback HTTP services ---------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    service = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _serve(self, method):
        split = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, content_type, payload = self.service._dispatch(method, split.path,
                                                                   split.query, body, self.headers)
        except Exception as exc:  # a stand-in must answer, whatever happens
            status, content_type, payload = 500, "text/plain", repr(exc).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")


class _LoopbackService:
    """An HTTP service on 127.0.0.1 (free port) in a background thread."""

    name = "service"

    def __init__(self):
        self._server = None
        self._thread = None
        self._lock = threading.Lock()
        self._served = 0

    def start(self):
        """Start listening; returns ``self``."""
        if self._server is not None:
            return self
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"service": self})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self.name}-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=10)

    @property
    def port(self):
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError(f"the {self.name} stand-in is not started")
        return self._server.server_address[1]

    @property
    def root_url(self):
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests_served(self):
        """How many requests it has answered."""
        with self._lock:
            return self._served

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = f"at {self.root_url}" if self._server is not None else "stopped"
        return f"<{type(self).__name__} {state}, {self.requests_served} requests served>"

    def _dispatch(self, method, path, query, body, headers):
        with self._lock:
            self._served += 1
        return self.handle(method, path, query, body, headers)

    def handle(self, method, path, query, body, headers):  # pragma: no cover - abstract
        raise NotImplementedError


def _json_answer(obj, status=200):
    return status, "application/json", json.dumps(obj).encode()


def _analysis_exception(message):
    return {"exception_type": "analysis",
            "exception": ["dataanalysis.core.AnalysisException", message]}


class AcsService(_LoopbackService):
    """Stand-in of the SPI-ACS light-curve web service.

    Answers ``GET /genlc/ACS/{t0_isot}/{dt_s}`` (the plugin also repeats both in
    the query string) with `acs_light_curve_text`.
    """

    name = "spi-acs"

    @property
    def url(self):
        """The URL template the ``spi_acs`` plugin is configured with."""
        return self.root_url + "/genlc/ACS/{t0_isot}/{dt_s}"

    def handle(self, method, path, query, body, headers):
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if len(parts) != 4 or parts[:2] != ["genlc", "ACS"]:
            return 404, "text/plain", b"unknown resource"
        try:
            text = acs_light_curve_text(parts[2], parts[3])
        except ValueError as exc:
            return 400, "text/plain", str(exc).encode()
        return 200, "text/plain", text.encode()


class DdaService(_LoopbackService):
    """Stand-in of the DDA back-end of the ``isgri`` and ``jemx`` plugins (Real mode).

    ``poke`` succeeds.  An analysis naming the science window `SUBMITTED_SCW` is
    delegated: its job stays ``submitted``.  The ISGRI light-curve analysis
    (``isgri_lc``) of `LIGHTCURVE_SCW` succeeds, with one light curve per source
    of the request's catalog (``selected_catalog``; by default the ISGRI sources
    above `DEFAULT_DETECTION_THRESHOLD`), made by `write_isgri_lightcurve` with
    the requested time bin.  Every other analysis answers a DDA
    ``AnalysisException`` ("no data found for <target> ..."), which the
    dispatcher reports as a failed query.  Attribute ``targets`` lists the
    analysis targets requested so far.
    """

    name = "dda"

    def __init__(self):
        super().__init__()
        self.targets = []
        self._files = {}

    @property
    def url(self):
        """The service URL, as the plugins' ``data_server_url`` wants it (without ``public=``)."""
        return self.root_url + "/dda"

    def handle(self, method, path, query, body, headers):
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["dda", "api"]:
            return 404, "text/plain", b"unknown resource"
        target = parts[-1]
        if target == "poke":
            return _json_answer({"result": "poke OK", "status": "ok"})
        if target == "fetch-file":
            wanted = dict(urllib.parse.parse_qsl(query))
            with self._lock:
                content = self._files.get((wanted.get("cached_path"), wanted.get("filename")))
            if content is None:
                return 404, "text/plain", b"no such file"
            return 200, "application/octet-stream", content
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = dict(urllib.parse.parse_qsl(query))
        with self._lock:
            self.targets.append(target)
        assume = str(params.get("assume", ""))
        answer = {"data": None, "cached_path": [], "result": {"status": "done", "output": ""}}
        if SUBMITTED_SCW in assume:
            answer["exceptions"] = {"exception_type": "delegation", "delegation_state": "submitted"}
            answer["result"]["status"] = "submitted"
        elif LIGHTCURVE_SCW in assume and target == "ISGRILCSum":
            try:
                answer.update(self._light_curves(assume, params.get("inject")), exceptions=[])
            except Exception as exc:  # any other answer makes the client retry for minutes
                answer["exceptions"] = _analysis_exception(f"light curves failed: {exc!r}")
        else:
            answer["exceptions"] = _analysis_exception(
                f"no data found for {target} (offline DDA stand-in, no INTEGRAL archive)")
        return _json_answer(answer)

    def _light_curves(self, assume, inject):
        found = re.search(r"use_time_bin_seconds=([0-9.eE+-]+)", assume)
        time_bin = float(found.group(1)) if found else 1000.0
        if not 1.0 <= time_bin <= 86400.0:
            raise ValueError(f"time bin {time_bin:g} s out of the stand-in's range [1, 86400] s")
        sources = sky_sources("isgri", min_significance=DEFAULT_DETECTION_THRESHOLD)
        try:
            catalog = json.loads(inject) if isinstance(inject, str) else inject
            names = [row["NAME"] for item in catalog or [] if item[0] == "SourceCatalog"
                     for row in item[1]["catalog"]]
        except (ValueError, TypeError, KeyError, IndexError):
            names = []
        if names:
            known = {s.name: s for s in sky_sources("isgri")}
            sources = [known[name] for name in names if name in known]
        key = hashlib.sha256(json.dumps([time_bin, [s.name for s in sources]]).encode()).hexdigest()[:16]
        cached_path = f"data/reduced/ddcache/ISGRILCSum.v2/{key}"
        data = {"extracted_sources": []}
        with tempfile.TemporaryDirectory(prefix="mmoda-dda-") as folder:
            for index, source in enumerate(sources):
                filename = f"isgri_lc_{index}.fits"
                path = write_isgri_lightcurve(Path(folder) / filename, source, time_bin=time_bin)
                with self._lock:
                    self._files[(cached_path, filename)] = gzip.compress(path.read_bytes(), mtime=0)
                data[f"lc_{index}"] = ["DataFile", filename]
                data["extracted_sources"].append([source.name, f"lc_{index}"])
        return {"data": data, "cached_path": [cached_path]}


class ReplayDispatcher(_LoopbackService):
    """A loopback server answering ``run_analysis`` with prepared envelopes.

    Parameters
    ----------
    envelopes : dict or list of dict
        The JSON answer(s) to ``/run_analysis``; a list is served in order, its
        last element repeated.
    routes : dict, optional
        Further ``{path: JSON object}`` answers (e.g. ``"/api/instr-list"``).

    Attributes
    ----------
    requests : list of dict
        The parameters (query string and form) of each ``run_analysis`` request.
    """

    name = "replay-dispatcher"

    def __init__(self, envelopes, *, routes=None):
        super().__init__()
        self._envelopes = list(envelopes) if isinstance(envelopes, (list, tuple)) else [envelopes]
        if not self._envelopes:
            raise ValueError("ReplayDispatcher needs at least one envelope")
        self._routes = dict(routes or {})
        self.requests = []

    @property
    def url(self):
        """Root URL to point a client at."""
        return self.root_url

    def handle(self, method, path, query, body, headers):
        if path.rstrip("/").endswith("/run_analysis") or path.rstrip("/") == "run_analysis":
            params = dict(urllib.parse.parse_qsl(query))
            if body and "json" not in (headers.get("Content-Type") or ""):
                params.update(urllib.parse.parse_qsl(body.decode(errors="replace")))
            with self._lock:
                self.requests.append(params)
                envelope = self._envelopes[min(len(self.requests), len(self._envelopes)) - 1]
            return _json_answer(envelope)
        if path in self._routes:
            return _json_answer(self._routes[path])
        return _json_answer({"error": f"no recorded answer for {path}"}, status=404)


# -- start-up -------------------------------------------------------------------------

_OSA_CONF = """\
instruments:
  isgri:
    dispatcher_mnt_point: .
    data_server_cache: reduced/ddcache
    dummy_cache: {dummy}
    data_server_url: {dda}
    data_server_port:
  jemx:
    dispatcher_mnt_point: .
    data_server_cache: reduced/ddcache
    dummy_cache: {dummy}
    data_server_url: {dda}
    data_server_port:
"""

_SPIACS_CONF = """\
instruments:
  spi_acs:
    dispatcher_mnt_point:
    data_server_cache:
    dummy_cache: {dummy}
    data_server_url: {acs}
"""


def start_integral_services(workdir):
    """Write the test sky and the plugins' configuration; start both stand-ins.

    Parameters
    ----------
    workdir : path-like
        The dispatcher's working directory.

    Returns
    -------
    services : list
        The running `AcsService` and `DdaService` (each has ``stop()``).
    env : dict
        Environment variables for the dispatcher: the plugins' configuration
        files, and a placeholder DDA credential (so that the DDA client reads no
        credential file of the user's).
    """
    workdir = Path(workdir)
    dummy = workdir / DUMMY_FOLDER
    write_dummy_products(dummy)
    services = []
    try:
        acs = AcsService().start()
        services.append(acs)
        dda = DdaService().start()
        services.append(dda)
        osa_conf = workdir / "osa_plugin_conf.yml"
        # ddaclient looks the public back-end up by the name "public".
        osa_conf.write_text(_OSA_CONF.format(dummy=json.dumps(str(dummy)),
                                             dda=json.dumps(f"public={dda.url}")))
        spiacs_conf = workdir / "spiacs_plugin_conf.yml"
        spiacs_conf.write_text(_SPIACS_CONF.format(dummy=json.dumps(str(dummy)),
                                                   acs=json.dumps(acs.url)))
    except BaseException:
        for service in services:
            service.stop()
        raise
    env = {"CDCI_OSA_PLUGIN_CONF_FILE": str(osa_conf),
           "CDCI_SPIACS_PLUGIN_CONF_FILE": str(spiacs_conf),
           "DDA_TOKEN": "offline-test-sky"}
    return services, env


# -- multi-source light curves in the public shape ------------------------------------

# Runs in the dispatcher's environment: the plugin's own product builder and the
# dispatcher's encoder, on a DDA-like result listing several sources.
_ENCODER_SCRIPT = r"""
import json, sys, tempfile
import numpy
for _name, _value in (("bool", bool), ("int", int), ("float", float)):
    if _name not in numpy.__dict__:
        setattr(numpy, _name, _value)
from cdci_osa_plugin.osa_common_pars import DummyOsaRes
import cdci_osa_plugin.osa_lightcurve_query as lc_query
# the class is spelled OsaLigthtCurve in the 1.0 plugin, OsaLightCurve in 2.0
LightCurve = getattr(lc_query, "OsaLightCurve", None) or lc_query.OsaLigthtCurve
from oda_api.api import DispatcherAPI

job = json.load(open(sys.argv[1]))
res = DummyOsaRes()
res.extracted_sources = []
for index, path in enumerate(job["files"]):
    setattr(res, "lc_%d" % index, path)
    res.extracted_sources.append(("source_%d" % index, "lc_%d" % index))
with tempfile.TemporaryDirectory() as out_dir:
    products = LightCurve.build_isgri_lc_from_ddosa_res(res, file_dir=out_dir, prod_prefix="")
    encoded = [product.data.encode() for product in products]
api_code = DispatcherAPI.set_api_code(job["par_dic"], url=job["url"])
with open(job["output"], "w") as handle:
    json.dump({"numpy_data_product_list": encoded, "api_code": api_code}, handle)
"""


def _identifier(text, length, alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def multi_source_lightcurve_envelope(token=None, *, sources=None, time_bin=100.0, venv_dir=None,
                                     server=None, timeout=180.0):
    """A ``run_analysis`` answer with one ISGRI light curve per source, as MMODA gives it.

    The public MMODA answers an ``isgri_lc`` request with one light-curve
    product per catalog source; the plugin's Dummy mode gives one.  This builds
    the public shape from light curves of the test sky (`write_isgri_lightcurve`)
    with the plugin's own product builder and the dispatcher's encoder, run in
    the dispatcher's virtual environment (a few seconds).

    Parameters
    ----------
    token : str, optional
        Echoed in ``analysis_parameters`` and ``api_code``, as the server does.
    sources : sequence of SkySource, optional
        Default: the ISGRI sources above `DEFAULT_DETECTION_THRESHOLD`.
    time_bin : float
        Light-curve bin (s).
    venv_dir : path-like, optional
        The dispatcher's environment (see ``default_venv_dir``); installed if needed.
    server : str, optional
        The dispatcher version of that environment (see ``servers.SERVERS``).
    timeout : float
        Seconds allowed for the encoding subprocess.

    Returns
    -------
    dict
        The JSON envelope: ``query_status`` "done", ``exit_status``,
        ``job_monitor``, and ``products`` with ``analysis_parameters``,
        ``api_code``, ``input_prod_list``, ``job_id``, ``session_id`` and
        ``numpy_data_product_list`` (each product: name ``isgri_lc``, meta-data
        ``src_name``, ``time_bin`` (d), ``time`` "TIME", ``rate`` "RATE",
        ``rate_err`` "ERROR").
    """
    from .servers import provision_dispatcher_venv, venv_python

    if sources is None:
        sources = sky_sources("isgri", min_significance=DEFAULT_DETECTION_THRESHOLD)
    sources = list(sources)
    observation = ISGRI_OBSERVATION
    par_dic = {
        "DEC": observation.dec, "E1_keV": observation.e_min, "E2_keV": observation.e_max,
        "RA": observation.ra, "T1": observation.start + ".000", "T2": observation.end + ".000",
        "T_format": "isot", "api": "True", "instrument": "isgri", "max_pointings": 500,
        "osa_version": "OSA11.2", "product_type": "isgri_lc", "query_status": "new",
        "query_type": "Real", "radius": 15.0, "scw_list": [observation.scw_id],
        "selected_catalog": json.dumps(catalog_dict("isgri", min_significance=None) if not sources
                                       else _catalog_of(sources)),
        "src_name": sources[0].name if sources else "", "time_bin": float(time_bin),
        "time_bin_format": "sec", "token": token,
    }
    fingerprint = json.dumps({k: v for k, v in par_dic.items() if k != "token"}, sort_keys=True)
    job_id = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    session_id = _identifier(fingerprint, 16)
    par_dic["session_id"] = session_id

    python = venv_python(provision_dispatcher_venv(venv_dir, server=server))
    with tempfile.TemporaryDirectory(prefix="mmoda-lc-") as folder:
        folder = Path(folder)
        files = [str(write_isgri_lightcurve(folder / f"isgri_lc_{i}.fits", s, time_bin=time_bin))
                 for i, s in enumerate(sources)]
        job = folder / "job.json"
        output = folder / "encoded.json"
        job.write_text(json.dumps({"files": files, "par_dic": par_dic, "output": str(output),
                                   "url": "https://www.astro.unige.ch/mmoda/dispatch-data"}))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["CDCI_OSA_PLUGIN_CONF_FILE"] = os.devnull
        done = subprocess.run([str(python), "-W", "ignore", "-c", _ENCODER_SCRIPT, str(job)],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0 or not output.exists():
            raise RuntimeError("encoding the light curves in the dispatcher's environment failed:\n"
                               + (done.stdout + done.stderr)[-4000:])
        encoded = json.loads(output.read_text())

    exit_status = {"comment": "", "debug_message": "", "error_message": "", "job_status": "done",
                   "message": "", "status": 0, "warning": ""}
    return {
        "exit_status": exit_status,
        "job_monitor": {"job_id": job_id, "session_id": session_id, "status": "done"},
        "job_status": "done",
        "products": {
            "analysis_parameters": par_dic,
            "api_code": encoded["api_code"],
            "input_prod_list": [observation.scw_id],
            "job_id": job_id,
            "numpy_data_product_list": encoded["numpy_data_product_list"],
            "prod_process_message": "",
            "session_id": session_id,
        },
        "query_status": "done",
        "session_id": session_id,
        "time_request": time.time(),
    }


def _catalog_of(sources):
    names = {s.name for s in sources}
    instrument = sources[0].instrument
    full = catalog_dict(instrument, min_significance=None)
    keep = [i for i, name in enumerate(full["cat_column_list"][1]) if name in names]
    full["cat_column_list"] = [[column[i] for i in keep] for column in full["cat_column_list"]]
    full["cat_column_list"][0] = list(range(len(keep)))
    return full
