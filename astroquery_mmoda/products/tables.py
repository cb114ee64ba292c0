"""Catalogs, tables, binaries, pictures and text products.

Catalogs go both ways: `catalog_from_dict` reads the dispatcher's catalog,
`catalog_to_selected_catalog` writes what the dispatcher expects back.
Binaries and pictures become `NamedBytes`, typed from their first bytes.
"""
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table

from ..exceptions import InvalidQueryError, ProtocolError
from .encoding import _b64decode, _clean_name, _json_meta, _json_object
from .shown import _short

__all__ = ["NamedBytes", "catalog_from_dict", "catalog_to_selected_catalog"]


def catalog_from_dict(catalog):
    """The dispatcher's catalog dictionary as an `~astropy.table.Table`.

    Columns keep the server's names, order and ``cat_column_descr`` dtypes,
    except that text columns (``|S``, ``<U``) are `str`, as wide as their
    longest value (never truncated, any Unicode); the longitude/latitude
    columns (``cat_lon_name``/``cat_lat_name``, usually ``ra``/``dec``) are
    floats with the unit ``cat_coord_units``.  Nulls become
    NaN in float columns and are masked in others.  ``table.meta`` holds
    ``cat_meta`` and ``FRAME``, ``COORD_UNIT``, ``LON_NAME``, ``LAT_NAME``.

    Parameters
    ----------
    catalog : dict
        ``products['catalog']`` of a dispatcher answer.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    ProtocolError
        When the dictionary is malformed.

    Examples
    --------
    >>> t = catalog_from_dict({"cat_frame": "fk5", "cat_coord_units": "deg",
    ...     "cat_lon_name": "ra", "cat_lat_name": "dec",
    ...     "cat_column_names": ["meta_ID", "src_names", "significance", "ra", "dec"],
    ...     "cat_column_list": [[0], ["Crab"], [None], [83.63], [22.01]],
    ...     "cat_column_descr": [["meta_ID", "<i8"], ["src_names", "<U4"],
    ...                          ["significance", "<f8"], ["ra", "<f8"], ["dec", "<f8"]]})
    >>> t["ra"].unit, bool(np.isnan(t["significance"][0])), t.meta["FRAME"]
    (Unit("deg"), True, 'fk5')
    """
    try:
        return _catalog_from_dict(catalog)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"catalog: malformed ({type(exc).__name__}: {_short(str(exc))})") from None


_DESCR_RE = re.compile(r"[<>|=]?[A-Za-z?]\d{0,9}\Z")


def _catalog_from_dict(catalog):
    if not isinstance(catalog, dict):
        raise ProtocolError("catalog is not an object")
    names = catalog.get("cat_column_names")
    values = catalog.get("cat_column_list")
    if not (isinstance(names, list) and isinstance(values, list) and len(names) == len(values)
            and all(isinstance(n, str) for n in names) and all(isinstance(v, list) for v in values)):
        raise ProtocolError("catalog: cat_column_names and cat_column_list do not match")
    if len({len(v) for v in values}) > 1:
        raise ProtocolError("catalog: columns of different lengths")
    descr = catalog.get("cat_column_descr")
    dtypes = [None] * len(names)
    if isinstance(descr, list) and len(descr) == len(names):
        for index, entry in enumerate(descr):
            if (isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[0] == names[index]
                    and isinstance(entry[1], str) and _DESCR_RE.match(entry[1])):
                dtypes[index] = np.dtype(entry[1])
    meta = {}
    if isinstance(catalog.get("cat_meta"), dict):
        meta.update(catalog["cat_meta"])
    lon, lat = catalog.get("cat_lon_name"), catalog.get("cat_lat_name")
    coord_unit = catalog.get("cat_coord_units")
    meta.update(FRAME=catalog.get("cat_frame"), COORD_UNIT=coord_unit, LON_NAME=lon, LAT_NAME=lat)
    unit = None
    if isinstance(coord_unit, str):
        try:
            unit = u.Unit(coord_unit)
        except ValueError:
            unit = None
    columns = []
    for name, column_values, dtype in zip(names, values, dtypes):
        is_coordinate = name in (lon, lat)
        if is_coordinate and (dtype is None or dtype.kind != "f"):
            dtype = np.dtype(float)
        elif dtype is not None and dtype.kind in "SU":
            dtype = _text_dtype(dtype, column_values)
        column = _column_from_values(name, column_values, dtype)
        if is_coordinate and unit is not None:
            column.unit = unit
        columns.append(column)
    return Table(columns, meta=meta, copy=False)


