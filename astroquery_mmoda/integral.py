"""INTEGRAL requests: the instruments of MMODA and the parameters of their products.

Knows the INTEGRAL instruments of MMODA (ISGRI, JEM-X, SPI-ACS), their product
names and limits, and turns the arguments of the ``Mmoda`` INTEGRAL methods into
product parameters.  The results are shaped in `astroquery_mmoda.integral_results`
(whose public names are importable from here too).  No HTTP here.
"""
from dataclasses import dataclass

from astropy import units as u

from . import params as _params
from . import quantities
from .catalogs import add_sources
from .display import brief
from .params import suggest
from .exceptions import InvalidQueryError
from .integral_results import (LightCurveSet, Spectrum, SpectrumSet, catalog_result,  # noqa: F401
                               group_spectra, images_result, lightcurve_result,
                               lightcurve_to_timeseries, select_sources, shape_catalog)

__all__ = ["INSTRUMENTS", "LightCurveSet", "Spectrum", "SpectrumSet", "add_sources", "select_sources"]


@dataclass(frozen=True)
class InstrumentInfo:
    """What the client knows of an INTEGRAL instrument on MMODA."""
    name: str
    products: dict
    energy_limits: tuple = None     # keV, inclusive
    default_energy: tuple = None    # keV
    default_radius: float = None    # deg
    min_time_bin: float = None      # s
    max_time_bin: float = None      # s


INSTRUMENTS = {
    "isgri": InstrumentInfo("isgri", {"image": "isgri_image", "spectrum": "isgri_spectrum",
                                      "lightcurve": "isgri_lc"},
                            energy_limits=(15.0, 800.0), default_energy=(30.0, 80.0),
                            default_radius=8.0, min_time_bin=20.0, max_time_bin=4000.0),
    "jemx": InstrumentInfo("jemx", {"image": "jemx_image", "spectrum": "jemx_spectrum",
                                    "lightcurve": "jemx_lc"},
                           energy_limits=(3.0, 35.0), default_energy=(3.0, 20.0),
                           default_radius=4.0, min_time_bin=1.0, max_time_bin=4000.0),
    "spi_acs": InstrumentInfo("spi_acs", {"lightcurve": "spi_acs_lc"},
                              min_time_bin=0.05, max_time_bin=1000.0),
}
"""The INTEGRAL instruments and their MMODA products."""

#: Most pointings allowed without the ``unige-hpc-full`` role, and with it.
MAX_POINTINGS_GENERAL = 50
MAX_POINTINGS_HPC = 500


def canonical_instrument(instrument):
    """MMODA's name of an INTEGRAL instrument given in any case, ``-`` or ``_`` (else as given).

    Examples
    --------
    >>> canonical_instrument("ISGRI"), canonical_instrument("SPI-ACS"), canonical_instrument("xmm")
    ('isgri', 'spi_acs', 'xmm')
    """
    if isinstance(instrument, str):
        wanted = instrument.strip().lower().replace("-", "_")
        if wanted in INSTRUMENTS:
            return wanted
    return instrument


def instrument_info(instrument, kind):
    """The `InstrumentInfo` of ``instrument``, checking that it offers ``kind``."""
    info = INSTRUMENTS.get(canonical_instrument(instrument))
    if info is None:
        raise InvalidQueryError(f"unknown INTEGRAL instrument {instrument!r}"
                                f"{suggest(str(instrument).lower(), INSTRUMENTS)}; choose one of "
                                f"{', '.join(INSTRUMENTS)} (or use Mmoda.get_product)")
    if kind not in info.products:
        offering = [name for name, i in INSTRUMENTS.items() if kind in i.products]
        raise InvalidQueryError(f"{instrument} has no {kind} product on MMODA; "
                                f"instruments with one: {', '.join(offering)}")
    return info


def check_pointings(max_pointings, roles, *, logged_in):
    """Check ``max_pointings`` against the limits of the token's ``roles``.

    Parameters
    ----------
    max_pointings : int
    roles : collection of str
        The logged-in token's roles (empty when not logged in).
    logged_in : bool
        Only for the message.

    Returns
    -------
    int
    """
    if isinstance(max_pointings, bool) or not isinstance(max_pointings, int) or max_pointings < 1:
        raise InvalidQueryError("max_pointings must be a positive integer, not "
                                f"{brief(max_pointings)}")
    if max_pointings > 10 ** 9:
        raise InvalidQueryError(f"max_pointings is too large: MMODA allows at most {MAX_POINTINGS_HPC}")
    if max_pointings > MAX_POINTINGS_HPC and "unige-hpc-extreme" not in roles:
        raise InvalidQueryError(
            f"max_pointings={max_pointings} is above {MAX_POINTINGS_HPC}, which needs the "
            "'unige-hpc-extreme' role (your token lacks it)")
    if max_pointings > MAX_POINTINGS_GENERAL and not {"unige-hpc-full", "unige-hpc-extreme"} & set(roles):
        raise InvalidQueryError(
            f"max_pointings={max_pointings} is above {MAX_POINTINGS_GENERAL}, which needs the "
            "'unige-hpc-full' role" + ("" if logged_in else " (and you are not logged in)"))
    return max_pointings


