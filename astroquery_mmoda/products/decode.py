"""`decode_products`: the ``products`` of a dispatcher answer -> `ProductSet`.

Each key of the answer has its decoder (`~.fits`, `~.tables`); this module
collects the decoded items in the answer's order and names them.
"""
import contextlib
import json
import warnings

from astropy.utils.exceptions import AstropyUserWarning

from ..exceptions import ProtocolError
from .collection import ProductSet
from .encoding import _clean_name, _json_object
from .fits import _decode_numpy_product
from .shown import _scrub, _short
from .tables import (_decode_binary_product, _decode_picture, _decode_table_product, _decode_text,
                     catalog_from_dict)

__all__ = ["decode_products"]


def decode_products(products, *, job_id=None, product=None, release=False):
    """Decode the ``products`` of a dispatcher answer into a `ProductSet`.

    Decoded keys, in this order: ``numpy_data_product`` and
    ``numpy_data_product_list`` (FITS-like products -> `~astropy.io.fits.HDUList`),
    ``binary_data_product_list`` (items with ``data``/``md5`` or legacy
    URL-safe base64 strings -> `NamedBytes`), ``catalog``
    (-> `~astropy.table.Table`, see `catalog_from_dict`),
    ``astropy_table_product_ascii_list`` (ECSV -> Table),
    ``astropy_table_product_binary_list`` (pickled tables: refused),
    ``binary_image_product_list`` (pictures -> `NamedBytes`, type checked),
    ``text_product_list`` and the gravitational-wave keys
    ``gw_strain_product_list``, ``gw_spectrogram_product`` (decoded JSON,
    kind ``'gw'``) and ``gw_skymap_product`` (one FITS product per event plus
    its contours as kind ``'gw'``), ``echo`` (the parameters the service
    saw, kind ``'echo'``), ``progress_product_list`` and
    ``progress_product_html_output`` (what a ``return_progress=True`` job
    reports while it runs, kind ``'progress'``).  Keys that describe the
    answer (``api_code``, ``session_id``, ``prod_process_message``,
    ``extra_metadata``, ...) are not products; ``analysis_parameters`` is kept
    without tokens.  Any other key is kept as it was sent, kind ``'other'``,
    named after the key (e.g. the ``p`` of the dispatcher's demonstration
    instruments).  JSON values (echo, progress, other) are kept without tokens.

    Parameters
    ----------
    products : dict
        ``answer['products']``.
    job_id : str, optional
        Defaults to ``products['job_id']``.
    product : str, optional
        The product asked for: the name of unnamed FITS-like products.
    release : bool
        Drop the base64 text of each large data unit (1 MiB and more) from
        ``products`` as soon as it is decoded, so that the text and its
        products are not both in memory: for callers that need the answer no
        more.  ``products`` then lacks that data.

    Returns
    -------
    ProductSet

    An item that cannot be decoded safely (e.g. a pickled table) is refused:
    the others are still decoded, an `~astropy.utils.exceptions.AstropyUserWarning`
    names what was refused and why, and so does `ProductSet.refused`.

    Raises
    ------
    ProtocolError
        When ``products`` is not an object, or when every item was refused
        (the reasons, naming the items, are in the message).

    Examples
    --------
    >>> products = decode_products({"job_id": "d0c4a1e2", "text_product_list": [
    ...     {"name": "note", "value": "3 sources found", "meta_data": {"src_name": "Crab"}}]})
    >>> list(products), products["note_Crab"], products.job_id
    (['note_Crab'], '3 sources found', 'd0c4a1e2')
    """
    if not isinstance(products, dict):
        raise ProtocolError(f"products is {type(products).__name__}, not an object", job_id=job_id)
    if job_id is None and isinstance(products.get("job_id"), str):
        job_id = products["job_id"]
    parameters = products.get("analysis_parameters")
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except (ValueError, RecursionError):
            parameters = {"raw": parameters}
    parameters = _scrub(parameters) if isinstance(parameters, dict) else {}
    ctx = _Context(product, release)
    try:
        items = _collect(products, ctx)
    except RecursionError:
        raise ProtocolError("products nested too deeply", job_id=job_id) from None
    except MemoryError:
        raise ProtocolError("the products need more memory to decode than is available",
                            job_id=job_id) from None
    if ctx.refused:
        reasons = "; ".join(ctx.refused.values())
        if not items:
            if len(ctx.refused) > 1:
                reasons = f"{len(ctx.refused)} products refused: {reasons}"
            raise ProtocolError(_short(reasons, 2000), job_id=job_id)
        warnings.warn(f"{len(ctx.refused)} product(s) refused, {len(items)} decoded "
                      f"(see ProductSet.refused): {_short(reasons, 600)}", AstropyUserWarning,
                      stacklevel=2)
    _assign_names(items)
    return ProductSet([(item.name, item.kind, item.value, item.meta) for item in items],
                      job_id=job_id, analysis_parameters=parameters, refused=ctx.refused)


