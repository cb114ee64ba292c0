"""The dispatcher's description of an instrument (``api/meta-data``), read into plain data.

Two dialects exist: dispatcher 1.3.3 sends each query block as a JSON string,
1.3.6 as a list.  `parse_meta_data` reads both.
"""
import json

from .exceptions import ProtocolError

__all__ = ["parse_meta_data", "loads_json"]


def loads_json(content):
    """Decode a dispatcher answer (bytes or str); `ProtocolError` if it is not JSON."""
    # Plain json: NaN and Infinity are accepted, nothing is ever evaluated.
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        preview = content[:200] if isinstance(content, (bytes, str)) else ""
        raise ProtocolError(f"the dispatcher's answer is not valid JSON ({exc.__class__.__name__}); "
                            f"it starts with {preview!r}") from None


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
        ``allowed_values``, ``min``, ``max``, ``optional``.
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
                query = entry["query_name"]
            elif "product_name" in entry:
                product = entry["product_name"]
            elif "name" in entry:
                restrictions = entry.get("restrictions") or {}
                if not isinstance(restrictions, dict):
                    restrictions = {}
                parameters.append({
                    "name": str(entry["name"]), "default": entry.get("value"),
                    "unit": entry.get("units"), "query": query, "product": product,
                    "allowed_values": restrictions.get("allowed_values"),
                    "min": restrictions.get("min_value"), "max": restrictions.get("max_value"),
                    "optional": restrictions.get("is_optional"),
                })
    return products, parameters
