"""One source catalog from the catalogs of many INTEGRAL image jobs.

A source seen by several jobs is listed once: the row of the job where it is
most significant, with the jobs it was seen in.  Two rows are the same source
when they have the same name (names of new, unidentified excesses such as
``NEW_1`` are numbered per job, so those never match by name) or when they lie
within ``match_radius`` of each other.
"""
import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack

from ..exceptions import InvalidQueryError

__all__ = ["CatalogCombiner", "combine_catalogs"]

#: Default match radius: a few times ISGRI's typical position error of a detected source.
MATCH_RADIUS = 3 * u.arcmin


def combine_catalogs(parts, *, match_radius=MATCH_RADIUS, meta=None):
    """Merge source catalogs, one row per source.

    Parameters
    ----------
    parts : iterable of (str, `~astropy.table.Table`)
        ``(job label, catalog)`` pairs; each catalog has ``src_names``,
        ``significance``, ``ra`` and ``dec`` (deg), as ``Mmoda.query_region``
        answers.
    match_radius : `~astropy.units.Quantity`
        Rows closer than this are the same source.
    meta : dict, optional
        Added to the result's ``meta``.

    Returns
    -------
    `~astropy.table.Table`
        Sorted by decreasing significance, ``meta_ID`` numbered anew, with the
        columns ``n_jobs`` (how many jobs saw the source) and ``jobs`` (their
        labels, sorted, comma-separated: the same whatever order the jobs
        finished in).

    Examples
    --------
    >>> from astropy.table import Table
    >>> a = Table({"src_names": ["Crab", "NEW_1"], "significance": [40.0, 8.0],
    ...            "ra": [83.63, 84.5], "dec": [22.01, 21.0]})
    >>> b = Table({"src_names": ["Crab", "NEW_1"], "significance": [55.0, 9.0],
    ...            "ra": [83.64, 86.0], "dec": [22.02, 20.0]})
    >>> merged = combine_catalogs([("rev0100", a), ("rev0101", b)])
    >>> merged["src_names", "significance", "n_jobs", "jobs"].pprint()
    src_names significance n_jobs       jobs
    --------- ------------ ------ ---------------
         Crab         55.0      2 rev0100,rev0101
        NEW_1          9.0      1         rev0101
        NEW_1          8.0      1         rev0100
    """
    combiner = CatalogCombiner(match_radius=match_radius)
    for job, table in parts:
        combiner.add(table, job=job)
    return combiner.result(meta=meta)


class CatalogCombiner:
    """Merges catalogs one at a time (see `combine_catalogs`)."""

    def __init__(self, *, match_radius=MATCH_RADIUS):
        self.match_radius = u.Quantity(match_radius, u.deg)
        self._rows = []      # per source: the best row (a one-row Table)
        self._best = []      # its significance
        self._jobs = []      # the jobs that saw it
        self._names = []
        self._ra, self._dec = [], []

    def __len__(self):
        return len(self._rows)

    def add(self, table, *, job):
        """Fold one job's catalog in."""
        missing = [name for name in ("src_names", "significance", "ra", "dec") if name not in table.colnames]
        if missing:
            raise InvalidQueryError(f"the catalog of job {job} has no {', '.join(missing)} column")
        for row in range(len(table)):
            self._add_row(table[row:row + 1], str(job))

    def _add_row(self, row, job):
        name = str(row["src_names"][0]).strip()
        significance = float(row["significance"][0])
        ra, dec = _degrees(row["ra"]), _degrees(row["dec"])
        index = self._match(name, ra, dec)
        if index is None:
            self._rows.append(row)
            self._best.append(significance)
            self._jobs.append([job])
            self._names.append(name)
            self._ra.append(ra)
            self._dec.append(dec)
            return
        if job not in self._jobs[index]:
            self._jobs[index].append(job)
        if significance > self._best[index] or np.isnan(self._best[index]):
            self._rows[index], self._best[index] = row, significance
            self._names[index], self._ra[index], self._dec[index] = name, ra, dec

    def _match(self, name, ra, dec):
        if not self._rows:
            return None
        if "NEW" not in name.upper() and name in self._names:
            return self._names.index(name)
        known = SkyCoord(self._ra, self._dec, unit="deg")
        separation = known.separation(SkyCoord(ra, dec, unit="deg"))
        nearest = int(np.argmin(separation))
        return nearest if separation[nearest] < self.match_radius else None

    def result(self, *, meta=None):
        """The merged catalog so far (an empty Table before any row)."""
        if not self._rows:
            return Table(meta=dict(meta or {}))
        table = vstack(self._rows, join_type="outer", metadata_conflicts="silent")
        table["n_jobs"] = [len(jobs) for jobs in self._jobs]
        table["jobs"] = [",".join(sorted(jobs)) for jobs in self._jobs]
        order = np.argsort(-np.nan_to_num(np.asarray(self._best, dtype=float), nan=-np.inf), kind="stable")
        table = table[order]
        if "meta_ID" in table.colnames:
            table["meta_ID"] = np.arange(len(table))
        table.meta.update(meta or {})
        return table


def _degrees(column):
    value = column[0]
    if hasattr(value, "unit") and value.unit is not None:
        return float(u.Quantity(value).to_value(u.deg))
    return float(value)
