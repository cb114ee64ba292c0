"""The token never leaks: not in logs (DEBUG everywhere), output, warnings, errors, caches or files.

One full session against the local dispatcher is recorded, then everything it
produced is searched for the token and for its signature alone.
"""
import logging
import secrets
import traceback
import warnings
from pathlib import Path

import jwt
import pytest

from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import (InvalidQueryError, JobFailedError, LoginError,
                                         TokenExpiredError)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cache_on")]

LOGGERS = ("", "astroquery", "astroquery_mmoda", "urllib3", "urllib3.connectionpool", "requests")


def unique(prefix):
    return f"{prefix}-{secrets.token_hex(8)}"


@pytest.fixture
def debug_everywhere(caplog):
    """Every logger at DEBUG, every record into caplog (astroquery's logger does not propagate)."""
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        if name and caplog.handler not in logger.handlers:
            logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for logger, level in saved:
        logger.setLevel(level)
        if logger.name != "root" and caplog.handler in logger.handlers:
            logger.removeHandler(caplog.handler)


def exception_text(exc):
    """Everything an exception shows: str, repr, attributes and the formatted traceback."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for name in ("message", "debug_message", "job_id"):
        parts.append(str(getattr(exc, name, "")))
    return "\n".join(parts)


def files_text(folder):
    texts = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            texts.append(f"{path.name}\n{path.read_bytes().decode('latin-1')}")
    return "\n".join(texts)


def test_no_token_anywhere(local_dispatcher, tmp_path, debug_everywhere, capfd):
    token = local_dispatcher.mint_token("general", sub="leak-check@example.org")
    signature = token.rsplit(".", 1)[1]
    payload = token.split(".")[1]
    seen = []          # reprs, results, messages
    errors = []        # exceptions raised on purpose

    client = MmodaClass(server=local_dispatcher.url)
    client.cache_location = tmp_path / "cache"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        info = client.login(token)
        seen += [repr(info), str(info), repr(client), repr(client._tokens), str(info.claims)]

        # products, stored in and then served from the cache
        products = client.get_product("empty", "numerical", query_type="Dummy", p=5)
        again = client.get_product("empty", "numerical", query_type="Dummy", p=5)
        echo = client.get_product("empty", "echo", src_name=unique("leak"))
        for result in (products, again, echo):
            seen += [repr(result), str(result.analysis_parameters), str(dict(result.meta))]
        seen.append(str(dict(echo)))
        written = products.write(tmp_path / "out") + echo.write(tmp_path / "out")
        assert written

        # an asynchronous job, with back-end reports, driven to done
        local_dispatcher.set_backend_status(None)
        try:
            job = client.submit("empty-async", "dummy", src_name=unique("leak"))
            seen += [repr(job), str(job.reports), str(client.list_jobs())]
            local_dispatcher.call_back(job.job_id, job.session_id, message="half way")
            job.update()
            seen += [repr(job), str(job.reports)]
            local_dispatcher.finish_job(job.job_id, job.session_id)
            job.wait(timeout=60)
            result = job.result()
            seen += [repr(job), str(job.reports), repr(result), str(result.analysis_parameters)]
        finally:
            local_dispatcher.set_backend_status(None)
        group = client.submit_many([("empty", "numerical", {"query_type": "Dummy", "p": 6})])
        group.wait(timeout=60, show_progress=False)
        seen += [repr(group), repr(group.results())]

        # errors: roles (403), a failed job, a value the server refuses (400), a bad signature
        for call, kind in (
                (lambda: client.get_product("empty", "numerical", query_type="Dummy", p=60),
                 LoginError),
                (lambda: client.get_product("empty", "failing", query_type="Dummy"),
                 JobFailedError),
                (lambda: client.get_product("empty", "numerical", query_type="Dummy", p=900),
                 InvalidQueryError)):
            with pytest.raises(kind) as raised:
                call()
            errors.append(raised.value)
        forged = jwt.encode(dict(jwt.decode(token, options={"verify_signature": False})),
                            "not-the-dispatcher-secret-but-long-enough", algorithm="HS256")
        other = MmodaClass(server=local_dispatcher.url)
        other.cache_location = tmp_path / "cache"
        other.login(forged)
        with pytest.raises(LoginError) as raised:
            other.get_product("empty", "numerical", query_type="Dummy", p=7)
        errors.append(raised.value)
        expired = local_dispatcher.mint_token("general", expires_in=-10)
        with pytest.raises(TokenExpiredError) as raised:
            other.login(expired)
        errors.append(raised.value)
        seen += [repr(other), repr(other._tokens)]

    out, err = capfd.readouterr()  # Python-level and file-descriptor-level output
    records = debug_everywhere.records
    assert any(r.name.startswith("urllib3") for r in records), "urllib3 did not log at DEBUG"
    assert any("run_analysis" in r.getMessage() for r in records)
    haystack = {
        "log records": "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in records),
        "log text": debug_everywhere.text,
        "stdout/stderr": "\n".join((out, err)),
        "warnings": "\n".join(f"{w.category.__name__}: {w.message}" for w in caught),
        "exceptions": "\n".join(exception_text(exc) for exc in errors),
        "reprs and results": "\n".join(seen),
        "cache folder": files_text(tmp_path / "cache"),
        "written files": files_text(tmp_path / "out"),
    }
    assert haystack["cache folder"] and haystack["written files"] and haystack["warnings"]
    for where, text in haystack.items():
        assert token not in text, f"the token leaked into the {where}"
        assert signature not in text, f"the token's signature leaked into the {where}"
        assert payload not in text, f"the token's claims (base64) leaked into the {where}"
        assert forged.rsplit(".", 1)[1] not in text, f"the forged token leaked into the {where}"
        assert expired.rsplit(".", 1)[1] not in text, f"the expired token leaked into the {where}"
