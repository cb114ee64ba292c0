"""User values to wire values: conversion and validation of request parameters.

Turns `~astropy.time.Time`, `~astropy.units.Quantity`, `~astropy.coordinates.SkyCoord`
and catalog `~astropy.table.Table` values into what the dispatcher takes, and
checks names and values against a product's description (as parsed by
`~astroquery_mmoda.dispatcher.parse_meta_data`).  No HTTP and no client state
here: every function gets what it needs as arguments.
"""
import difflib

from astropy import units as u

from .display import brief as _short
from .exceptions import InvalidQueryError
# The conversions of the INTEGRAL helpers are re-exported: they lived here before quantities.py.
from .quantities import (_number, angle_deg, energy_range, science_windows, sky_position,  # noqa: F401
                         time_bin, time_range)
from .uploads import as_upload, split_uploads

__all__ = ["CONTROL_ARGS", "QUERY_TYPES", "RESERVED_ARGS", "angle_deg", "check_name",
           "check_params", "check_request", "check_restrictions", "convert_unchecked", "encode",
           "needs_units", "agree_times", "check_catalog",
           "energy_range", "parameters_table", "payload", "product_parameters",
           "science_windows", "sky_position", "split_request", "suggest", "time_bin", "time_range",
           "wire_value"]

#: Arguments the dispatcher understands besides each product's declared parameters.
CONTROL_ARGS = frozenset({
    "catalog_selected_objects", "allow_unknown_args", "return_progress", "dry_run",
    "run_asynch", "T_format", "time_bin_format", "use_scws", "user_catalog_file",
    "user_scw_list_file",
})
#: Keys that the client sets itself: a user passing them is a mistake.
RESERVED_ARGS = frozenset({
    "instrument", "product_type", "query_status", "session_id", "job_id", "api", "token",
    "off_line", "oda_api_version", "async_dispatcher",
})
#: Parameters whose None means "not given": the dispatcher refuses their explicit-empty marker.
NOT_SENT_WHEN_NONE = frozenset({"selected_catalog"})
#: The query types the dispatcher runs.
QUERY_TYPES = ("Real", "Dummy")
# Units of the dispatcher's parameter descriptions that astropy spells differently.
_UNIT_ALIASES = {"sec": "s", "seconds": "s", "days": "d"}


# -- names ---------------------------------------------------------------------------

def suggest(name, candidates):
    """A " (did you mean ...?)" hint naming the candidates close to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def check_name(what, value):
    """Raise `InvalidQueryError` unless ``value`` (an instrument or product name) is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise InvalidQueryError(f"{what} must be a non-empty string, not {value!r}")


def check_request(instrument, product, query_type, params):
    """Check a request's names, query type and parameter names before any conversion.

    Parameters
    ----------
    instrument, product : str
    query_type : str
        One of `QUERY_TYPES`.
    params : dict
        The user's parameters; none may be one of `RESERVED_ARGS`.

    Raises
    ------
    astroquery.exceptions.InvalidQueryError
    """
    check_name("instrument", instrument)
    check_name("product", product)
    if query_type not in QUERY_TYPES:
        raise InvalidQueryError(f"query_type must be one of {QUERY_TYPES}, not {query_type!r}")
    reserved = sorted(set(params) & RESERVED_ARGS)
    if reserved:
        raise InvalidQueryError(
            f"{', '.join(reserved)} cannot be given as parameters: the client sets "
            f"{'it' if len(reserved) == 1 else 'them'} (log in with Mmoda.login for the token)")


def split_request(item, query_type):
    """The ``(instrument, product, query_type, params)`` of one request of ``Mmoda.submit_many``.

    Parameters
    ----------
    item : tuple or dict
        ``(instrument, product, params)`` or a dict with the keys ``instrument``,
        ``product`` and the parameters (and optionally ``query_type``).
    query_type : str
        The query type when the item gives none.

    Returns
    -------
    tuple
    """
    if isinstance(item, dict):
        item = dict(item)
        try:
            instrument, product = item.pop("instrument"), item.pop("product")
        except KeyError:
            raise InvalidQueryError("each request dict needs 'instrument' and 'product'") from None
        params = item
    elif isinstance(item, (tuple, list)) and len(item) == 3 and isinstance(item[2], dict):
        instrument, product, params = item
    else:
        raise InvalidQueryError("each request must be (instrument, product, params) or a "
                                f"dict, not {type(item).__name__}")
    params = dict(params)
    return instrument, product, params.pop("query_type", query_type), params


def product_parameters(instrument, product, meta):
    """The parameter descriptions that apply to one product of an instrument.

    Parameters
    ----------
    instrument, product : str
    meta : tuple
        ``(products, parameters)`` as returned by
        `~astroquery_mmoda.dispatcher.parse_meta_data`.

    Returns
    -------
    list of dict
    """
    products, parameters = meta
    if product not in products:
        hint = suggest(product, products)
        raise InvalidQueryError(f"{instrument} has no product {product!r}{hint}; "
                                f"its products are: {', '.join(sorted(products))}")
    query = products[product]
    # The source and instrument queries (product None) apply to every product.
    return [p for p in parameters if p["product"] in (None, product) or p["query"] == query]


