"""The synthetic INTEGRAL sky: observations, sources and their catalogs."""
import dataclasses
import datetime
import math

import numpy as np


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

#: Revolutions of the synthetic campaign ScWs ``RRRRPPPP0010.001`` (P: pointing 1-99), for which
#: the DDA stand-in makes ISGRI light curves in Real mode, one stretch of bins per ScW.
CAMPAIGN_REVOLUTIONS = range(100, 1000)
_REVOLUTION_S = 3 * 86400.0 - 360.0  # INTEGRAL's orbit, about 3 days
_POINTING_S = 3700.0


def campaign_observation(scw_id):
    """The ISGRI `Observation` of a synthetic campaign ScW, or None for any other ScW.

    A campaign ScW ``RRRRPPPP0010.001`` (revolution ``R`` in `CAMPAIGN_REVOLUTIONS`,
    pointing ``P``) points at the ISGRI field for 3600 s (3400 s good), starting
    ``P`` x 3700 s into revolution ``R``, counted from the launch.

    Examples
    --------
    >>> campaign_observation("010000020010.001").start
    '2003-08-12T16:03:20'
    >>> campaign_observation("005100410010.001") is None
    True
    """
    if not (len(scw_id) == 16 and scw_id[:12].isdigit() and scw_id.endswith("0010.001")):
        return None
    revolution, pointing = int(scw_id[:4]), int(scw_id[4:8])
    if revolution not in CAMPAIGN_REVOLUTIONS or not 1 <= pointing <= 99:
        return None
    start = _LAUNCH + datetime.timedelta(seconds=revolution * _REVOLUTION_S + pointing * _POINTING_S)
    return dataclasses.replace(ISGRI_OBSERVATION, scw_id=scw_id, start=_isot(start), telapse=3600.0,
                               ontime=3400.0)


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
