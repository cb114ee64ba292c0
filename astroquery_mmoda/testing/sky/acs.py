"""The SPI-ACS data of the test sky: background and bursts, as the ACS web service gives them."""
import datetime
import math

import numpy as np

from .fits_common import _seed
from .model import _END_OF_SCIENCE, _LAUNCH, _parse_utc, utc_to_ijd


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
