"""Hostile servers and networks on loopback: every wait and read is bounded, the token stays home."""
import gzip
import json
import logging
import secrets
import socket
import time

import jwt
import pytest

from astroquery_mmoda import conf
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import (DispatcherUnavailable, InvalidQueryError, LoginError,
                                         MmodaServiceError, ProtocolError, TimeoutError)
from tests.hostile_server import hostile_servers, reply

SUBMITTED = {"query_status": "submitted", "exit_status": {"status": 0},
             "job_monitor": {"job_id": "0123456789abcdef", "session_id": "ABCDEFGHIJKLMNOP"}}


@pytest.fixture
def hostile():
    yield from hostile_servers()


def make_token():
    return jwt.encode({"sub": "alice@example.org", "exp": int(time.time()) + 3600},
                      secrets.token_hex(32), algorithm="HS256")


@pytest.fixture(autouse=True)
def bounded():
    with conf.set_temp("max_retries", 0), conf.set_temp("timeout", 20.0), \
            conf.set_temp("poll_interval", 0.05), conf.set_temp("poll_max", 0.1):
        yield


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wire(url):
    return MmodaClass(server=url)._dispatcher


# -- connection failures are named, quietly ------------------------------------------------

def test_connection_refused_is_named_not_a_timeout():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger().addHandler(handler)
    try:
        with conf.set_temp("max_retries", 2):
            started = time.monotonic()
            with pytest.raises(DispatcherUnavailable) as error:
                wire(f"http://127.0.0.1:{closed_port()}").json_request("api/instr-list", {})
    finally:
        logging.getLogger().removeHandler(handler)
    assert "cannot connect to the MMODA dispatcher at http://127.0.0.1:" in str(error.value)
    assert "(connection refused, after 2 retries)" in str(error.value)
    assert "timed out" not in str(error.value) and time.monotonic() - started < 10
    assert not [r for r in records if r.name.startswith("urllib3") and r.levelno >= logging.WARNING]


def test_unknown_host_is_named():
    with pytest.raises(DispatcherUnavailable, match=r"\(name not resolved, after 0 retries\)"):
        wire("http://no-such-dispatcher.invalid").json_request("api/instr-list", {})


# -- every wait is bounded ---------------------------------------------------------------

def trickle(sock, *args):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(200):
        sock.sendall(b" ")
        time.sleep(0.1)


def test_a_trickled_answer_ends_at_the_request_deadline(hostile):
    server = hostile(trickle)
    started = time.monotonic()
    with conf.set_temp("timeout", 1.0):
        with pytest.raises(DispatcherUnavailable, match="did not arrive completely in time"):
            wire(server.url).json_request("api/instr-list", {})
    assert time.monotonic() - started < 3


def test_a_trickled_poll_ends_at_the_job_deadline(hostile, tmp_path):
    def answer(sock, line, headers, body):
        if "query_status=new" in line:
            sock.sendall(reply(json.dumps(SUBMITTED).encode()))
        else:
            trickle(sock)

    server = hostile(answer)
    client = MmodaClass(server=server.url)
    client.cache_location = tmp_path
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still submitted after 1.5 s") as error:
        client.get_product("empty", "numerical", query_type="Dummy", validate=False, cache=False,
                           timeout=1.5)
    assert time.monotonic() - started < 4
    assert error.value.job_id == "0123456789abcdef"


def test_retry_after_is_capped(hostile):
    server = hostile(lambda sock, *args: sock.sendall(reply(b"busy", "503 Service Unavailable",
                                                            ["Retry-After: 3600"])))
    started = time.monotonic()
    with conf.set_temp("max_retries", 2), conf.set_temp("max_retry_after", 0.2):
        with pytest.raises(DispatcherUnavailable, match="HTTP 503"):
            wire(server.url).json_request("api/instr-list", {})
    assert time.monotonic() - started < 5 and len(server.seen) == 3


# -- every read is bounded -----------------------------------------------------------------

def test_a_gzip_bomb_is_a_protocol_error(hostile):
    bomb = gzip.compress(b"[" + b" " * (64 << 20) + b"]", compresslevel=9)
    assert len(bomb) < 200_000
    server = hostile(lambda sock, *args: sock.sendall(reply(bomb, headers=["Content-Encoding: gzip"])))
    with conf.set_temp("max_answer_size", 1.0):
        with pytest.raises(ProtocolError, match="larger than conf.max_answer_size"):
            wire(server.url).json_request("api/instr-list", {})