class _Context:
    def __init__(self, product=None, release=False):
        self.warned_meta = False
        self.product = product
        self.release = release
        self.refused = {}


class _Item:
    __slots__ = ("base", "kind", "value", "meta", "name")

    def __init__(self, base, kind, value, meta):
        self.base, self.kind, self.value, self.meta = base, kind, value, meta
        self.name = None


def _collect(products, ctx):
    """The decoded `_Item` list, in the order of the keys documented in `decode_products`.

    Every decoder is called as ``decoder(item, ctx, what)`` (``what`` names the
    item in messages) and returns ``(value, meta, name)``.  An item that cannot
    be decoded is refused: its reason goes to ``ctx.refused``, the other items
    are still decoded.
    """
    items = []

    def add(decoder, item, kind, what):
        with _refusing(ctx, _described(what, item)):
            value, meta, name = decoder(item, ctx, what)
            items.append(_Item(name or _default_base(kind, meta, ctx.product), kind, value, meta))

    def each(key, decoder, kind):
        listed = ()
        with _refusing(ctx, key):
            listed = _list_of(products, key)
        for index, item in enumerate(listed):
            add(decoder, item, kind, f"{key}[{index}]")

    if products.get("numpy_data_product") is not None:
        add(_decode_numpy_product, products["numpy_data_product"], "fits", "numpy_data_product")
    each("numpy_data_product_list", _decode_numpy_product, "fits")
    each("binary_data_product_list", _decode_binary_product, "binary")
    catalog = products.get("catalog")
    if catalog is not None and catalog != {}:
        with _refusing(ctx, "catalog"):
            table = catalog_from_dict(_json_object(catalog, "catalog"))
            items.append(_Item("catalog", "catalog", table, dict(table.meta)))
    each("astropy_table_product_ascii_list", _decode_table_product, "table")
    each("astropy_table_product_binary_list", _decode_table_product, "table")
    each("binary_image_product_list", _decode_picture, "image")
    each("text_product_list", _decode_text, "text")
    with _refusing(ctx, "gw_strain_product_list"):
        for index, item in enumerate(_list_of(products, "gw_strain_product_list")):
            item = _json_object(item, f"gw_strain_product_list[{index}]")
            items.append(_Item(_clean_name(item.get("name")) or "strain", "gw", item, {}))
    spectrogram = products.get("gw_spectrogram_product")
    if spectrogram is not None:
        with _refusing(ctx, "gw_spectrogram_product"):
            items.append(_Item("spectrogram", "gw",
                               _json_object(spectrogram, "gw_spectrogram_product"), {}))
    skymap = products.get("gw_skymap_product")
    if skymap is not None:
        with _refusing(ctx, "gw_skymap_product"):
            _collect_skymaps(_json_object(skymap, "gw_skymap_product"), items, add)
    if products.get("echo") is not None:
        items.append(_Item("echo", "echo", _plain_json(products["echo"]), {}))
    each("progress_product_list", _decode_progress, "progress")
    with _refusing(ctx, "progress_product_html_output"):
        for html in _list_of(products, "progress_product_html_output"):
            items.append(_Item("progress", "progress", _plain_json(html), {}))
    for key, value in products.items():
        if key not in _KNOWN_KEYS and isinstance(key, str) and _clean_name(key) and value is not None:
            items.append(_Item(_clean_name(key), "other", _plain_json(value), {"key": key}))
    return items


