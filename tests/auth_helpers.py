"""Tokens for the unit tests of `astroquery_mmoda.tokens` and `astroquery_mmoda.auth`."""
import secrets
import time

import jwt

# Made for this test run only: the tokens below are signed with it.
SECRET = secrets.token_urlsafe(48)


def mint(sub="alice@example.org", *, hours=24.0, roles="general", **claims):
    now = time.time()
    payload = {"sub": sub, "email": sub, "name": sub.split("@")[0].title(), "roles": roles,
               "exp": int(now + hours * 3600), "iat": int(now), "iss": "drupal", "aud": "dispatcher"}
    payload.update(claims)
    return jwt.encode(payload, SECRET, algorithm="HS256")


def signature_windows(token, size=8):
    signature = token.rsplit(".", 1)[1]
    return {signature[i:i + size] for i in range(len(signature) - size + 1)}
