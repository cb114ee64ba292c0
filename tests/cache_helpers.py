"""Keys and tokens shared by the unit tests of `astroquery_mmoda.cache` and `astroquery_mmoda.journal`."""
import base64
import secrets
import time

import jwt

from astroquery_mmoda.cache import cache_key
from astroquery_mmoda.json_decoding import Base64Data

URL = "https://dispatcher.example.org/mmoda/dispatch-data"


def mint_token(sub="alice@example.org"):
    claims = {"sub": sub, "email": sub, "roles": "general", "exp": int(time.time()) + 600}
    return jwt.encode(claims, secrets.token_hex(32), algorithm="HS256")


def key_of(params=None, **kwargs):
    arguments = dict(url=URL, instrument="isgri", product="isgri_lc", query_type="Real",
                     params={"RA": 83.63, "DEC": 22.01, "T1": "2020-01-01T00:00:00"} if params is None
                     else params, user="alice@example.org")
    arguments.update(kwargs)
    return cache_key(**arguments)


def as_sent(value):
    """A decoded answer with its large base64 data as the text they were (see Base64Data)."""
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_sent(item) for item in value]
    return base64.b64encode(value.data).decode() if type(value) is Base64Data else value
