"""The values astronomers give the INTEGRAL helpers, as plain numbers in wire units.

Sky positions, time ranges, energy ranges, angles, bin widths and science
window lists: each function takes the astropy object (or its text), checks it
and returns what the dispatcher takes, raising
`~astroquery.exceptions.InvalidQueryError` for anything else.
"""
import re

from astropy import units as u

from .display import brief
from .exceptions import InvalidQueryError

__all__ = ["angle_deg", "energy_range", "science_windows", "sky_position", "time_bin", "time_range"]


def _scalar(value, unit, name, *, kind, example, equivalencies=None):
    """A scalar `~astropy.units.Quantity` as a float in ``unit``, or an error naming ``name``.

    ``kind`` says what is wanted ("an angle"); ``example`` shows one ("8 * u.deg").
    """
    if not isinstance(value, u.Quantity):
        raise InvalidQueryError(f"{name} must be {kind} Quantity, e.g. {example}")
    if not value.isscalar:
        raise InvalidQueryError(f"{name} must be a single value, not an array of {value.size}")
    try:
        return float(value.to_value(unit, equivalencies=equivalencies or []))
    except u.UnitsError:
        raise InvalidQueryError(f"{name} must be {kind}, not {value.unit}") from None


def _number(value):
    """``value`` as a float when it is a number or a number's text, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def sky_position(coordinates):
    """A single ICRS `~astropy.coordinates.SkyCoord` from a SkyCoord, coordinates as text, or a name.

    A text that is not coordinates is resolved as an object name (``'Crab'``,
    ``'4U 1700-377'``) through CDS Sesame, as astroquery modules do
    (`~astropy.coordinates.SkyCoord.from_name`; this needs the internet).
    """
    from astropy.coordinates import SkyCoord

    if isinstance(coordinates, SkyCoord):
        position = coordinates
    elif isinstance(coordinates, str) and coordinates.strip():
        position = _parse_coordinates(coordinates) or _resolve_name(coordinates)
    else:
        raise InvalidQueryError(f"coordinates must be a SkyCoord or a string, not "
                                f"{type(coordinates).__name__}")
    if not position.isscalar:
        raise InvalidQueryError("coordinates must be a single position")
    return position.icrs


def _parse_coordinates(text):
    """``text`` read as coordinates (sexagesimal, or degrees), or None."""
    from astropy.coordinates import SkyCoord

    for unit in (None, "deg"):
        try:
            return SkyCoord(text, frame="icrs", unit=unit)
        except (ValueError, u.UnitsError, TypeError):
            continue
    return None


def _resolve_name(name):
    """The position of an object name from Sesame, or an error saying what to give instead."""
    from astropy.coordinates import SkyCoord
    from astropy.coordinates.name_resolve import NameResolveError

    try:
        return SkyCoord.from_name(name.strip(), frame="icrs")
    except (NameResolveError, OSError, ValueError) as exc:
        reason = "the name is unknown to Sesame" if isinstance(exc, NameResolveError) and \
            "Unable to find" in str(exc) else "Sesame could not be asked"
        raise InvalidQueryError(
            f"coordinates {name[:80]!r} are not coordinates, and {reason}; give a SkyCoord (e.g. "
            "SkyCoord.from_name(...)) or a string like '255.98 -37.84' or "
            "'17h03m56.8s -37d50m39s'") from None


def time_range(start_time, end_time):
    """``[start, end]`` as two scalar `~astropy.time.Time`, the start first."""
    from astropy.time import Time

    times = []
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if _number(value) is not None:
            raise InvalidQueryError(f"{name}={value!r} looks like an MJD: give "
                                    f"{name}=Time({_number(value)!r}, format='mjd')")
        try:
            time = value if isinstance(value, Time) else Time(value)
        except (ValueError, TypeError):
            raise InvalidQueryError(f"{name}={value!r} is not a time") from None
        if not time.isscalar:
            raise InvalidQueryError(f"{name} must be a single time")
        times.append(time)
    if times[0] >= times[1]:
        raise InvalidQueryError(f"start_time ({times[0].utc.isot}) must be before end_time "
                                f"({times[1].utc.isot})")
    return times


def energy_range(value, info):
    """``(low, high)`` in keV from two energies, within ``info.energy_limits`` (keV).

    ``info`` is an instrument description with ``name`` and ``energy_limits``.
    """
    try:
        low, high = value
    except (TypeError, ValueError):
        raise InvalidQueryError("energy_range must be two energies, e.g. (30, 80) * u.keV") from None
    if not all(isinstance(energy, u.Quantity) for energy in (low, high)):
        raise InvalidQueryError("energy_range must be a Quantity, e.g. (30, 80) * u.keV")
    low, high = (_scalar(energy, u.keV, "energy_range", kind="in energy units", example="",
                         equivalencies=u.spectral()) for energy in (low, high))
    limit_low, limit_high = info.energy_limits
    if not low < high:
        raise InvalidQueryError(f"energy_range: the lower energy ({low:g} keV) must be below the "
                                f"upper one ({high:g} keV)")
    if low < limit_low or high > limit_high:
        raise InvalidQueryError(f"energy_range {low:g}-{high:g} keV is outside the {info.name} "
                                f"range {limit_low:g}-{limit_high:g} keV")
    return low, high


def angle_deg(value, name):
    """An angle `~astropy.units.Quantity` (or a plain number of degrees) in degrees, in (0, 180]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        degrees = float(value)  # a plain number is in degrees, as in most astroquery modules
    else:
        degrees = _scalar(value, u.deg, name, kind="an angle", example="8 * u.deg")
    if not 0 < degrees <= 180:
        raise InvalidQueryError(f"{name} must be between 0 and 180 deg, not {degrees:g} deg")
    return degrees


def time_bin(value, info):
    """A bin width `~astropy.units.Quantity` in seconds, within the limits of ``info``.

    ``info`` is an instrument description with ``name``, ``min_time_bin`` and
    ``max_time_bin`` (seconds, None for no limit).
    """
    seconds = _scalar(value, u.s, "time_bin", kind="a time", example="1000 * u.s")
    if not seconds > 0:
        raise InvalidQueryError(f"time_bin must be positive, not {seconds:g} s")
    if info.min_time_bin and seconds < info.min_time_bin:
        raise InvalidQueryError(f"time_bin {seconds:g} s is below the {info.name} minimum of "
                                f"{info.min_time_bin:g} s")
    if info.max_time_bin and seconds > info.max_time_bin:
        raise InvalidQueryError(f"time_bin {seconds:g} s is above the {info.name} maximum of "
                                f"{info.max_time_bin:g} s")
    return seconds


def science_windows(scw_list):
    """A list of INTEGRAL science window ids (``'NNNNNNNNNNNN.NNN'``) from a list or comma-separated text."""
    if isinstance(scw_list, str):
        scw_list = scw_list.split(",")
    if not isinstance(scw_list, (list, tuple)) or not all(isinstance(item, str) for item in scw_list):
        raise InvalidQueryError("scw_list must be a list of science window ids (strings) such as "
                                f"'066500220010.001', or their comma-separated text; not {brief(scw_list)}")
    scws = [item.strip() for item in scw_list]
    bad = [scw for scw in scws if not re.fullmatch(r"\d{12}\.\d{3}", scw)]
    if not scws or bad:
        raise InvalidQueryError("scw_list must list science windows like '066500220010.001'"
                                + (f"; not {bad[0]!r}" if bad else ""))
    return scws