# -- values ----------------------------------------------------------------------------

def wire_value(name, value, unit):
    """Convert one astropy value to what the dispatcher takes.

    Parameters
    ----------
    name : str
        The parameter's name (for messages; only ``selected_catalog`` takes a Table).
    value : object
        A `~astropy.time.Time` becomes ISO UTC text, a `~astropy.units.Quantity`
        a float in ``unit``, a catalog `~astropy.table.Table` the dispatcher's
        catalog dict, a path or binary file object an
        `~astroquery_mmoda.uploads.Upload`; other values are returned as they are.
    unit : str or None
        The parameter's unit as the dispatcher spells it (None: unknown).

    Returns
    -------
    object
    """
    from astropy.table import Table
    from astropy.time import Time

    value = as_upload(name, value)
    if isinstance(value, Time):
        if not value.isscalar:
            raise InvalidQueryError(f"{name} must be a single time")
        return value.utc.isot
    if isinstance(value, u.Quantity):
        if unit is None:
            raise InvalidQueryError(
                f"{name}: the parameter's unit is unknown without validation; give a plain "
                "number in the parameter's unit, or leave validate=True")
        if not value.isscalar:
            raise InvalidQueryError(f"{name} must be a single value, not an array of {value.size}")
        target = _UNIT_ALIASES.get(unit, unit)
        try:
            return float(value.to_value(u.Unit(target)))
        except (ValueError, TypeError, u.UnitsError):
            raise InvalidQueryError(
                f"{name} is given in {value.unit}, which cannot be converted to the "
                f"parameter's unit {unit!r}") from None
    if isinstance(value, Table):
        if name != "selected_catalog":
            raise InvalidQueryError(f"{name} cannot be a Table")
        check_catalog(value)
        from .products import catalog_to_selected_catalog
        return catalog_to_selected_catalog(value)
    if name == "selected_catalog" and not isinstance(value, (str, dict)) and value is not None:
        raise InvalidQueryError(
            f"selected_catalog must be a catalog Table (as returned by Mmoda.query_region, maybe "
            f"filtered), not {type(value).__name__}: {_short(value)}")
    return _coordinate(name, value)


def _coordinate(name, value):
    """``RA``/``DEC`` of a `~astropy.coordinates.SkyCoord` in ICRS degrees; other SkyCoords refused."""
    from astropy.coordinates import SkyCoord

    if not isinstance(value, SkyCoord):
        return value
    if name in ("RA", "DEC") and value.isscalar:
        icrs = value.icrs
        return round(float(icrs.ra.deg if name == "RA" else icrs.dec.deg), 8)
    raise InvalidQueryError(f"{name} cannot be a SkyCoord{'' if value.isscalar else ' array'}; give "
                            "RA=position.icrs.ra.deg, DEC=position.icrs.dec.deg (or use the "
                            "INTEGRAL methods, which take a SkyCoord)")


def check_catalog(table, instrument=None):
    """Refuse a catalog that would not select what the user means.

    An empty catalog would mean "all sources" to the dispatcher; a catalog whose
    ``meta['instrument']`` is another instrument gives an empty result.

    Raises
    ------
    astroquery.exceptions.InvalidQueryError
    """
    if len(table) == 0:
        raise InvalidQueryError("the catalog has no rows (the dispatcher would take every source): "
                                "loosen the filter, or leave catalog out")
    made_by = table.meta.get("instrument") if table.meta else None
    if instrument and isinstance(made_by, str) and made_by and made_by.lower() != instrument.lower():
        raise InvalidQueryError(f"the catalog comes from a {made_by} image; {instrument} finds no "
                                f"source of it: give a catalog of an {instrument} image")


def check_restrictions(name, value, spec):
    """Raise `InvalidQueryError` when ``value`` breaks the allowed values or bounds of ``spec``."""
    allowed = spec.get("allowed_values")
    default = spec.get("default")
    scalar = allowed or spec.get("min") is not None or spec.get("max") is not None or (
        isinstance(default, (int, float)) and not isinstance(default, bool))
    if scalar and isinstance(value, (list, tuple, set, frozenset, dict)):
        raise InvalidQueryError(f"{name} must be a single value, not a {type(value).__name__}")
    if allowed and value is not None and value not in allowed:
        raise InvalidQueryError(f"{name}={_short(value)} is not allowed; choose one of {allowed}")
    for bound, compare, word in (("min", lambda v, b: v < b, "below"),
                                 ("max", lambda v, b: v > b, "above")):
        limit = spec.get(bound)
        if limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and compare(value, limit):
            raise InvalidQueryError(f"{name}={_short(value)} is {word} the allowed {bound}imum {limit}")


