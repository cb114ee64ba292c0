"""Stitching the light curves of many jobs into one `~astropy.timeseries.TimeSeries`.

Parts are folded in as they arrive (`LightCurveCombiner.add`): only their
columns are kept, not the FITS files, and the stitched series is made once by
`LightCurveCombiner.result`.
"""
import numpy as np
from astropy import units as u
from astropy.time import TimeDelta

from ..exceptions import InvalidQueryError

__all__ = ["LightCurveCombiner", "LightCurveSetCombiner", "combine_lightcurves"]


def _header_of(hdul):
    """The header of the light-curve table of an HDUList (or None)."""
    for hdu in list(hdul or [])[1:]:
        columns = getattr(hdu, "columns", None)
        if columns is not None and "TIME" in columns.names and "RATE" in columns.names:
            return hdu.header
    return None


class LightCurveCombiner:
    """One source's light curve, stitched from the light curves of many jobs.

    Bins are sorted in time.  Bins of different jobs at the same time (within
    ``tolerance``) are duplicates: the one with the most exposure is kept (on
    a tie, the one of the job whose label sorts first), so the result does not
    depend on the order in which parts arrived.

    Parameters
    ----------
    tolerance : `~astropy.units.Quantity`
        Bin centres closer than this are the same bin.

    Examples
    --------
    >>> from astropy.timeseries import TimeSeries
    >>> first = TimeSeries(time_start="2010-01-01", time_delta=100 * u.s,
    ...                    data={"time_bin": [100.] * 3 * u.s, "rate": [1., 2., 3.] * u.ct / u.s})
    >>> second = TimeSeries(time_start="2010-01-01T00:03:20", time_delta=100 * u.s,
    ...                     data={"time_bin": [100.] * 2 * u.s, "rate": [3., 4.] * u.ct / u.s})
    >>> combiner = LightCurveCombiner()
    >>> combiner.add(second, job="b"); combiner.add(first, job="a")
    >>> series = combiner.result()
    >>> series["rate"].value.tolist(), series["job"].tolist(), series.meta["TELAPSE"]
    ([1.0, 2.0, 3.0, 4.0], ['a', 'a', 'a', 'b'], 400.0)
    """

    def __init__(self, *, tolerance=1 * u.ms):
        self.tolerance_s = float(u.Quantity(tolerance, u.s).value)
        if not self.tolerance_s > 0:
            raise InvalidQueryError("tolerance must be a positive time")
        self._parts = []
        self._units = {}
        self._columns = None
        self._scale = None
        self.meta = {}

    def __len__(self):
        return len(self._parts)

    def add(self, series, *, job, header=None):
        """Fold in one job's light curve of this source.

        Parameters
        ----------
        series : `~astropy.timeseries.TimeSeries`
            As made by ``Mmoda.get_lightcurve`` (columns ``time_bin``,
            ``rate`` and optionally ``rate_err``, ``fracexp``, ``empty``).
        job : str
            The job's label, kept per bin in the ``job`` column.
        header : `~astropy.io.fits.Header` or dict, optional
            The FITS light curve's header: its ``ONTIME`` and ``EXPOSURE``
            are summed (less the share of bins dropped as duplicates).
        """
        if "time_bin" not in series.colnames or "rate" not in series.colnames:
            raise InvalidQueryError("a light curve to combine needs 'time_bin' and 'rate' columns")
        names = [name for name in series.colnames if name not in ("time", "job")]
        if self._scale is None:
            self._scale = series.time.scale
            # Times are kept as seconds from the first bin seen: float MJDs lose microseconds.
            self._reference = getattr(series.time[0], self._scale)
            self.meta = {key: value for key, value in series.meta.items()
                         if key not in ("job_id",)}
        self._columns = names if self._columns is None else \
            [name for name in self._columns if name in names]
        part = {"job": str(job),
                "time": np.asarray((series.time - self._reference).to_value(u.s), dtype=float)}
        for name in names:
            column = series[name]
            if getattr(column, "unit", None) is not None:
                unit = self._units.setdefault(name, column.unit)
                part[name] = np.asarray(u.Quantity(column).to_value(unit))
            else:
                part[name] = np.asarray(column)
        header = header or {}
        for key in ("ONTIME", "EXPOSURE"):
            if key in header:
                part[key] = float(header[key])
        self._parts.append(part)

    def result(self):
        """The stitched light curve.

        Returns
        -------
        `~astropy.timeseries.TimeSeries`
            The columns common to all parts plus ``job``.  ``meta`` gets
            ``TSTART`` and ``TSTOP`` (`~astropy.time.Time`, first bin start,
            last bin end), ``TELAPSE``, ``ONTIME`` and ``EXPOSURE`` (s),
            ``jobs`` and ``duplicates_removed``.  ``ONTIME``/``EXPOSURE`` are
            the parts' header values summed (each less the share of its good
            time dropped as duplicates); without headers, the good time of the
            bins (width times ``fracexp``).
        """
        from astropy.timeseries import TimeSeries

        if not self._parts:
            raise InvalidQueryError("no light curve to combine")
        order_jobs = sorted({part["job"] for part in self._parts})
        rank = {label: index for index, label in enumerate(order_jobs)}
        time = np.concatenate([part["time"] for part in self._parts])
        part_index = np.concatenate([np.full(len(part["time"]), i) for i, part in enumerate(self._parts)])
        columns = {name: np.concatenate([part[name] for part in self._parts]) for name in self._columns}
        good = self._good_time(columns)
        job_rank = np.array([rank[self._parts[i]["job"]] for i in part_index], dtype=int)
        slot = np.round(time / self.tolerance_s).astype(np.int64)
        order = np.lexsort((job_rank, -good, slot))
        slot_sorted = slot[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = slot_sorted[1:] != slot_sorted[:-1]
        keep = order[first]
        keep = keep[np.argsort(time[keep], kind="stable")]

        data = {}
        for name in self._columns:
            values = columns[name][keep]
            data[name] = values * self._units[name] if name in self._units else values
        data["job"] = np.array([self._parts[i]["job"] for i in part_index[keep]], dtype=str)
        series = TimeSeries(time=self._reference + TimeDelta(time[keep] * u.s), data=data)
        series.meta.update(self.meta)
        series.meta.update(self._keywords(columns, time, good, part_index, keep))
        series.meta["jobs"] = order_jobs
        series.meta["duplicates_removed"] = int(len(time) - len(keep))
        return series

    def _good_time(self, columns):
        width = u.Quantity(columns["time_bin"], self._units.get("time_bin", u.s)).to_value(u.s)
        fraction = columns["fracexp"] if "fracexp" in columns else np.ones(len(width))
        good = np.where(np.isfinite(width) & np.isfinite(fraction), width * fraction, 0.0)
        if "empty" in columns:
            good = np.where(columns["empty"], 0.0, good)
        return good

    def _keywords(self, columns, time, good, part_index, keep):
        width = u.Quantity(columns["time_bin"][keep], self._units.get("time_bin", u.s)).to_value(u.s)
        start = float(np.nanmin(time[keep] - width / 2))
        stop = float(np.nanmax(time[keep] + width / 2))
        words = {"TSTART": self._reference + TimeDelta(start * u.s),
                 "TSTOP": self._reference + TimeDelta(stop * u.s),
                 "TELAPSE": float(round(stop - start, 6))}
        kept_good = np.zeros(len(self._parts))
        np.add.at(kept_good, part_index[keep], good[keep])
        all_good = np.zeros(len(self._parts))
        np.add.at(all_good, part_index, good)
        for key in ("ONTIME", "EXPOSURE"):
            if all(key in part for part in self._parts):
                share = np.divide(kept_good, all_good, out=np.ones(len(all_good)), where=all_good > 0)
                words[key] = float(sum(part[key] * share[i] for i, part in enumerate(self._parts)))
            else:
                words[key] = float(kept_good.sum())
        return words


class LightCurveSetCombiner:
    """Per-source stitching of the `~astroquery_mmoda.integral.LightCurveSet` of many jobs.

    Examples
    --------
    >>> from astropy.timeseries import TimeSeries
    >>> part = TimeSeries(time_start="2010-01-01", time_delta=100 * u.s,
    ...                   data={"time_bin": [100.] * 2 * u.s, "rate": [1., 2.] * u.ct / u.s})
    >>> combiner = LightCurveSetCombiner()
    >>> combiner.add({"Crab": part}, job="rev0100")
    >>> {name: len(series) for name, series in combiner.result().items()}
    {'Crab': 2}
    """

    def __init__(self, **options):
        self._options = options
        self._sources = {}

    def add(self, curves, *, job):
        """Fold in one job's light curves (a mapping of source name to series)."""
        hdulists = getattr(curves, "hdulists", {})
        for name, series in curves.items():
            combiner = self._sources.setdefault(name, LightCurveCombiner(**self._options))
            combiner.add(series, job=job, header=_header_of(hdulists.get(name)))

    def result(self, meta=None):
        """A `~astroquery_mmoda.integral.LightCurveSet` of the stitched light curves (by name).

        Like ``Mmoda.get_lightcurve``'s answer, without ``hdulists`` (the
        stitched series have no single FITS original).
        """
        from ..integral import LightCurveSet

        return LightCurveSet({name: self._sources[name].result() for name in sorted(self._sources)},
                             hdulists={}, meta=meta)


def combine_lightcurves(parts, **options):
    """Stitch one source's light curves of many jobs.

    Parameters
    ----------
    parts : iterable of (str, `~astropy.timeseries.TimeSeries`)
        ``(job label, light curve)`` pairs; read one at a time.
    **options
        See `LightCurveCombiner`.

    Returns
    -------
    `~astropy.timeseries.TimeSeries`
        See `LightCurveCombiner.result`.
    """
    combiner = LightCurveCombiner(**options)
    for job, series in parts:
        combiner.add(series, job=job)
    return combiner.result()
