"""FITS-like products (``NumpyDataProduct``): data units and headers -> `~astropy.io.fits.HDUList`.

A product whose first data unit is a table gets an empty primary HDU in front of
it, as a FITS file must start with one.
"""
import json
import math
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ..exceptions import ProtocolError
from ..json_decoding import Base64Data
from .encoding import _b64decode, _clean_name, _json_meta, _json_object
from .safe_pickle import _materialize
from .shown import _short
from .unpickler import _load_shadow


# Cards astropy derives from the data.  CHECKSUM and DATASUM are kept as sent (as
# oda_api does): they describe the server's file, which is what a user may check.
_STRUCTURAL = frozenset(["SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
                         "TFIELDS", "THEAP", "GROUPS"])
_NAXIS_RE = re.compile(r"NAXIS\d+\Z")
_KEYWORD_RE = re.compile(r"[A-Z0-9_-]{1,8}\Z")
_HDU_CLASSES = {"primary": fits.PrimaryHDU, "image": fits.ImageHDU, "bintable": fits.BinTableHDU,
                "table": fits.TableHDU}


def _decode_numpy_product(product, ctx, what):
    product = _json_object(product, what)
    units = product.get("data_unit_list")
    if not isinstance(units, list):
        raise ProtocolError(f"{what} has no data_unit_list")
    meta = _json_meta(product.get("meta_data"), ctx, what)
    hdus = [_decode_data_unit(unit, index, what, release=ctx.release) for index, unit in enumerate(units)]
    if hdus and isinstance(hdus[0], (fits.BinTableHDU, fits.TableHDU)):
        # A FITS file starts with a primary HDU, which cannot hold a table.
        hdus.insert(0, fits.PrimaryHDU())
    return fits.HDUList(hdus), meta, _clean_name(product.get("name"))


#: Data units from this size of base64 text on are released from the answer once decoded.
RELEASE_SIZE = 1 << 20


def _decode_data_unit(unit, index, what, *, release=False):
    where = f"{what}, data unit {index}"
    if not isinstance(unit, dict):
        raise ProtocolError(f"{where} is not an object")
    hdu_type = unit.get("hdu_type")
    if hdu_type is not None and hdu_type not in _HDU_CLASSES:
        raise ProtocolError(f"{where} has the unknown hdu_type {_short(hdu_type, 40)}")
    binarys = unit.get("binarys")
    data = None
    if binarys is not None:
        # The decoded pickle is freed as soon as it is unpickled; the text, if released, before.
        size = len(binarys) if type(binarys) is Base64Data else \
            len(binarys) // 4 * 3 if isinstance(binarys, (str, bytes)) else 0
        pickled = _b64decode(binarys, urlsafe=False, what=f"{where}: binarys")
        if release and size >= RELEASE_SIZE:
            unit["binarys"] = None
        del binarys
        shadow = _load_shadow(pickled)
        del pickled  # only the stand-ins are needed to build the data
        data = _materialize(shadow, size)
        del shadow
        if not isinstance(data, np.ndarray):
            raise ProtocolError(f"{where}: pickled data is {type(data).__name__}, not an array")
    elif unit.get("data") is not None:
        raise ProtocolError(f"{where}: the non-pickle data encoding is not supported")
    tabular = isinstance(data, np.ndarray) and data.dtype.names is not None
    if hdu_type is None:
        hdu_type = ("primary" if index == 0 else "image") if not tabular else "bintable"
    if tabular != (hdu_type in ("bintable", "table")) and data is not None:
        raise ProtocolError(f"{where}: {hdu_type} unit with {'table' if tabular else 'image'} data")
    if hdu_type in ("bintable", "table") and data is not None:
        if data.ndim != 1:
            raise ProtocolError(f"{where}: table data is not one-dimensional")
        if hdu_type == "table" and not isinstance(data, fits.FITS_rec):
            data = fits.TableHDU.from_columns(data).data
    header, dropped = _header_from_dict(unit.get("header"), where)
    column_cards = header.copy()
    if dropped:
        warnings.warn(f"{where}: dropped header cards that are not valid FITS: "
                      f"{_short(', '.join(map(str, dropped)), 120)}", AstropyUserWarning, stacklevel=4)
    hdu = _HDU_CLASSES[hdu_type](data=data, header=header)
    name = unit.get("name")
    # The unit's name is the extension name the server means: it renames OSA's
    # ISGR-ARF.-RSP, ISGR-RMF.-RSP and ISGR-EBDS-MOD to the SPECRESP,
    # SPECRESP MATRIX and EBOUNDS that XSPEC looks for.
    if hdu_type != "primary" and isinstance(name, str) and name.strip():
        hdu.name = name.strip()
    if hdu_type in ("bintable", "table") and data is not None:
        if not isinstance(data, fits.FITS_rec):
            # astropy drops the column keywords of the header for plain arrays:
            # keep the units of the columns the header describes.
            for number, column in enumerate(hdu.columns, 1):
                unit_text = column_cards.get(f"TUNIT{number}")
                if (column.unit is None and isinstance(unit_text, str)
                        and column_cards.get(f"TTYPE{number}") == column.name):
                    hdu.columns.change_unit(column.name, unit_text)
        units = unit.get("units_dict")
        if units is not None:
            if not isinstance(units, dict):
                raise ProtocolError(f"{where}: units_dict is not an object")
            unknown = [key for key in units if key not in hdu.columns.names]
            if unknown:
                warnings.warn(f"{where}: units_dict names unknown columns {_short(unknown, 120)}",
                              AstropyUserWarning, stacklevel=4)
            for key, value in units.items():
                if key in hdu.columns.names and value is not None:
                    hdu.columns.change_unit(key, str(value))
    return hdu


def _header_from_dict(header, what):
    """A FITS header from the dispatcher's flat card dictionary, without structural cards.

    Checksums, blank, ``COMMENT`` and ``HISTORY`` cards are kept (the dictionary
    holds one of each: the last).
    """
    result = fits.Header()
    if header is None:
        return result, []
    if not isinstance(header, dict):
        raise ProtocolError(f"{what}: header is not an object")
    dropped = []
    for key, value in header.items():
        if key == "" or (isinstance(key, str) and not key.strip()):
            # a blank card (the dictionary holds the last one of the header)
            try:
                result.append(fits.Card("", "" if value is None else str(value)), end=True)
            except Exception:
                dropped.append(repr(key))
            continue
        keyword = key.strip().upper() if isinstance(key, str) else ""
        if not keyword or keyword in _STRUCTURAL or _NAXIS_RE.match(keyword):
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        try:
            if keyword in ("COMMENT", "HISTORY"):
                card = fits.Card(keyword, "" if value is None else str(value))
            elif _KEYWORD_RE.match(keyword):
                card = fits.Card(keyword, value)
            else:
                card = fits.Card(f"HIERARCH {key.strip()}", value)
            card.verify("exception")
            result.append(card, end=True)
        except Exception:
            dropped.append(key)
    return result, dropped
