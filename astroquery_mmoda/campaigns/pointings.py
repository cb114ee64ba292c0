"""Which INTEGRAL science windows (ScW) cover a position in a time range.

Asks HEASARC's INTEGRAL science-window table ``intscw`` through
`astroquery.heasarc` (a TAP query), or takes a user's own ScW list.  Either
way the answer is one `~astropy.table.Table` with the columns ``scw_id``
(``'NNNNNNNNNNNN.VVV'``), ``revolution``, ``start_time``/``end_time``
(`~astropy.time.Time`), ``ra``/``dec`` (pointing direction, deg) and
``good_isgri`` (s).
"""
import numpy as np
from astropy import units as u
from astropy.table import MaskedColumn, Table
from astropy.time import Time

from ..exceptions import InvalidQueryError
from .plan import normalize_scw_list, revolution

__all__ = ["INTSCW_COLUMNS", "find_pointings", "pointings_from_scw_list", "pointings_query",
           "shape_pointings"]

#: The ``intscw`` columns asked for (HEASARC's TAP names).
INTSCW_COLUMNS = ("scw_id", "scw_ver", "scw_type", "ra", "dec", "start_date", "end_date", "good_isgri")
_CATALOG = "intscw"


def _position(position):
    from astropy.coordinates import SkyCoord

    if isinstance(position, SkyCoord):
        if not position.isscalar:
            raise InvalidQueryError("the position must be a single one")
        return position.icrs
    if isinstance(position, str) and position.strip():
        for unit in (None, u.deg):
            try:
                return SkyCoord(position, frame="icrs", unit=unit)
            except (ValueError, u.UnitsError):
                pass
    raise InvalidQueryError(f"position {position!r} is not a position; give a SkyCoord or a "
                            "string like '83.63 22.01'")


def _times(start_time, end_time):
    try:
        start, end = Time(start_time), Time(end_time)
    except (ValueError, TypeError):
        raise InvalidQueryError(f"start_time={start_time!r} and end_time={end_time!r} must be "
                                "times") from None
    if not start.isscalar or not end.isscalar or not start < end:
        raise InvalidQueryError("start_time must be a single time before end_time")
    return start, end


def pointings_query(position, *, start_time, end_time, radius=10 * u.deg, min_good_isgri=None,
                    heasarc=None):
    """The ADQL query `find_pointings` sends to HEASARC.

    The cone part is written by ``Heasarc.query_region`` itself (no request);
    the time range, the pointings-only and the good-ISGRI-time conditions are
    added to it.

    Returns
    -------
    str

    Examples
    --------
    >>> print(pointings_query("83.63 22.01", start_time="2003-01-31", end_time="2003-02-01",
    ...                       radius=5 * u.deg, min_good_isgri=1000))  # doctest: +ELLIPSIS
    SELECT scw_id, ... FROM intscw WHERE CONTAINS(POINT('ICRS',ra,dec),CIRCLE('ICRS',83.63,22.01,5.0))=1 \
AND scw_type = 'POINTING' AND end_date >= 52670.0 AND start_date <= 52671.0 AND good_isgri >= 1000.0
    """
    heasarc = heasarc if heasarc is not None else _heasarc()
    coordinates = _position(position)
    start, end = _times(start_time, end_time)
    try:
        radius = u.Quantity(radius, u.deg)
    except (TypeError, u.UnitsError):
        raise InvalidQueryError(f"radius must be an angle, not {radius!r}") from None
    adql = heasarc.query_region(coordinates, catalog=_CATALOG, radius=radius,
                                columns=", ".join(INTSCW_COLUMNS), get_query_payload=True)
    conditions = ["scw_type = 'POINTING'", f"end_date >= {float(start.utc.mjd)!r}",
                  f"start_date <= {float(end.utc.mjd)!r}"]
    if min_good_isgri is not None:
        conditions.append(f"good_isgri >= {_seconds(min_good_isgri)!r}")
    return adql + " AND " + " AND ".join(conditions)


def _seconds(value):
    if isinstance(value, u.Quantity):
        value = value.to_value(u.s)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:
        raise InvalidQueryError(f"min_good_isgri must be a time (e.g. 1000 * u.s), not {value!r}")
    return float(value)


def _heasarc():
    from astroquery.heasarc import Heasarc
    return Heasarc