def _collect_skymaps(skymap, items, add):
    for event, product in _json_object(skymap.get("skymaps") or {}, "gw skymaps").items():
        count = len(items)
        add(_decode_numpy_product, product, "fits", f"gw_skymap_product skymap {_short(event, 40)}")
        if len(items) > count:
            item = items[-1]
            item.meta = dict(item.meta, event=event)
            if item.base == "numpy_data_product":
                item.base = f"skymap_{_clean_name(str(event))}"
    for event, contours in _json_object(skymap.get("contours") or {}, "gw contours").items():
        items.append(_Item(f"contours_{_clean_name(str(event))}", "gw", contours, {"event": event}))


@contextlib.contextmanager
def _refusing(ctx, what):
    """Record why the block failed under ``what`` in ``ctx.refused``, and go on."""
    try:
        yield
    except ProtocolError as exc:
        ctx.refused[what] = exc.message
    except RecursionError:
        ctx.refused[what] = f"{what}: nested too deeply"
    except Exception as exc:
        ctx.refused[what] = f"{what}: undecodable ({type(exc).__name__}: {_short(str(exc))})"


def _described(what, item):
    """``what`` with the item's name when it has one: how a refused item is reported."""
    name = item.get("name") if isinstance(item, dict) else None
    return f"{what} ({_short(name, 60)})" if isinstance(name, str) and name.strip() else what


# Keys of ``products`` that describe the answer rather than carry a product; any
# other key the decoders above do not know is kept as an ``'other'`` product.
_ENVELOPE_KEYS = frozenset([
    "analysis_parameters", "api_code", "job_id", "session_id", "input_prod_list",
    "prod_process_message", "prod_process_maessage", "instrument_parameters", "extra_metadata",
    "prod_uris", "download_file_name", "file_name", "name", "image", "spectrum_name",
    "ph_file_name", "arf_file_name", "rmf_file_name", "root_file_name", "input_param_scw_list"])
_PRODUCT_KEYS = frozenset([
    "numpy_data_product", "numpy_data_product_list", "binary_data_product_list", "catalog",
    "astropy_table_product_ascii_list", "astropy_table_product_binary_list",
    "binary_image_product_list", "text_product_list", "gw_strain_product_list",
    "gw_spectrogram_product", "gw_skymap_product", "echo", "progress_product_list",
    "progress_product_html_output"])
_KNOWN_KEYS = _ENVELOPE_KEYS | _PRODUCT_KEYS


def _plain_json(value):
    """A JSON value as sent, without tokens (the echo repeats the request's token)."""
    return _scrub(value)


def _decode_progress(item, ctx, what):
    """A progress report of a ``return_progress`` job: ``{name, value}``; the value as sent."""
    item = _json_object(item, what)
    if "value" not in item:
        raise ProtocolError(f"{what} has no value")
    return _plain_json(item["value"]), {}, _clean_name(item.get("name")) or "progress"


def _list_of(products, key):
    value = products.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ProtocolError(f"products[{key!r}] is not a list") from None
    if not isinstance(value, list):
        raise ProtocolError(f"products[{key!r}] is not a list")
    return value


def _default_base(kind, meta, requested=None):
    product = meta.get("product")
    if isinstance(product, str) and _clean_name(product):
        return _clean_name(product)
    if kind == "fits" and isinstance(requested, str) and _clean_name(requested):
        return _clean_name(requested)
    return {"fits": "numpy_data_product", "table": "table", "binary": "binary", "image": "image",
            "text": "text", "gw": "gw", "progress": "progress"}.get(kind, kind)


def _assign_names(items):
    used = {"catalog"} if any(item.kind == "catalog" for item in items) else set()
    for item in items:
        if item.kind == "catalog":
            item.name = "catalog"
            continue
        base = item.base
        source = item.meta.get("src_name")
        source = _clean_name(source) if isinstance(source, str) else None
        if source and not base.endswith(source):
            base = f"{base}_{source}"
        name, number = base, 1
        while name in used:
            number += 1
            name = f"{base}_{number}"
        used.add(name)
        item.name = name
