"""Source catalogs for the INTEGRAL methods: adding objects of interest to one.

A catalog from `~astroquery_mmoda.core.MmodaClass.query_region` lists what
the image shows; a source too faint to be detected there, but wanted in the
spectra or light curves, is added with `add_sources` (oda_api users know this
as "objects of interest").
"""
import numpy as np

from .exceptions import InvalidQueryError
from .quantities import sky_position

__all__ = ["add_sources"]


def _named_positions(sources):
    """``[(name, SkyCoord)]`` from names, ``(name, position)`` pairs or a mapping."""
    if isinstance(sources, str):
        sources = [sources]
    items = sources.items() if hasattr(sources, "items") else sources
    named = []
    for item in items:
        if isinstance(item, str):
            name, position = item, item  # resolved by Sesame
        else:
            try:
                name, position = item
            except (TypeError, ValueError):
                raise InvalidQueryError("sources must be names, (name, SkyCoord) pairs or a "
                                        "{name: SkyCoord} mapping") from None
        if not isinstance(name, str) or not name.strip():
            raise InvalidQueryError(f"a source needs a name, not {name!r}")
        named.append((name.strip(), sky_position(position)))
    return named


def add_sources(catalog, sources):
    """A copy of ``catalog`` with ``sources`` added as rows, for ``catalog=`` of the spectra and light curves.

    Parameters
    ----------
    catalog : `~astropy.table.Table`
        As returned by ``Mmoda.query_region`` (maybe filtered).
    sources : str, list or dict
        Object names (resolved by CDS Sesame), ``(name, SkyCoord)`` pairs,
        or a ``{name: SkyCoord}`` mapping.  A name already in the catalog is
        left as it is.

    Returns
    -------
    `~astropy.table.Table`
        The added rows have the position, the name, ``significance`` 0 and
        every other numeric column 0 (``meta_ID`` numbered on).

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import Table
    >>> catalog = Table({"meta_ID": [0], "src_names": ["4U 1700-377"], "significance": [30.5],
    ...                  "ra": [255.98], "dec": [-37.84]})
    >>> faint = {"GX 339-4": SkyCoord(255.7057, -48.7897, unit="deg")}
    >>> chosen = add_sources(catalog, faint)
    >>> [(str(row["src_names"]), round(float(row["ra"]), 2), float(row["significance"])) for row in chosen]
    [('4U 1700-377', 255.98, 30.5), ('GX 339-4', 255.71, 0.0)]
    """
    if not hasattr(catalog, "colnames") or not {"src_names", "ra", "dec"} <= set(catalog.colnames):
        raise InvalidQueryError("add_sources takes a catalog Table with src_names, ra and dec, as "
                                "returned by Mmoda.query_region")
    named = _named_positions(sources)
    known = {str(name).strip() for name in catalog["src_names"]}
    result = catalog.copy()
    if result["src_names"].dtype.kind in "US":  # room for longer names
        width = max([len(name) for name, _ in named] + [len(name) for name in known] + [1])
        result["src_names"] = result["src_names"].astype(f"U{width}")
    next_id = int(np.max(result["meta_ID"])) + 1 if "meta_ID" in result.colnames and len(result) else 0
    for name, position in named:
        if name in known:
            continue
        row = {}
        for column in result.colnames:
            kind = result[column].dtype.kind
            row[column] = "" if kind in "US" else False if kind == "b" else 0
        row.update(src_names=name, ra=float(position.ra.deg), dec=float(position.dec.deg))
        if "meta_ID" in result.colnames:
            row["meta_ID"], next_id = next_id, next_id + 1
        result.add_row([row[column] for column in result.colnames])
        known.add(name)
    return result
