"""Shared pieces of the FITS writers: headers, seeds, table HDUs, grouping tables."""
import zlib
from pathlib import Path

import numpy as np

from .model import IJD_MJDREF


# -- FITS generators ----------------------------------------------------------------

_ISGRI = {"instrume": "IBIS", "detnam": "ISGRI"}
_JEMX = {"instrume": "JMX2", "detnam": "JMX2"}


def _seed(*parts):
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def _base_keys(observation):
    names = _ISGRI if observation.instrument == "isgri" else _JEMX
    return {"TELESCOP": "INTEGRAL", "INSTRUME": names["instrume"], "DETNAM": names["detnam"],
            "ORIGIN": "synthetic", "CREATOR": "astroquery_mmoda test sky"}


def _time_keys(observation, unit="d"):
    return {"DATE-OBS": observation.start, "DATE-END": observation.end,
            "TSTART": observation.tstart, "TSTOP": observation.tstop,
            "TELAPSE": observation.telapse, "ONTIME": observation.ontime,
            "MJDREF": IJD_MJDREF, "TIMESYS": "TT", "TIMEREF": "LOCAL", "TIMEUNIT": unit}


def _source_keys(source):
    return {"NAME": source.name, "SOURCEID": "J" + source.name.replace(" ", ""),
            "RA_OBJ": source.ra, "DEC_OBJ": source.dec, "RADECSYS": "FK5", "EQUINOX": 2000.0}


def _table_hdu(name, columns, keys=None):
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([fits.Column(**c) for c in columns], name=name)
    for key, value in (keys or {}).items():
        hdu.header[key] = value
    return hdu


def _write(path, hdus):
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU()] + list(hdus)).writeto(path, overwrite=True)
    return Path(path)


def _grouping_hdu(rows, observation, *, member_type, extra_columns=(), keys=None):
    n = len(rows)
    columns = [dict(name="MEMBER_XTENSION", format="8A", array=[member_type] * n),
               dict(name="MEMBER_NAME", format="32A", array=[r[0] for r in rows]),
               dict(name="MEMBER_VERSION", format="1J", array=np.ones(n, np.int32)),
               dict(name="MEMBER_POSITION", format="1J", array=np.arange(2, n + 2, dtype=np.int32))]
    columns += list(extra_columns)
    grouping_keys = {"BASETYPE": "DAL_GROUP", "TELESCOP": "INTEGRAL",
                     "INSTRUME": _base_keys(observation)["INSTRUME"]}
    grouping_keys.update(keys or {})
    return _table_hdu("GROUPING", columns, grouping_keys)