def _text_dtype(declared, values):
    """A str dtype wide enough for the declared width and the values: names are never truncated."""
    width = declared.itemsize // (4 if declared.kind == "U" else 1)
    longest = max((len(value) for value in values if isinstance(value, str)), default=0)
    return np.dtype(f"<U{max(width, longest, 1)}")


def _column_from_values(name, values, dtype):
    nulls = [value is None for value in values]
    if not any(nulls):
        return Column(np.array(values, dtype=dtype), name=name, copy=False)
    if dtype is None:
        present = [value for value in values if value is not None]
        dtype = np.array(present).dtype if present else np.dtype(float)
    if dtype.kind == "f":
        return Column(np.array(values, dtype=dtype), name=name, copy=False)
    fill = np.zeros((), dtype=dtype).item() if dtype.kind != "O" else None
    filled = [fill if null else value for value, null in zip(values, nulls)]
    return MaskedColumn(np.array(filled, dtype=dtype), mask=nulls, name=name, copy=False)


_REQUIRED_CATALOG_COLUMNS = ("meta_ID", "src_names", "significance")


def catalog_to_selected_catalog(table):
    """The ``selected_catalog`` string the dispatcher expects, from a catalog table.

    The inverse of `catalog_from_dict` (and of the ``catalog`` item of a
    `ProductSet`): ``catalog_to_selected_catalog(catalog_from_dict(d))``
    reproduces ``d`` (without ``cat_meta``).  Tables filtered with astropy
    (masked or Quantity columns) are fine; masked values and NaN are sent as
    ``null``.  Without ``table.meta``, the frame is ``fk5``, the coordinates
    are the columns ``ra``/``dec`` and their unit is ``deg``.

    Parameters
    ----------
    table : astropy.table.Table
        Needs the columns ``meta_ID``, ``src_names``, ``significance`` and the
        longitude/latitude columns.

    Returns
    -------
    str
        JSON with ``cat_frame``, ``cat_coord_units``, ``cat_column_list``
        (column-major), ``cat_column_names``, ``cat_column_descr``,
        ``cat_lat_name`` and ``cat_lon_name``.

    Raises
    ------
    astroquery.exceptions.InvalidQueryError
        When a required column is missing or a column cannot be sent.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"meta_ID": [0], "src_names": ["Crab"], "significance": [20.0],
    ...            "ra": [83.63], "dec": [22.01]})
    >>> catalog_to_selected_catalog(t)[:60]
    '{"cat_frame": "fk5", "cat_coord_units": "deg", "cat_column_l'
    """
    if not isinstance(table, Table):
        raise InvalidQueryError(f"a catalog must be an astropy Table, not {type(table).__name__}")
    meta = table.meta or {}
    lon = meta.get("LON_NAME") or "ra"
    lat = meta.get("LAT_NAME") or "dec"
    frame = meta.get("FRAME") or "fk5"
    coord_unit = meta.get("COORD_UNIT") or "deg"
    missing = [name for name in (*_REQUIRED_CATALOG_COLUMNS, lon, lat) if name not in table.colnames]
    if missing:
        raise InvalidQueryError(
            f"the catalog lacks the column(s) {', '.join(missing)}; the dispatcher needs "
            f"meta_ID, src_names, significance and the coordinates ({lon}, {lat})")
    column_list, descr = [], []
    for name in table.colnames:
        try:
            values, mask = _plain_column(table[name], coord_unit if name in (lon, lat) else None)
        except Exception as exc:
            raise InvalidQueryError(f"the catalog column {name!r} cannot be sent: {exc}") from None
        items = values.tolist()
        if values.ndim == 1:
            items = [None if null or _is_nan(item) else _jsonable(item)
                     for item, null in zip(items, mask)]
        else:
            items = [None if null else _nested(item) for item, null in zip(items, mask)]
        column_list.append(items)
        entry = [name, values.dtype.str]
        if values.ndim > 1:
            entry.append(list(values.shape[1:]))
        descr.append(entry)
    return json.dumps({"cat_frame": frame, "cat_coord_units": coord_unit,
                       "cat_column_list": column_list, "cat_column_names": list(table.colnames),
                       "cat_column_descr": descr, "cat_lat_name": lat, "cat_lon_name": lon})


