"""What XSPEC reads from an OGIP spectrum besides the data: systematic errors and channel grouping.

Both are written as the OGIP standard has them (OGIP/92-007): a ``SYS_ERR``
column of fractional systematic errors, and a ``GROUPING`` column (``1``
starts a group, ``-1`` continues it), so that XSPEC, ``grppha`` and ``ftgrouppha``
users get what they expect without another tool.
"""
import numpy as np
from astropy.io import fits

from .exceptions import InvalidQueryError

__all__ = ["group_min_counts", "set_xspec_options"]


def group_min_counts(counts, minimum):
    """The OGIP ``GROUPING`` of adjacent channels holding at least ``minimum`` counts each.

    Channels are added to a group until it holds ``minimum`` counts; a last
    group that falls short joins the one before.

    Examples
    --------
    >>> group_min_counts([5, 5, 20, 1, 1, 30, 2], 10).tolist()
    [1, -1, 1, 1, -1, -1, -1]
    """
    counts = np.asarray(counts, dtype=float)
    grouping = np.full(len(counts), -1, dtype=np.int16)
    if not len(counts):
        return grouping
    starts, total = [0], 0.0
    for index, value in enumerate(counts):
        if total >= minimum:
            starts.append(index)
            total = 0.0
        total += value if np.isfinite(value) else 0.0
    if total < minimum and len(starts) > 1:
        starts.pop()  # the short last group joins the one before
    grouping[starts] = 1
    return grouping


def set_xspec_options(hdu, *, systematic_fraction=None, min_counts=None):
    """A copy of a spectrum's table HDU with ``SYS_ERR`` and ``GROUPING`` set.

    Parameters
    ----------
    hdu : `~astropy.io.fits.BinTableHDU`
        The ``SPECTRUM`` extension, with ``RATE`` (or ``COUNTS``) and ``EXPOSURE``.
    systematic_fraction : float, optional
        The fractional systematic error of every channel (e.g. 0.01), in ``SYS_ERR``.
    min_counts : float, optional
        Group adjacent channels to at least this many counts (``RATE`` times
        ``EXPOSURE``, or ``COUNTS``) each.

    Returns
    -------
    `~astropy.io.fits.BinTableHDU`
    """
    columns = {name.upper(): name for name in hdu.columns.names}
    values = {}
    if systematic_fraction is not None:
        if isinstance(systematic_fraction, bool) or not isinstance(systematic_fraction, (int, float)) \
                or not 0 <= systematic_fraction < 1:
            raise InvalidQueryError("systematic_fraction must be a number in [0, 1), e.g. 0.01")
        values["SYS_ERR"] = ("1E", np.full(len(hdu.data), float(systematic_fraction), dtype=np.float32))
    if min_counts is not None:
        if isinstance(min_counts, bool) or not isinstance(min_counts, (int, float)) or not min_counts > 0:
            raise InvalidQueryError("min_counts must be a positive number of counts, e.g. 20")
        if "COUNTS" in columns:
            counts = np.asarray(hdu.data[columns["COUNTS"]], dtype=float)
        elif "RATE" in columns and "EXPOSURE" in hdu.header:
            counts = np.asarray(hdu.data[columns["RATE"]], dtype=float) * float(hdu.header["EXPOSURE"])
        else:
            raise InvalidQueryError("min_counts needs a COUNTS column, or RATE and the EXPOSURE keyword")
        values["GROUPING"] = ("1I", group_min_counts(counts, float(min_counts)))
    new = hdu.copy()
    added = []
    for name, (form, array) in values.items():
        if name in columns:
            new.data[columns[name]][:] = array
        else:
            added.append(fits.Column(name, form, array=array))
    if added:
        new = fits.BinTableHDU.from_columns(new.columns + fits.ColDefs(added), header=new.header)
    return new
