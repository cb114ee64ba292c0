"""Decoding of MMODA data products into astropy objects, without trusting the server.

The dispatcher's ``products`` dictionary mixes JSON, base64 and Python pickles
(see :func:`decode_products`).  Everything here is decoded with plain `json`,
strict base64 and `safe_loads`, an allow-list unpickler that never runs code
from the data: the allowed numpy and astropy globals are replaced by inert
stand-ins while unpickling, and the result is rebuilt afterwards with public
numpy and astropy constructors from validated pieces.

The package reads bottom-up: ``unpickler`` (the allow-list and its stand-ins),
``fits_rec`` and ``safe_pickle`` (rebuilding arrays and FITS tables),
``encoding`` (base64, JSON, names), ``fits`` (data units and headers),
``tables`` (catalogs, tables, binaries, pictures, text), ``collection``
(`ProductSet` and its files) and ``decode`` (`decode_products`).
"""
from .collection import ProductSet
from .decode import decode_products
from .safe_pickle import ALLOWED_GLOBALS, safe_loads
from .tables import NamedBytes, catalog_from_dict, catalog_to_selected_catalog

__all__ = ["ProductSet", "NamedBytes", "decode_products", "safe_loads", "catalog_from_dict",
           "catalog_to_selected_catalog", "ALLOWED_GLOBALS"]