@pytest.mark.parametrize("status", ["302 Found", "400 Bad Request", "403 Forbidden",
                                    "500 Internal Server Error", "503 Service Unavailable"])
@pytest.mark.parametrize("path", ["run_analysis", "api/meta-data", "api/instr-list"])
def test_deeply_nested_json_in_an_error_answer_is_our_error(hostile, status, path):
    nested = b"[" * 200_000 + b"]" * 200_000
    server = hostile(lambda sock, *args: sock.sendall(reply(nested, status=status)))
    client = wire(server.url)
    with pytest.raises((MmodaServiceError, InvalidQueryError, LoginError)) as raised:
        if path == "run_analysis":
            client.run_analysis({"instrument": "empty", "query_status": "new"}, token=make_token())
        else:
            client.json_request(path, {"instrument": "empty"})
    assert len(str(raised.value)) < 2000


def test_an_endless_chunked_answer_is_a_protocol_error(hostile):
    def endless(sock, *args):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        while True:
            sock.sendall(chunk)

    server = hostile(endless)
    with conf.set_temp("max_answer_size", 2.0):
        with pytest.raises(ProtocolError, match="larger than conf.max_answer_size"):
            wire(server.url).json_request("api/instr-list", {})


# -- the token goes to the dispatcher only ---------------------------------------------------

def test_a_request_with_the_token_follows_no_redirect_elsewhere(hostile):
    elsewhere = hostile(lambda sock, *args: sock.sendall(reply(b'["stolen"]')))
    server = hostile(lambda sock, *args: sock.sendall(reply(
        b"", "307 Temporary Redirect", [f"Location: {elsewhere.url}/api/instr-list"])))
    with pytest.raises(MmodaServiceError, match="moved to"):
        wire(server.url).json_request("api/instr-list", {"instrument": "mock"}, token=make_token())
    assert elsewhere.seen == []


def test_a_redirect_within_the_dispatcher_is_followed(hostile):
    def answer(sock, line, headers, body):
        if line.startswith("GET /api/instr-list"):
            sock.sendall(reply(b"", "308 Permanent Redirect", ["Location: /instr-list?instrument=mock"]))
        else:
            sock.sendall(reply(b'["isgri"]'))

    server = hostile(answer)
    token = make_token()
    assert wire(server.url).json_request("api/instr-list", {"instrument": "mock"}, token=token) == ["isgri"]
    assert [r["line"].split("?")[0] for r in server.seen] == ["GET /api/instr-list", "GET /instr-list"]
    assert all(f"token={token}" in r["line"] for r in server.seen)


def test_no_environment_proxy_for_plain_http(hostile, monkeypatch):
    proxy = hostile(lambda sock, *args: sock.sendall(reply(b'["from the proxy"]')))
    server = hostile(lambda sock, *args: sock.sendall(reply(b'["isgri"]')))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    assert wire(server.url).json_request("api/instr-list", {}, token=make_token()) == ["isgri"]
    assert proxy.seen == [] and len(server.seen) == 1


@pytest.mark.parametrize("template", ["http://evil.invalid\\@127.0.0.1:{port}",
                                      "http://evil.invalid@127.0.0.1:{port}",
                                      "http://127.0.0.1:{port}\t"])
def test_server_urls_that_parsers_disagree_on_are_refused(hostile, template):
    server = hostile()
    client = wire(template.format(port=server.server_address[1]))
    with pytest.raises(InvalidQueryError, match="dispatcher URL"):
        client.json_request("api/instr-list", {})
    assert server.seen == []


def test_raised_errors_hold_no_token_in_context_or_frames():
    token = make_token()
    with pytest.raises(DispatcherUnavailable) as error:
        wire(f"http://127.0.0.1:{closed_port()}").run_analysis({"instrument": "empty"}, token=token)
    exc = error.value
    assert exc.__context__ is None and exc.__cause__ is None
    frame_texts = []
    tb = exc.__traceback__.tb_next  # frames below this test's own
    while tb is not None:
        frame_texts += [repr(value) for value in tb.tb_frame.f_locals.values()]
        tb = tb.tb_next
    assert frame_texts and not [text for text in frame_texts if token in text]
