"""Splitting a long list of science windows (ScW) into MMODA jobs.

A job may hold at most 50 ScW (500 with the ``unige-hpc-full`` role).  The
split is deterministic: the same ScW, in any order and with repeats, always
give the same jobs, so a resumed campaign asks for the same requests and the
journal finds the jobs submitted before.
"""
import re
from dataclasses import dataclass

from ..exceptions import InvalidQueryError
from ..integral import MAX_POINTINGS_GENERAL, MAX_POINTINGS_HPC

__all__ = ["JobPlan", "normalize_scw_list", "max_scw_per_job", "revolution", "split_scw_list"]

_SCW_RE = re.compile(r"\d{12}\.\d{3}")
_HPC_ROLES = {"unige-hpc-full", "unige-hpc-extreme"}


def normalize_scw_list(scw_list):
    """Science-window ids as a sorted list of unique strings.

    Parameters
    ----------
    scw_list : str, list of str or `~astropy.table.Table`
        ``'066500220010.001'``-like ids: a comma-separated string, a list, or
        a table with an ``scw_id`` column (as made by
        `~astroquery_mmoda.campaigns.pointings.find_pointings`).

    Returns
    -------
    list of str

    Raises
    ------
    astroquery.exceptions.InvalidQueryError
        If the list is empty or an item is not a ScW id.

    Examples
    --------
    >>> normalize_scw_list("066500230010.001, 066500220010.001,066500220010.001")
    ['066500220010.001', '066500230010.001']
    """
    if hasattr(scw_list, "colnames"):
        if "scw_id" not in scw_list.colnames:
            raise InvalidQueryError("a table of science windows needs an 'scw_id' column")
        scw_list = list(scw_list["scw_id"])
    elif isinstance(scw_list, str):
        scw_list = scw_list.split(",")
    try:
        items = [str(item).strip() for item in scw_list]
    except TypeError:
        raise InvalidQueryError("scw_list must be a list of science-window ids like "
                                f"'066500220010.001', not {type(scw_list).__name__}") from None
    bad = [item for item in items if not _SCW_RE.fullmatch(item)]
    if bad or not items:
        raise InvalidQueryError("scw_list must list science windows like '066500220010.001'"
                                + (f"; not {bad[0]!r}" if bad else " (it is empty)"))
    return sorted(set(items))


def revolution(scw_id):
    """The revolution (orbit) number of a ScW id: its first four digits.

    Examples
    --------
    >>> revolution("066500220010.001")
    665
    """
    return int(str(scw_id)[:4])


def max_scw_per_job(roles=()):
    """Most ScW a job may hold for a token with these roles.

    Examples
    --------
    >>> max_scw_per_job(), max_scw_per_job(["unige-hpc-full"])
    (50, 500)
    """
    return MAX_POINTINGS_HPC if _HPC_ROLES & set(roles or ()) else MAX_POINTINGS_GENERAL


@dataclass(frozen=True)
class JobPlan:
    """The ScW of one job of a campaign.

    Attributes
    ----------
    label : str
        A stable name, e.g. ``'rev0665-0666'`` or ``'scw0001-0050'``.
    scw_list : tuple of str
    """
    label: str
    scw_list: tuple

    def __len__(self):
        return len(self.scw_list)

    @property
    def revolutions(self):
        """The sorted revolution numbers this job covers."""
        return sorted({revolution(scw) for scw in self.scw_list})


def split_scw_list(scw_list, *, max_per_job=MAX_POINTINGS_GENERAL, by="count"):
    """Split science windows into jobs of at most ``max_per_job``.

    Parameters
    ----------
    scw_list : str, list of str or `~astropy.table.Table`
        See `normalize_scw_list`; order and repeats do not matter.
    max_per_job : int
        The role's limit (see `max_scw_per_job`).
    by : {'count', 'revolution'}
        ``'count'``: consecutive chunks of ``max_per_job`` ScW.
        ``'revolution'``: one job per revolution (a revolution with more ScW
        than the limit is cut into chunks), so a job's products belong to one
        orbit.

    Returns
    -------
    list of `JobPlan`
        In time order (ScW ids grow with time).

    Examples
    --------
    >>> scws = [f"0665{i:04d}0010.001" for i in range(1, 4)] + ["066600010010.001"]
    >>> [(p.label, len(p)) for p in split_scw_list(scws, max_per_job=2)]
    [('scw0001-0002', 2), ('scw0003-0004', 2)]
    >>> [(p.label, len(p)) for p in split_scw_list(scws, max_per_job=2, by="revolution")]
    [('rev0665a', 2), ('rev0665b', 1), ('rev0666', 1)]
    """
    if isinstance(max_per_job, bool) or not isinstance(max_per_job, int) or max_per_job < 1:
        raise InvalidQueryError(f"max_per_job must be a positive integer, not {max_per_job!r}")
    if max_per_job > MAX_POINTINGS_HPC:
        raise InvalidQueryError(f"max_per_job={max_per_job} is above the largest MMODA job "
                                f"({MAX_POINTINGS_HPC} ScW)")
    scws = normalize_scw_list(scw_list)
    if by == "count":
        width = len(str(len(scws)))
        width = max(width, 4)
        plans = []
        for start in range(0, len(scws), max_per_job):
            chunk = tuple(scws[start:start + max_per_job])
            label = f"scw{start + 1:0{width}d}-{start + len(chunk):0{width}d}"
            plans.append(JobPlan(label, chunk))
        return plans
    if by == "revolution":
        groups = {}
        for scw in scws:
            groups.setdefault(revolution(scw), []).append(scw)
        plans = []
        for rev in sorted(groups):
            items = groups[rev]
            chunks = [items[i:i + max_per_job] for i in range(0, len(items), max_per_job)]
            for index, chunk in enumerate(chunks):
                suffix = _letters(index) if len(chunks) > 1 else ""
                plans.append(JobPlan(f"rev{rev:04d}{suffix}", tuple(chunk)))
        return plans
    raise InvalidQueryError(f"by must be 'count' or 'revolution', not {by!r}")


def _letters(index):
    # a, b, ..., z, aa, ab, ...: a revolution rarely needs more than a few.
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("a") + rest) + text
    return text