def _plain_column(column, coord_unit):
    mask = np.ma.getmaskarray(column)
    if mask.ndim > 1:
        mask = mask.reshape(len(mask), -1).all(axis=1)
    unit = getattr(column, "unit", None)
    if isinstance(column, u.Quantity):
        values = column.to_value(coord_unit) if coord_unit and unit is not None else column.value
    elif coord_unit and unit is not None:
        values = u.Quantity(np.ma.getdata(column), unit).to_value(coord_unit)
    else:
        values = np.ma.getdata(column)
    values = np.asarray(values)
    if values.dtype.kind == "O" or values.dtype.names is not None:
        raise ValueError(f"unsupported dtype {values.dtype}")
    return values, mask


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def _jsonable(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _nested(value):
    if isinstance(value, list):
        return [_nested(item) for item in value]
    return None if _is_nan(value) else _jsonable(value)


def _decode_table_product(item, ctx, what):
    item = _json_object(item, what)
    meta = _json_meta(item.get("meta_data"), ctx, what)
    text = item.get("ascii")
    if isinstance(text, str):
        from astropy.io import ascii as astropy_ascii
        try:
            # A list of lines, so that the text is never taken for a file name.
            table = astropy_ascii.read(text.splitlines(), format="ecsv")
        except Exception as exc:
            raise ProtocolError(f"{what}: not an ECSV table ({type(exc).__name__}: "
                                f"{_short(str(exc))})") from None
    elif item.get("binary") is not None:
        raise ProtocolError(
            f"{what}: pickled astropy tables ('binary') are unsupported: unpickling a Table would run "
            "astropy's unit and mixin machinery on server data; ask the service to send it as "
            "ECSV text instead (its 'ascii' field: ODAAstropyTable.encode(use_binary=False), "
            "oda_api's default)")
    else:
        raise ProtocolError(f"{what} has neither 'ascii' nor 'binary' content")
    return table, meta, _clean_name(item.get("name"))


def _decode_binary_product(item, ctx, what):
    if isinstance(item, str):
        try:
            decoded = json.loads(item)
        except (ValueError, RecursionError):
            decoded = None
        if not (isinstance(decoded, dict) and "data" in decoded):
            data = _b64decode(item, urlsafe=True, what=f"{what} (legacy binary)")
            return NamedBytes(data), {}, None
        item = decoded
    if not isinstance(item, dict):
        raise ProtocolError(f"{what} is {type(item).__name__}, neither an object nor a string")
    data = _b64decode(item.get("data"), urlsafe=True, what=f"{what}: data")
    md5 = item.get("md5")
    if md5 is not None:
        actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if not isinstance(md5, str) or md5.strip().lower() != actual:
            raise ProtocolError(f"{what}: md5 mismatch (expected {_short(md5, 40)}, got {actual})")
    name = _clean_name(item.get("name"))
    return NamedBytes(data, name=name), ({"md5": md5} if md5 is not None else {}), name


def _decode_picture(item, ctx, what):
    item = _json_object(item, what)
    data = _b64decode(item.get("b64data"), urlsafe=True, what=f"{what}: b64data")
    kind = _sniff(data)
    if kind not in _IMAGE_TYPES:
        raise ProtocolError(f"{what}: data is not an image (PNG, JPEG, GIF, SVG, ...)")
    declared = item.get("img_type")
    if isinstance(declared, str) and declared.strip():
        declared = declared.strip().lower().lstrip(".")
        declared = _IMAGE_ALIASES.get(declared, declared)
        if declared != kind:
            raise ProtocolError(f"{what}: img_type {_short(declared, 20)!r} but the data is {kind}")
    meta = _json_meta(item.get("metadata"), ctx, what)
    filename = item.get("filename")
    name = _clean_name(item.get("name"))
    if name is None and isinstance(filename, str) and filename.strip():
        name = Path(filename.strip()).stem or None
    return NamedBytes(data, name=name or filename, suggested_suffix=_IMAGE_TYPES[kind]), meta, name


def _decode_text(item, ctx, what):
    item = _json_object(item, what)
    if "value" not in item:
        raise ProtocolError(f"{what} has no value")
    meta = _json_meta(item.get("meta_data"), ctx, what)
    return item["value"], meta, _clean_name(item.get("name"))


class NamedBytes(bytes):
    """Bytes of a binary product, with the product's name and a file suffix.

    Attributes
    ----------
    name : str or None
        The name the dispatcher gave the product.
    suggested_suffix : str
        ``'.png'``, ``'.fits'``, ... from the content (or the name), ``'.bin'``
        when unknown.

    Examples
    --------
    >>> b = NamedBytes(b"\\x89PNG\\r\\n\\x1a\\n...", name="plot")
    >>> b.suggested_suffix, b.name, len(b)
    ('.png', 'plot', 11)
    """

    def __new__(cls, data, name=None, suggested_suffix=None):
        self = super().__new__(cls, data)
        self.name = name
        if suggested_suffix is None:
            suggested_suffix = _suffix_for(self, name)
        self.suggested_suffix = suggested_suffix
        return self

    def __repr__(self):
        return (f"NamedBytes(name={self.name!r}, {len(self)} bytes, "
                f"suggested_suffix={self.suggested_suffix!r})")

    def __reduce__(self):
        return (NamedBytes, (bytes(self), self.name, self.suggested_suffix))


def _suffix_for(data, name):
    """The file suffix of binary ``data``: from its content, else a known data suffix of ``name``.

    Suffixes that a desktop would run or open as a program (``.exe``, ``.bat``,
    ``.js``, ``.py``, ``.html``, ...) are never taken from a server's name: ``.bin``.
    """
    kind = _sniff(data)
    if kind is not None:
        return _IMAGE_TYPES.get(kind, f".{kind}")
    if isinstance(name, str):
        match = re.search(r"\.([A-Za-z0-9]{1,5})\Z", name)
        if match and match.group(1).lower() in _DATA_SUFFIXES:
            return f".{match.group(1).lower()}"
    return ".bin"


# Suffixes (without the dot) a binary product's file may get from its name.
_DATA_SUFFIXES = frozenset([
    "fits", "fit", "fts", "fz", "gz", "bz2", "xz", "zip", "tar", "tgz", "root", "h5", "hdf5", "hdf",
    "nc", "npy", "npz", "ecsv", "csv", "tsv", "txt", "dat", "json", "xml", "vot", "yaml", "yml",
    "png", "jpg", "jpeg", "gif", "svg", "tiff", "tif", "bmp", "webp", "pdf", "eps", "ps", "pha", "rmf",
    "arf", "rsp", "lc", "evt", "qdp", "reg", "log", "ascii"])


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"SIMPLE  =", "fits"),
    (b"%PDF-", "pdf"),
    (b"root", "root"),
    (b"\x89HDF\r\n\x1a\n", "h5"),
    (b"\x1f\x8b", "gz"),
    (b"PK\x03\x04", "zip"),
    (b"# %ECSV", "ecsv"),
)
_IMAGE_TYPES = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "svg": ".svg", "webp": ".webp",
                "tiff": ".tiff", "bmp": ".bmp"}
_IMAGE_ALIASES = {"jpg": "jpeg", "svg+xml": "svg", "tif": "tiff"}
_SVG_RE = re.compile(rb"\A(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]",
                     re.DOTALL | re.IGNORECASE)


def _sniff(data):
    """The type of ``data`` from its first bytes: 'png', 'fits', ... or None."""
    head = bytes(data[:2048])
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) > 26 and int.from_bytes(head[2:6], "little") == len(data):
        return "bmp"
    if _SVG_RE.match(head):
        return "svg"
    return None
