"""The dispatcher's description of an instrument (``api/meta-data``), read into plain data.

Two dialects exist: dispatcher 1.3.3 sends each query block as a JSON string,
1.3.6 as a list.  `parse_meta_data` reads both.
"""
import math
import warnings

from astropy.utils.exceptions import AstropyUserWarning

from .exceptions import ProtocolError
from .json_decoding import decode_json

__all__ = ["parse_meta_data", "loads_json"]


def loads_json(content):
    """Decode a dispatcher answer (bytes or str); `ProtocolError` if it is not JSON."""
    # JSON only (NaN and Infinity accepted): nothing is ever evaluated.
    try:
        return decode_json(content)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        preview = bytes(content[:200]) if isinstance(content, bytearray) else \
            content[:200] if isinstance(content, (bytes, str)) else ""
        raise ProtocolError(f"the dispatcher's answer is not valid JSON ({exc.__class__.__name__}); "
                            f"it starts with {preview!r}") from None
    except MemoryError:
        size = len(content) / 2 ** 20 if isinstance(content, (bytes, bytearray, str)) else 0
        raise ProtocolError(f"the dispatcher's answer ({size:.0f} MiB of JSON) needs more memory to "
                            "decode than is available") from None


def _query_block(block):
    # 1.3.3 sends each query block as a JSON string; 1.3.6 as a list.
    if isinstance(block, str):
        block = loads_json(block)
    if not isinstance(block, list):
        raise ProtocolError("a meta-data query block is not a list")
    return block


def parse_meta_data(raw):
    """Read an ``api/meta-data`` answer of either dialect.

    Returns
    -------
    products : dict
        Product name → the name of its query.
    parameters : list of dict
        One dict per parameter: ``name``, ``default``, ``unit``, ``query``,
        ``product`` (None for the source and instrument queries),
        ``allowed_values``, ``min``, ``max``, ``optional``, ``type`` (the parameter's
        term of the ODA ontology, e.g. ``'oda:Integer'``; None when not described).
    """
    blocks = raw[0] if raw and isinstance(raw[0], list) else raw
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise ProtocolError("the meta-data answer has no instrument description")
    products = {}
    parameters = []
    for block in blocks:
        if isinstance(block, dict):
            if isinstance(block.get("prod_dict"), dict):
                products = {str(k): str(v) for k, v in block["prod_dict"].items()}
            continue
        entries = _query_block(block)
        query = product = None
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if "query_name" in entry:
                query = _name_or_none(entry["query_name"])
            elif "product_name" in entry:
                product = _name_or_none(entry["product_name"])
            elif "name" in entry:
                name = _name_or_none(entry["name"])
                if name is None:  # 1.3.6 describes some queries with nameless rows
                    continue
                parameters.append(_parameter(name, entry, query, product))
    return products, parameters


def _name_or_none(value):
    if not isinstance(value, str) or not value.strip() or value.strip() == "None":
        return None
    return value.strip()


def _scalar(value):
    return value is None or isinstance(value, (str, int, float, bool))


def _parameter(name, entry, query, product):
    """One parameter row; restrictions of the wrong type are dropped with a warning."""
    restrictions = entry.get("restrictions") or {}
    if not isinstance(restrictions, dict):
        _malformed(name, "restrictions", restrictions)
        restrictions = {}
    unit = entry.get("units")
    if unit is not None and not isinstance(unit, str):
        _malformed(name, "units", unit)
        unit = None
    default = entry.get("value")
    if not _scalar(default) and not isinstance(default, (list, dict)):
        _malformed(name, "value", default)
        default = None
    allowed = restrictions.get("allowed_values")
    if allowed is not None and not (isinstance(allowed, list) and all(map(_scalar, allowed))):
        _malformed(name, "allowed_values", allowed)
        allowed = None
    bounds = {}
    for key in ("min_value", "max_value"):
        bound = restrictions.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                  or not math.isfinite(bound)):
            _malformed(name, key, bound)
            bound = None
        bounds[key] = bound
    optional = restrictions.get("is_optional")
    if optional is not None and not isinstance(optional, bool):
        _malformed(name, "is_optional", optional)
        optional = None
    return {"name": name, "default": default, "unit": unit, "query": query, "product": product,
            "allowed_values": allowed, "min": bounds["min_value"], "max": bounds["max_value"],
            "optional": optional, "type": _ontology_type(entry.get("owl_uri"))}


_PREFIXES = {"http://odahub.io/ontology#": "oda:", "http://www.w3.org/2001/XMLSchema#": "xsd:"}


def _ontology_type(uris):
    """The most specific ODA ontology term of a parameter (the last of ``owl_uri``), as ``oda:Term``."""
    if isinstance(uris, str):
        uris = [uris]
    if not isinstance(uris, list) or not uris or not isinstance(uris[-1], str):
        return None
    uri = uris[-1]
    for base, prefix in _PREFIXES.items():
        if uri.startswith(base):
            return prefix + uri[len(base):]
    return uri


def _malformed(name, what, value):
    warnings.warn(f"The dispatcher's description of the parameter {name!r} has a malformed "
                  f"{what} ({type(value).__name__}); it is ignored.", AstropyUserWarning, stacklevel=4)
