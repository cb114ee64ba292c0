"""oda_api habits: the request that oda_api code (or the MMODA web site's "API code") gives, as ours.

`oda_api_request` maps a ``par_dict`` of ``DispatcherAPI(...).get_product(**par_dict)`` to the
arguments of `~astroquery_mmoda.core.MmodaClass.get_product`: oda_api's ``product_type`` is our
``query_type``, its ``product`` our ``product``; ``T_format`` and string numbers are kept (the
client makes the times agree with ``T_format``); the token is handed back to log in with; the keys
that the client sets itself are dropped and named.
"""
from .exceptions import InvalidQueryError
from .params import QUERY_TYPES, RESERVED_ARGS

__all__ = ["oda_api_request"]

# Set by the client for every request (the instrument, query type and token are read first):
# given by oda_api code, they are dropped; so is oda_api's dry_run.
_CLIENT_KEYS = (RESERVED_ARGS - {"instrument", "product_type", "token"}) | {"dry_run"}


def oda_api_request(par_dict):
    """``(request, token, dropped)`` from an oda_api ``par_dict``.

    Parameters
    ----------
    par_dict : dict
        As given to oda_api's ``DispatcherAPI.get_product``.

    Returns
    -------
    request : dict
        ``instrument``, ``product``, ``query_type`` and the product's parameters:
        ``Mmoda.get_product(**request)``.
    token : str or None
        The ``token`` of ``par_dict``, to log in with.
    dropped : list of str
        The keys that the client sets itself, left out.

    Examples
    --------
    >>> request, token, dropped = oda_api_request({
    ...     "instrument": "isgri", "product": "isgri_image", "product_type": "Real",
    ...     "T1": "56468.0", "T2": "56470.0", "T_format": "mjd", "E1_keV": "28", "session_id": "X"})
    >>> request["instrument"], request["product"], request["query_type"]
    ('isgri', 'isgri_image', 'Real')
    >>> {key: request[key] for key in ("T1", "T_format", "E1_keV")}
    {'T1': '56468.0', 'T_format': 'mjd', 'E1_keV': '28'}
    >>> token, dropped
    (None, ['session_id'])
    """
    if not isinstance(par_dict, dict):
        raise InvalidQueryError(f"par_dict must be a dict, not {type(par_dict).__name__}")
    params = dict(par_dict)
    missing = [key for key in ("instrument", "product") if not params.get(key)]
    if missing:
        raise InvalidQueryError(f"the oda_api par_dict has no {' or '.join(missing)}")
    query_type = params.pop("product_type", None)
    also = params.pop("query_type", None)
    if query_type is not None and also is not None and query_type != also:
        raise InvalidQueryError(f"product_type={query_type!r} and query_type={also!r} disagree "
                                "(oda_api's product_type is the query type)")
    query_type = query_type if query_type is not None else also if also is not None else "Real"
    if query_type not in QUERY_TYPES:
        raise InvalidQueryError(f"product_type (the query type) must be one of {QUERY_TYPES}, not "
                                f"{query_type!r}")
    token = params.pop("token", None)
    dropped = [key for key in params if key in _CLIENT_KEYS]
    for key in dropped:
        del params[key]
    request = {"instrument": params.pop("instrument"), "product": params.pop("product"),
               "query_type": query_type}
    request.update(params)
    return request, token, dropped