def check_params(instrument, product, params, specs):
    """Check and convert a product's parameters against its description.

    Parameters
    ----------
    instrument, product : str
        For messages.
    params : dict
        The user's parameters.
    specs : list of dict
        The product's parameter descriptions (see `product_parameters`).

    Returns
    -------
    dict
        The converted values.
    """
    declared = {p["name"]: p for p in specs}
    allowed = set(declared) | CONTROL_ARGS
    converted = {}
    catalog = params.get("selected_catalog")
    if catalog is not None and hasattr(catalog, "colnames"):
        check_catalog(catalog, instrument)
    for name, value in agree_times(_without_unsent(params)).items():
        if name not in allowed:
            hint = suggest(name, allowed - {"token"})
            raise InvalidQueryError(
                f"{instrument}/{product} has no parameter {name!r}{hint}. "
                "See Mmoda.get_parameters(instrument, product).")
        spec = declared.get(name, {})
        value = wire_value(name, value, spec.get("unit"))
        check_restrictions(name, value, spec)
        converted[name] = value
    _check_time_order(converted)
    return converted


def _check_time_order(converted):
    """Refuse ``T1`` at or after ``T2`` (swapped times), as the INTEGRAL methods do."""
    from astropy.time import Time

    times = []
    for name in TIME_PARAMETERS:
        value = converted.get(name)
        try:
            if converted.get("T_format") == "mjd" or isinstance(value, (int, float)):
                times.append(Time(float(value), format="mjd"))
            else:
                times.append(Time(value))
        except (TypeError, ValueError):
            return  # not both given, or in a form only the server reads
    if times[0] >= times[1]:
        raise InvalidQueryError(f"T1 ({converted['T1']}) must be before T2 ({converted['T2']})")


def convert_unchecked(params, meta=None):
    """Convert parameters without validation; units are known only from ``meta`` (if cached)."""
    units = {p["name"]: p["unit"] for p in meta[1]} if meta else {}
    return {name: wire_value(name, value, units.get(name))
            for name, value in agree_times(_without_unsent(params)).items()}


#: The time parameters whose format ``T_format`` gives.
TIME_PARAMETERS = ("T1", "T2")
_TIME_FORMATS = ("isot", "mjd")


def agree_times(params):
    """``T1``/``T2`` in the format ``T_format`` says (``'isot'`` by default).

    `~astropy.time.Time` values become ISO UTC text, or UTC MJD numbers with
    ``T_format='mjd'`` (an oda_api habit); MJD numbers without ``T_format='mjd'``
    are refused with how to give them.

    Examples
    --------
    >>> from astropy.time import Time
    >>> agree_times({"T1": Time("2003-03-15T00:00:00"), "T_format": "mjd"})
    {'T1': 52713.0, 'T_format': 'mjd'}
    """
    from astropy.time import Time

    time_format = params.get("T_format", "isot")
    if time_format not in _TIME_FORMATS:
        raise InvalidQueryError(f"T_format must be one of {_TIME_FORMATS}, not {time_format!r}")
    agreed = dict(params)
    for name in TIME_PARAMETERS:
        value = params.get(name)
        if isinstance(value, Time) and value.isscalar:
            agreed[name] = float(value.utc.mjd) if time_format == "mjd" else value.utc.isot
        elif time_format == "mjd" and isinstance(value, str) and _number(value) is None:
            try:
                agreed[name] = float(Time(value, scale="utc").mjd)
            except ValueError:
                raise InvalidQueryError(f"{name}={value!r} is not a time") from None
        elif time_format == "isot" and _number(value) is not None:
            raise InvalidQueryError(
                f"{name}={value!r} looks like an MJD: give {name}=Time({_number(value)!r}, "
                "format='mjd'), or add T_format='mjd'")
    return agreed


def needs_units(params):
    """Whether a value of ``params`` is a `~astropy.units.Quantity` (its conversion needs the description)."""
    return any(isinstance(value, u.Quantity) for value in params.values())


def _without_unsent(params):
    return {name: value for name, value in params.items()
            if not (value is None and name in NOT_SENT_WHEN_NONE)}


def encode(converted):
    """The wire form of converted parameters: encoded for the dispatcher, uploads kept as they are."""
    from .protocol import encode_params

    others, uploads = split_uploads(converted)
    wire = encode_params(others)
    wire.update(uploads)
    return wire


def payload(instrument, product, query_type, wire):
    """The parameters of a new request as sent (without token and session id)."""
    return dict(wire, instrument=instrument, product_type=product, query_type=query_type,
                query_status="new", api="True")


# -- descriptions --------------------------------------------------------------------------

def parameters_table(specs, *, instrument, product, server):
    """The parameter descriptions of a product as a `~astropy.table.Table` (the token left out)."""
    from astropy.table import Table

    names = ("name", "default", "unit", "type", "query", "allowed_values", "min", "max", "optional")
    table = Table(names=names, dtype=["U64", object, "U32", "U64", "U64", object, object, object, object])
    for row in specs:
        if row["name"] == "token":
            continue
        table.add_row([row["name"], row["default"], row["unit"] or "", row.get("type") or "",
                       row["query"] or "", row["allowed_values"], row["min"], row["max"], row["optional"]])
    table.meta.update(instrument=instrument, product=product, server=server)
    return table
