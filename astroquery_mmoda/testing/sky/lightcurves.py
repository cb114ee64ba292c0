"""ISGRI and JEM-X light curves of the sky model."""
import math

import numpy as np

from .fits_common import _base_keys, _grouping_hdu, _seed, _source_keys, _table_hdu, _time_keys, _write
from .model import ISGRI_OBSERVATION, JEMX_OBSERVATION


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


def write_isgri_lightcurve(path, source, *, time_bin=100.0, observations=None):
    """Write an ISGRI light curve of a test-sky source as OSA makes it.

    The light curve covers `ISGRI_OBSERVATION`, in bins of ``time_bin`` seconds,
    with a 260 s telemetry gap half-way: bins inside it have ``FRACEXP`` 0 and a
    NaN rate.  With ``observations`` (campaign ScWs, see
    `~astroquery_mmoda.testing.sky.model.campaign_observation`) it covers each
    of them instead, one stretch of bins per ScW, without gaps; ``ONTIME``
    is their sum.  Times are bin centres in IJD (header ``MJDREF`` = 51544,
    ``TIMESYS`` TT, ``TIMEUNIT`` d); ``TIMEDEL`` and ``XAX_E`` are in days.

    Parameters
    ----------
    path : path-like
    source : SkySource
        An ISGRI source of `TEST_SKY` (or any `SkySource` in the ISGRI field).
    time_bin : float
        Bin width (s).
    observations : list of Observation, optional

    Returns
    -------
    pathlib.Path
    """
    if observations:
        parts = [_bins(observation, time_bin, gap=None) for observation in observations]
        starts = np.concatenate([part[0] for part in parts])
        good = np.concatenate([part[2] for part in parts])
        width = parts[0][1]
        first, last = observations[0], observations[-1]
        ontime = sum(observation.ontime for observation in observations)
        time_keys = _time_keys(first)
        time_keys.update({"DATE-END": last.end, "TSTOP": last.tstop, "ONTIME": ontime,
                          "TELAPSE": (last.tstop - first.tstart) * 86400.0})
        seed = ("isgri-lc", source.name, time_bin, first.scw_id, len(observations))
    else:
        first = ISGRI_OBSERVATION
        starts, width, good = _bins(first, time_bin, gap=(0.55 * first.telapse, 260.0))
        ontime, time_keys, seed = first.ontime, _time_keys(first), ("isgri-lc", source.name, time_bin)
    times = starts + width / 2.0
    count = len(times)
    rng = np.random.default_rng(_seed(*seed))
    sigma_pix = source.rate / source.significance
    empty = good == 0
    exposure = np.where(empty, 1.0, good * time_bin)
    errors = sigma_pix * np.sqrt(first.ontime / exposure)
    rates = source.rate * _modulation(source, times) + rng.normal(size=count) * errors
    background = 130.0 * good * time_bin
    total = rng.poisson(background + 0.5 * np.clip(rates, 0, None) * good * time_bin).astype(float)
    rates[empty] = np.nan
    errors[empty] = np.nan
    keys = dict(_base_keys(first), **_source_keys(source), **time_keys)
    keys.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="NET", HDUCLAS3="RATE", ISDCLEVL="LCR",
                E_MIN=first.e_min, E_MAX=first.e_max, EUNIT="keV", TIMEDEL=width,
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