def find_pointings(position, *, start_time, end_time, radius=10 * u.deg, min_good_isgri=None,
                   heasarc=None, maxrec=None):
    """The INTEGRAL pointings (no slews) towards a position in a time range.

    Parameters
    ----------
    position : `~astropy.coordinates.SkyCoord` or str
    start_time, end_time : `~astropy.time.Time` or anything it takes
    radius : `~astropy.units.Quantity`
        Largest angle between the pointing direction and the position
        (ISGRI's field is about 29 deg wide, fully coded within 4.5 deg).
    min_good_isgri : `~astropy.units.Quantity` or float, optional
        Least good ISGRI time of a ScW (s).
    heasarc : `~astroquery.heasarc.HeasarcClass`, optional
        The HEASARC client (default ``astroquery.heasarc.Heasarc``).
    maxrec : int, optional
        Most rows HEASARC returns.

    Returns
    -------
    `~astropy.table.Table`
        See `shape_pointings`.

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> pointings = find_pointings(SkyCoord.from_name("Crab"), start_time="2003-02-01",
    ...                            end_time="2003-03-01", min_good_isgri=1000)  # doctest: +SKIP
    >>> pointings["scw_id", "revolution", "good_isgri"][:3]  # doctest: +SKIP
    """
    heasarc = heasarc if heasarc is not None else _heasarc()
    adql = pointings_query(position, start_time=start_time, end_time=end_time, radius=radius,
                           min_good_isgri=min_good_isgri, heasarc=heasarc)
    answer = heasarc.query_tap(adql, maxrec=maxrec).to_table()
    start, end = _times(start_time, end_time)
    return shape_pointings(answer, start_time=start, end_time=end,
                           min_good_isgri=None if min_good_isgri is None else _seconds(min_good_isgri))


def _text(column):
    return [value.decode() if isinstance(value, bytes) else str(value) for value in column]


def shape_pointings(answer, *, start_time=None, end_time=None, min_good_isgri=None):
    """An ``intscw`` answer as the pointings table (checking what was asked again).

    Slews, ScW outside the time range and ScW with less good ISGRI time than
    asked are dropped, whatever the server sent; rows are sorted by ScW id.

    Parameters
    ----------
    answer : `~astropy.table.Table`
        Rows of ``intscw`` with (at least) the columns of `INTSCW_COLUMNS`;
        column names are matched without regard to case.

    Returns
    -------
    `~astropy.table.Table`
        ``scw_id``, ``revolution``, ``start_time``, ``end_time``, ``ra``,
        ``dec``, ``good_isgri``; ``meta["source"]`` is ``'HEASARC intscw'``.
    """
    names = {name.lower(): name for name in answer.colnames}
    missing = [name for name in INTSCW_COLUMNS if name not in names]
    if missing:
        raise InvalidQueryError(f"the science-window table lacks the columns {', '.join(missing)}")
    column = {name: answer[names[name]] for name in INTSCW_COLUMNS}
    versions = [version.strip().zfill(3) for version in _text(column["scw_ver"])]
    ids = [f"{scw.strip().zfill(12)}.{version}" for scw, version in zip(_text(column["scw_id"]), versions)]
    keep = np.array([kind.strip().upper() == "POINTING" for kind in _text(column["scw_type"])], bool)
    start = Time(np.asarray(column["start_date"], dtype=float), format="mjd", scale="utc")
    end = Time(np.asarray(column["end_date"], dtype=float), format="mjd", scale="utc")
    good = np.asarray(np.ma.filled(column["good_isgri"], 0.0), dtype=float)
    if start_time is not None:
        keep &= end.mjd >= Time(start_time).utc.mjd
    if end_time is not None:
        keep &= start.mjd <= Time(end_time).utc.mjd
    if min_good_isgri is not None:
        keep &= good >= min_good_isgri
    table = Table({"scw_id": np.array(ids, dtype=str),
                   "revolution": np.array([revolution(scw) for scw in ids], dtype=int),
                   "start_time": start, "end_time": end,
                   "ra": np.asarray(column["ra"], dtype=float) * u.deg,
                   "dec": np.asarray(column["dec"], dtype=float) * u.deg,
                   "good_isgri": good * u.s}, meta={"source": "HEASARC intscw"})
    table = table[keep]
    table.sort("scw_id")
    return table


def pointings_from_scw_list(scw_list):
    """A user's own ScW list as a pointings table (times and directions unknown).

    Examples
    --------
    >>> table = pointings_from_scw_list(["004400020010.001", "004300020010.001"])
    >>> table["scw_id"].tolist(), table["revolution"].tolist(), bool(table["start_time"].mask.all())
    (['004300020010.001', '004400020010.001'], [43, 44], True)
    """
    ids = normalize_scw_list(scw_list)
    count = len(ids)
    unknown = np.ones(count, dtype=bool)
    return Table({"scw_id": np.array(ids, dtype=str),
                  "revolution": np.array([revolution(scw) for scw in ids], dtype=int),
                  "start_time": MaskedColumn(np.zeros(count), mask=unknown),
                  "end_time": MaskedColumn(np.zeros(count), mask=unknown),
                  "ra": MaskedColumn(np.zeros(count), unit=u.deg, mask=unknown),
                  "dec": MaskedColumn(np.zeros(count), unit=u.deg, mask=unknown),
                  "good_isgri": MaskedColumn(np.zeros(count), unit=u.s, mask=unknown)},
                 meta={"source": "user list"})