def integral_params(instrument, kind, coordinates, *, start_time, end_time, roles=(),
                    logged_in=False, radius=None, energy_range=None, max_pointings=None,
                    osa_version=None, scw_list=None, catalog=None, time_bin=None,
                    detection_threshold=None):
    """The product and parameters of an INTEGRAL request, checked.

    Parameters
    ----------
    instrument : str
        A key of `INSTRUMENTS`.
    kind : {'image', 'spectrum', 'lightcurve'}
    coordinates, start_time, end_time, radius, energy_range, max_pointings, osa_version, \
scw_list, catalog, time_bin, detection_threshold
        As the ``Mmoda`` INTEGRAL methods take them.
    roles, logged_in
        The token's roles and whether there is one (see `check_pointings`).

    Returns
    -------
    product : str
        The MMODA product name.
    params : dict
        Its parameters (a catalog Table is left for the wire conversion).
    meta : dict
        Instrument, time range, position and energy band, for the results.
    """
    info = instrument_info(instrument, kind)
    position = quantities.sky_position(coordinates)
    start, end = quantities.time_range(start_time, end_time)
    params = {"RA": round(position.ra.deg, 8), "DEC": round(position.dec.deg, 8),
              "T1": start.utc.isot, "T2": end.utc.isot}
    if info.energy_limits:
        low, high = quantities.energy_range(energy_range if energy_range is not None
                                            else info.default_energy * u.keV, info)
        params.update(E1_keV=low, E2_keV=high)
    elif energy_range is not None:
        raise InvalidQueryError(f"{instrument} light curves have no energy selection")
    if radius is not None:
        params["radius"] = quantities.angle_deg(radius, "radius")
    if max_pointings is not None:
        params["max_pointings"] = check_pointings(max_pointings, roles, logged_in=logged_in)
    if osa_version is not None:
        if not isinstance(osa_version, str) or not osa_version.startswith("OSA"):
            raise InvalidQueryError(f"osa_version must look like 'OSA11.2', not {osa_version!r}")
        params["osa_version"] = osa_version
    if scw_list is not None:
        params["scw_list"] = quantities.science_windows(scw_list)
    if catalog is not None:
        if not hasattr(catalog, "colnames"):
            raise InvalidQueryError(
                "catalog must be a Table as returned by Mmoda.query_region (maybe filtered, e.g. "
                f"with select_sources), not {type(catalog).__name__}")
        _params.check_catalog(catalog, instrument)
        params["selected_catalog"] = catalog
    if time_bin is not None:
        params["time_bin"] = quantities.time_bin(time_bin, info)
    if detection_threshold is not None:
        if isinstance(detection_threshold, bool) or not isinstance(detection_threshold, (int, float)) \
                or not 0 < detection_threshold < 1e6:
            raise InvalidQueryError("detection_threshold must be a positive number of sigma "
                                    "(below a million)")
        params["detection_threshold"] = float(detection_threshold)
    meta = {"instrument": instrument, "start_time": start.utc.isot, "end_time": end.utc.isot,
            "ra": params["RA"], "dec": params["DEC"]}
    if "E1_keV" in params:
        meta.update(E1_keV=params["E1_keV"], E2_keV=params["E2_keV"])
    return info.products[kind], params, meta


# The keyword arguments of the INTEGRAL methods, and habits of other clients: an extra parameter
# named like one of them is a mistake worth a hint rather than a parameter sent to the server.
METHOD_ARGUMENTS = ("start_time", "end_time", "instrument", "energy_range", "max_pointings", "osa_version",
                    "scw_list", "detection_threshold", "time_bin", "catalog", "radius", "split_by",
                    "drop_empty", "query_type", "timeout", "cache", "get_query_payload")
_HABITS = {
    "async_job": "use the method's _async form (e.g. get_lightcurve_async), which returns the Job",
    "wait": "use the method's _async form to submit without waiting",
    "verbose": "set the log level instead: from astroquery import log; log.setLevel('INFO')",
    "product_type": "give query_type='Real' or 'Dummy' (oda_api's product_type is the query type)",
    "coordinates": "give the position as the first argument",
}


def add_extra_params(params, extra):
    """``params`` updated with the user's other product parameters, which may not repeat them.

    Extra parameters named like an argument of the methods (``energy=`` for
    ``energy_range=``) or after another client's habit (``async_job=``,
    ``verbose=``) are refused with a hint.
    """
    reserved = set(extra) & set(params)
    if reserved:
        raise InvalidQueryError(f"give {', '.join(sorted(reserved))} through the method's own "
                                "arguments, not as extra parameters")
    for name in extra:
        if name in _HABITS:
            raise InvalidQueryError(f"{name}= is not an argument of the INTEGRAL methods: {_HABITS[name]}")
        hint = suggest(name, METHOD_ARGUMENTS)
        if hint and name not in _params.CONTROL_ARGS and not name[:1].isupper():
            raise InvalidQueryError(f"{name}= is not an argument of the INTEGRAL methods{hint}")
    params.update(extra)
    return params


def lightcurve_options(instrument, *, time_bin, energy_range, radius, max_pointings, osa_version,
                       scw_list, catalog):
    """The `integral_params` options of a light curve (SPI-ACS takes only a bin and no energy)."""
    options = dict(time_bin=time_bin, energy_range=energy_range)
    if canonical_instrument(instrument) != "spi_acs":
        options.update(radius=radius, max_pointings=max_pointings, osa_version=osa_version,
                       scw_list=scw_list, catalog=catalog)
    elif any(v is not None for v in (radius, max_pointings, osa_version, scw_list, catalog)):
        raise InvalidQueryError("SPI-ACS light curves take no radius, max_pointings, "
                                "osa_version, scw_list or catalog")
    return options
