"""Unit tests of the result cache and its keys (`astroquery_mmoda.cache`)."""
import base64
import json
import logging
import math
import multiprocessing
import os
import random
import threading
import time
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from astroquery import cache_conf, log
from astroquery.exceptions import CorruptDataWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from astroquery_mmoda.cache import AnswerSpool, JobJournal, ResultCache, is_finished
from astroquery_mmoda.json_decoding import Base64Data
from tests.cache_helpers import URL, as_sent, key_of, mint_token


def envelope(token=None, *, query_status="done", status=0, payload="x"):
    token = token or mint_token()
    return {
        "query_status": query_status,
        "job_status": query_status,
        "session_id": "H4YLHYBEYJ2JHHS6",
        "exit_status": {"status": status, "message": "", "error_message": "", "comment": ""},
        "job_monitor": {
            "job_id": "1a2b3c4d5e6f7a8b", "session_id": "H4YLHYBEYJ2JHHS6", "status": query_status,
            "full_report_dict_list": [{"node": "main", "message": "main done", "token": token},
                                      {"node": "x", "message": f"called with token={token}"}],
        },
        "products": {
            "analysis_parameters": {"RA": 83.63, "token": token, "p": float("nan"),
                                    "nested": {"token": token, "limits": [float("inf"), -1.5]}},
            "api_code": f"disp.get_product(RA=83.63,\n    token='{token}')\n",
            "numpy_data_product_list": [{"name": "lc", "binarys": payload}],
            "job_id": "1a2b3c4d5e6f7a8b",
        },
    }


def all_bytes_under(path):
    for folder, _, names in os.walk(path):
        for name in names:
            with open(os.path.join(folder, name), "rb") as stream:
                yield os.path.join(folder, name), stream.read()


def assert_no_token(path, token):
    header, claims, signature = token.encode().split(b".")
    files = list(all_bytes_under(path))
    assert files
    for name, data in files:
        assert token.encode() not in data, name
        assert signature not in data, name
        assert claims not in data, name


# ---------------------------------------------------------------------------
# Keys

def test_key_is_hex_and_stable():
    key = key_of()
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == key_of()


def test_key_ignores_parameter_order():
    assert key_of({"a": 1, "b": "x", "c": [1, 2]}) == key_of({"c": [1, 2], "b": "x", "a": 1})
    assert key_of({"d": {"x": 1, "y": 2}}) == key_of({"d": {"y": 2, "x": 1}})


def test_key_normalises_numbers_but_not_strings():
    assert key_of({"p": 10}) == key_of({"p": 10.0}) == key_of({"p": np.int64(10)}) \
        == key_of({"p": np.float64(10.0)})
    assert key_of({"p": 10}) != key_of({"p": "10"})
    assert key_of({"p": 10}) != key_of({"p": 10.5})
    assert key_of({"p": 0.1}) == key_of({"p": np.float64(0.1)})
    assert key_of({"p": True}) != key_of({"p": 1})
    assert key_of({"p": [1, 2.0]}) == key_of({"p": (1.0, 2)})
    assert key_of({"p": [1, 2]}) != key_of({"p": [2, 1]})
    assert key_of({"p": float("nan")}) == key_of({"p": float("nan")})


def test_key_keeps_none_values():
    # None is sent as the explicit-empty marker: the server answers it differently (even HTTP 400).
    assert key_of({"a": 1, "selected_catalog": None}) != key_of({"a": 1})
    assert key_of({"a": 1, "p": None}) == key_of({"p": None, "a": 1})


def test_key_ignores_token_and_job_bookkeeping():
    base = {"RA": 1.0}
    noisy = dict(base, token=mint_token(), session_id="H4YLHYBEYJ2JHHS6", job_id="1a2b3c4d5e6f7a8b",
                 query_status="submitted", api="True", oda_api_version="1.3.5", dry_run=False,
                 off_line=False, async_dispatcher=True)
    assert key_of(base) == key_of(noisy)
    assert key_of(dict(base, token=mint_token())) == key_of(dict(base, token=mint_token()))


def test_key_separates_users():
    assert key_of(user="alice@example.org") != key_of(user="bob@example.org")
    assert key_of(user=None) != key_of(user="alice@example.org")
    assert key_of(user=None) == key_of(user="")
    assert key_of(user=None) != key_of(user="anonymous")
    assert key_of(user={"sub": "alice@example.org"}) == key_of(user="alice@example.org")


def test_key_holds_the_roles_of_the_token():
    general = {"sub": "alice@example.org", "roles": "general"}
    assert key_of(user=general) != key_of(user={"sub": "alice@example.org"})
    assert key_of(user=general) == key_of(user={"sub": "alice@example.org", "roles": ["general"]})
    assert key_of(user={"sub": "a", "roles": "x, general"}) == key_of(user={"sub": "a", "roles": "general,x"})


def test_key_identity_is_sub_else_email():
    assert key_of(user={"email": "alice@example.org"}) == key_of(user={"sub": "alice@example.org"})
    assert key_of(user={"email": "alice@example.org"}) != key_of(user=None)
    assert key_of(user={"sub": "bob@example.org", "email": "alice@example.org"}) == \
        key_of(user="bob@example.org")


def test_tokens_without_identity_share_nothing():
    first, second = {"roles": "general", "exp": 1}, {"roles": "general", "exp": 2}
    assert key_of(user=first) != key_of(user=second)
    assert key_of(user=first) not in (key_of(user=None), key_of(user="None"))
    assert key_of(user=first) == key_of(user=dict(first))


def test_key_accepts_a_token_info():
    import jwt
    from astroquery_mmoda.tokens import TokenInfo
    token = jwt.encode({"sub": "alice@example.org", "roles": "general", "exp": 4102444800}, "k" * 32,
                       algorithm="HS256")
    info = TokenInfo.from_token(token, source="argument")
    assert key_of(user=info) == key_of(user={"sub": "alice@example.org", "roles": "general"})


def test_descriptions_are_kept_per_user_and_roles(tmp_path):
    from astroquery_mmoda.cache import DescriptionCache
    descriptions = DescriptionCache(tmp_path)
    role = {"sub": "alice@example.org", "roles": "general,integral-private"}
    assert descriptions.put(URL, "isgri", [["with role"]], user=role)
    assert descriptions.get(URL, "isgri") is None
    assert descriptions.get(URL, "isgri", user={"sub": "alice@example.org"}) is None
    assert descriptions.get(URL, "isgri", user={"sub": "bob@example.org", "roles": role["roles"]}) is None
    assert descriptions.get(URL, "isgri", user=role) == [["with role"]]
    assert descriptions.put(URL, "isgri", [["anonymous"]])
    assert descriptions.get(URL, "isgri") == [["anonymous"]]


def test_key_ignores_url_trailing_slash_and_host_case():
    assert key_of(url=URL) == key_of(url=URL + "/") == key_of(url=URL.replace("dispatcher", "DISPATCHER"))
    assert key_of(url=URL) != key_of(url="https://other.example.org/mmoda/dispatch-data")


def test_key_is_sensitive_to_what_is_asked():
    keys = {key_of(), key_of(instrument="jemx"), key_of(product="isgri_image"), key_of(query_type="Dummy"),
            key_of(params={"RA": 83.64, "DEC": 22.01, "T1": "2020-01-01T00:00:00"})}
    assert len(keys) == 5


_values = st.one_of(st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=False), st.text(max_size=8),
                    st.booleans(), st.lists(st.integers(), max_size=3))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=8), st.text(min_size=1))
def test_key_property_order_and_secrets(params, token):
    plain = {name: value for name, value in params.items() if name not in
             {"token", "session_id", "job_id"}}
    assert key_of(plain) == key_of(dict(reversed(list(plain.items())), token=token, session_id=token,
                                        job_id=token))


# ---------------------------------------------------------------------------
# Result cache: what is stored

@pytest.mark.parametrize("answer", [
    envelope(query_status="failed", status=1),
    envelope(query_status="submitted"),
    envelope(query_status="progress"),
    envelope(query_status="ready"),
    envelope(query_status="done", status=1),
    envelope(query_status="done", status="0"),
    {"query_status": "done"},
    {"query_status": "done", "exit_status": {}},
    None,
    [],
])
def test_put_refuses_unfinished_or_failed(tmp_path, answer):
    cache = ResultCache(tmp_path)
    assert cache.put(key_of(), answer) is False
    assert not any(tmp_path.iterdir())
    assert cache.get(key_of()) is None


def test_is_finished():
    assert is_finished(envelope())
    assert not is_finished(envelope(status=1))
    assert not is_finished({"query_status": "done", "exit_status": {"status": False}})


def test_put_get_round_trip_without_tokens(tmp_path):
    token = mint_token()
    cache = ResultCache(tmp_path)
    answer = envelope(token)
    assert cache.put(key_of(), answer) is True
    assert cache.keys() == [key_of()] and len(cache) == 1
    back = cache.get(key_of())
    assert "token" not in back["products"]["analysis_parameters"]
    assert "token" not in back["products"]["analysis_parameters"]["nested"]
    assert token not in back["products"]["api_code"] and "RA=83.63" in back["products"]["api_code"]
    assert "token" not in back["job_monitor"]["full_report_dict_list"][0]
    assert token not in json.dumps(back)
    assert back["products"]["numpy_data_product_list"] == answer["products"]["numpy_data_product_list"]
    assert back["job_monitor"]["job_id"] == "1a2b3c4d5e6f7a8b"
    # The caller's envelope is left alone.
    assert answer["products"]["analysis_parameters"]["token"] == token
    assert_no_token(tmp_path, token)


def test_nan_and_infinity_survive(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(key_of(), envelope())
    parameters = cache.get(key_of())["products"]["analysis_parameters"]
    assert math.isnan(parameters["p"])
    assert parameters["nested"]["limits"] == [float("inf"), -1.5]


def test_tokens_never_written_anywhere(tmp_path):
    token = mint_token("carol@example.org")
    key = key_of(params={"RA": 1.0, "token": token}, user="carol@example.org")
    assert token[-20:] not in key
    ResultCache(tmp_path).put(key, envelope(token))
    journal = JobJournal(tmp_path)
    journal.record(key, url=f"{URL}?token={token}", instrument="isgri", product="isgri_lc",
                   job_id="1a2b3c4d5e6f7a8b", session_id="H4YLHYBEYJ2JHHS6", status="submitted",
                   params={"RA": 1.0, "token": token, "note": f"Bearer {token}", "deep": [{"token": token}]})
    journal.update(key, "progress")
    assert_no_token(tmp_path, token)


def test_no_token_or_parameters_in_debug_log(tmp_path):
    token = mint_token()
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        cache = ResultCache(tmp_path)
        key = key_of(params={"RA": 12.345678, "token": token})
        cache.get(key)
        cache.put(key, envelope(token))
        cache.get(key)
        journal = JobJournal(tmp_path)
        journal.record(key, url=URL, instrument="isgri", product="isgri_lc", job_id="1a2b3c4d5e6f7a8b",
                       session_id="H4YLHYBEYJ2JHHS6", status="submitted", params={"RA": 12.345678,
                                                                                  "token": token})
        journal.lookup(key)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    text = "\n".join(messages)
    assert "miss" in text and "hit" in text and "stored" in text and "recorded" in text
    assert token not in text and "12.345678" not in text


# ---------------------------------------------------------------------------
# Result cache: reading back

def test_corrupt_entry_warns_and_is_removed(tmp_path):
    cache = ResultCache(tmp_path)
    key = key_of()
    cache.put(key, envelope())
    path = cache.directory / f"{key}.json"
    data = path.read_bytes()
    for broken in (data[:len(data) // 2], b"\x00\xff garbage", b"[]",
                   json.dumps({"format": "astroquery_mmoda-result", "version": 1, "key": "0" * 64,
                               "envelope": envelope()}).encode()):
        path.write_bytes(broken)
        with pytest.warns(CorruptDataWarning, match="removed"):
            assert cache.get(key) is None
        assert not path.exists()
    assert cache.get(key) is None


def test_unreadable_entry_is_a_miss(tmp_path):
    cache = ResultCache(tmp_path)
    (cache.directory / f"{key_of()}.json").mkdir(parents=True)
    with pytest.warns(AstropyUserWarning, match="Cannot read"):
        assert cache.get(key_of()) is None


def test_missing_folder_is_an_empty_cache(tmp_path):
    cache = ResultCache(tmp_path / "not" / "there")
    assert cache.get(key_of()) is None
    assert cache.keys() == [] and len(cache) == 0 and cache.clear() == 0
    assert cache.remove(key_of()) is False
    assert not (tmp_path / "not").exists()


def test_unwritable_folder_warns_and_does_not_raise(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ResultCache(blocker)
    with pytest.warns(AstropyUserWarning, match="Cannot write"):
        assert cache.put(key_of(), envelope()) is False
    assert cache.get(key_of()) is None
    journal = JobJournal(blocker)
    with pytest.warns(AstropyUserWarning, match="Cannot write"):
        assert journal.record(key_of(), url=URL, instrument="isgri", product="isgri_lc",
                              job_id="1a2b3c4d5e6f7a8b", session_id="S", status="submitted") is False
    assert journal.lookup(key_of()) is None and journal.entries() == []


def test_invalid_keys_are_refused(tmp_path):
    for bad in ("../../etc/passwd", "ABCDEF0123456789", "", "0" * 8, None):
        with pytest.raises(ValueError):
            ResultCache(tmp_path).get(bad)
        with pytest.raises(ValueError):
            JobJournal(tmp_path).lookup(bad)


def test_expiry_follows_cache_timeout(tmp_path):
    cache = ResultCache(tmp_path)
    key = key_of()
    cache.put(key, envelope())
    path = cache.directory / f"{key}.json"
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    with cache_conf.set_temp("cache_timeout", 1800):
        assert cache.get(key) is None
    with cache_conf.set_temp("cache_timeout", 7200):
        assert cache.get(key) is not None
    with cache_conf.set_temp("cache_timeout", 0):
        assert cache.get(key) is None
    years_ago = time.time() - 10 * 365 * 86400
    os.utime(path, (years_ago, years_ago))
    for never in (None, -1):
        with cache_conf.set_temp("cache_timeout", never):
            assert cache.get(key) is not None
    # An expired entry is not deleted (a longer timeout may apply later) and is overwritten by put.
    assert path.exists()
    cache.put(key, envelope())
    with cache_conf.set_temp("cache_timeout", 1800):
        assert cache.get(key) is not None


def test_cache_active_false(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(key_of(), envelope())
    with cache_conf.set_temp("cache_active", False):
        assert cache.get(key_of()) is None
        assert cache.put(key_of(user="bob"), envelope()) is False
    assert cache.get(key_of()) is not None
    assert cache.get(key_of(user="bob")) is None


def test_clear_and_remove_only_touch_results(tmp_path):
    cache = ResultCache(tmp_path)
    journal = JobJournal(tmp_path)
    keys = [key_of(params={"i": i}) for i in range(3)]
    for key in keys:
        cache.put(key, envelope())
        journal.record(key, url=URL, instrument="isgri", product="isgri_lc", job_id=key[:16],
                       session_id="S", status="submitted")
    (tmp_path / "astroquery-response.pickle").write_bytes(b"foreign")
    (cache.directory / "notes.txt").write_text("mine")
    (cache.directory / f".{keys[0]}.json.abc.tmp").write_bytes(b"left over by a dead writer")
    assert cache.remove(keys[0]) is True and cache.remove(keys[0]) is False
    assert sorted(cache.keys()) == sorted(keys[1:])
    assert cache.clear() == 2
    assert cache.keys() == [] and len(cache) == 0
    assert sorted(os.listdir(cache.directory)) == ["notes.txt"]
    assert (tmp_path / "astroquery-response.pickle").exists()
    assert len(journal.entries()) == 3
    assert journal.clear() == 3 and journal.entries() == []


def test_large_envelope_round_trip(tmp_path):
    payload = random.Random(1).randbytes(37_500_000).hex()[:50_000_000]
    answer = envelope(payload=payload)
    cache = ResultCache(tmp_path)
    assert cache.put(key_of(), answer) is True
    back = cache.get(key_of())
    # a large base64 value comes back decoded (see json_decoding.Base64Data)
    binarys = back["products"]["numpy_data_product_list"][0]["binarys"]
    assert type(binarys) is Base64Data and binarys.data == base64.b64decode(payload)


# ---------------------------------------------------------------------------
# Concurrency

def _payload(writer, round_):
    # Sizes differ so that a mixed or partial file could not parse as a valid entry by chance.
    return f"{writer}:{round_}:" + "z" * (1000 * (1 + (writer * 7 + round_) % 50))


def _check_read(answer):
    if answer is None:
        return
    binarys = answer["products"]["numpy_data_product_list"][0]["binarys"]
    writer, round_, rest = binarys.split(":")
    assert binarys == _payload(int(writer), int(round_))


def test_concurrent_threads_never_read_a_partial_entry(tmp_path):
    cache = ResultCache(tmp_path)
    key = key_of()
    token = mint_token()
    errors = []
    done = threading.Event()

    def write(writer):
        try:
            for round_ in range(40):
                assert cache.put(key, envelope(token, payload=_payload(writer, round_)))
        except BaseException as error:  # collected: a thread cannot fail the test by itself
            errors.append(error)

    def read():
        try:
            while not done.is_set():
                _check_read(cache.get(key))
        except BaseException as error:
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(4)]
    writers = [threading.Thread(target=write, args=(index,)) for index in range(8)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()
    assert errors == []
    _check_read(cache.get(key))
    assert cache.keys() == [key]
    assert [name for name in os.listdir(cache.directory) if name.endswith(".tmp")] == []


def _process_writer(location, key, writer, rounds, token):
    cache = ResultCache(location)
    for round_ in range(rounds):
        if not cache.put(key, envelope(token, payload=_payload(writer, round_))):
            raise SystemExit(1)


def test_concurrent_processes_never_read_a_partial_entry(tmp_path):
    key = key_of()
    token = mint_token()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_process_writer, args=(str(tmp_path), key, index, 150, token))
               for index in range(2)]
    for process in writers:
        process.start()
    cache = ResultCache(tmp_path)
    reads = 0
    try:
        while any(process.is_alive() for process in writers):
            _check_read(cache.get(key))
            reads += 1
    finally:
        for process in writers:
            process.join(timeout=120)
    assert [process.exitcode for process in writers] == [0, 0]
    _check_read(cache.get(key))
    assert cache.get(key) is not None
    assert_no_token(tmp_path, token)


# -- hostile files in the cache folder ----------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("cache_class", [ResultCache, "descriptions"])
def test_entry_linked_to_a_device_is_dropped_not_read(tmp_path, cache_class):
    from astroquery_mmoda.cache import DescriptionCache
    if cache_class == "descriptions":
        cache = DescriptionCache(tmp_path)
        path = cache._path(URL, "isgri")
        read = lambda: cache.get(URL, "isgri")  # noqa: E731
    else:
        cache, key = ResultCache(tmp_path), key_of()
        path = cache.directory / f"{key}.json"
        read = lambda: cache.get(key)  # noqa: E731
    path.parent.mkdir(parents=True)
    os.symlink("/dev/zero", path)
    started = time.monotonic()
    with pytest.warns(CorruptDataWarning, match="not a regular file"):
        assert read() is None
    assert time.monotonic() - started < 5
    assert not os.path.lexists(path) and os.path.exists("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_entry_never_blocks(tmp_path):
    cache, key = ResultCache(tmp_path), key_of()
    cache.directory.mkdir(parents=True)
    os.mkfifo(cache.directory / f"{key}.json")
    with pytest.warns(CorruptDataWarning, match="not a regular file"):
        assert cache.get(key) is None
    journal = JobJournal(tmp_path)
    journal.directory.mkdir()
    os.mkfifo(journal.directory / f"{key}.json")
    with pytest.warns(AstropyUserWarning, match="not a regular file"):
        assert journal.lookup(key) is None


def test_entry_larger_than_the_limit_is_not_read(tmp_path):
    from astroquery_mmoda import conf
    cache, key = ResultCache(tmp_path), key_of()
    assert cache.put(key, envelope(payload="x" * 300_000))
    with conf.set_temp("max_answer_size", 0.1):  # MiB
        with pytest.warns(AstropyUserWarning, match="max_answer_size"):
            assert cache.get(key) is None
    assert cache.get(key)["products"]["numpy_data_product_list"][0]["binarys"] == "x" * 300_000


def test_put_never_writes_through_a_planted_link(tmp_path):
    cache, key = ResultCache(tmp_path), key_of()
    cache.directory.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, cache.directory / f"{key}.json")
    with pytest.warns(AstropyUserWarning, match="Cannot write"):
        assert cache.put(key, envelope()) is False
    assert victim.read_text() == "precious"


# ---------------------------------------------------------------------------
# Result cache: answers stored as they arrived (spooled)

def answer_body(payload="x"):
    data = envelope(payload=payload)
    data["job_monitor"]["full_report_dict_list"] = []
    data["products"] = {"numpy_data_product_list": [{"name": "lc", "binarys": payload}],
                        "analysis_parameters": {"RA": 83.63, "p": float("nan")}}
    return data, json.dumps(data).encode()


def spool_in_pieces(spool, body, size=65536):
    for start in range(0, len(body), size):
        spool.write(body[start:start + size])


@pytest.mark.parametrize("size", [10, 3 * 2 ** 20])
def test_a_spooled_answer_is_stored_as_it_arrived(tmp_path, size):
    cache, key = ResultCache(tmp_path), key_of()
    data, body = answer_body(payload="A" * size)
    spool = cache.spool(key)
    spool_in_pieces(spool, b"\n  " + body)
    spool.wait()
    # A large answer is on disk while it arrives (a temporary file), a small one in memory.
    temporary = [name for name in os.listdir(tmp_path / "results")] if size > 2 ** 20 else []
    assert len(temporary) == (1 if size > 2 ** 20 else 0)
    assert all(name.startswith(".") and name.endswith(".tmp") for name in temporary)
    assert cache.put(key, data, spool=spool)
    entry = (tmp_path / "results" / f"{key}.json").read_bytes()
    assert body in entry  # the server's own bytes: not decoded and encoded again
    stored = cache.get(key)
    assert as_sent(stored["products"]["numpy_data_product_list"][0]["binarys"]) == "A" * size
    assert math.isnan(stored["products"]["analysis_parameters"]["p"])
    assert os.listdir(tmp_path / "results") == [f"{key}.json"]


def test_a_spooled_answer_with_a_token_is_scrubbed_instead(tmp_path):
    cache, key, token = ResultCache(tmp_path), key_of(), mint_token()
    data, _ = answer_body(payload="B" * 2 ** 21)
    data["job_monitor"]["full_report_dict_list"] = [{"message": f"called with token={token}"}]
    spool = cache.spool(key)
    spool_in_pieces(spool, json.dumps(data).encode())
    assert cache.put(key, data, spool=spool)
    assert_no_token(tmp_path, token)
    stored = cache.get(key)
    assert stored["job_monitor"]["full_report_dict_list"] == [{"message": "called with token=<token>"}]
    assert as_sent(stored["products"]["numpy_data_product_list"][0]["binarys"]) == "B" * 2 ** 21
    assert os.listdir(tmp_path / "results") == [f"{key}.json"]


@pytest.mark.parametrize("body", [b"\xef\xbb\xbf{}", "{}".encode("utf-16"), b"[1]", b""])
def test_a_body_that_is_not_a_plain_json_object_is_written_anew(tmp_path, body):
    cache, key = ResultCache(tmp_path), key_of()
    data, _ = answer_body()
    spool = cache.spool(key)
    spool.write(body)
    assert not spool.usable
    assert cache.put(key, data, spool=spool)
    products = cache.get(key)["products"]
    assert products["numpy_data_product_list"] == data["products"]["numpy_data_product_list"]


def test_spools_of_unfinished_or_uncached_answers_leave_nothing(tmp_path):
    cache, key = ResultCache(tmp_path), key_of()
    data, body = answer_body(payload="C" * 2 ** 21)
    data["query_status"] = "submitted"
    spool = cache.spool(key)
    spool_in_pieces(spool, body)
    assert not cache.put(key, data, spool=spool)
    assert os.listdir(tmp_path / "results") == []
    with cache_conf.set_temp("cache_active", False):
        assert cache.spool(key) is None


def test_a_spool_that_cannot_write_warns_once_and_nothing_is_stored(tmp_path, monkeypatch):
    cache, key = ResultCache(tmp_path), key_of()
    data, body = answer_body(payload="D" * 2 ** 21)
    spool = cache.spool(key)

    def full(self, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("astroquery_mmoda.writing.Spool.write", full)
    with pytest.warns(AstropyUserWarning, match="No space left") as caught:
        spool_in_pieces(spool, body)
        spool.seal()
        spool.wait()
        monkeypatch.undo()
        assert not cache.put(key, data, spool=spool)  # not tried again: the folder is the problem
    assert len(caught) == 1 and not spool.usable
    assert cache.get(key) is None and os.listdir(tmp_path / "results") == []


def test_the_token_of_this_process_is_replaced_as_the_answer_arrives(tmp_path):
    from astroquery_mmoda.protocol import envelope_from_data
    from astroquery_mmoda.redaction import register_secret
    cache, key, token = ResultCache(tmp_path), key_of(), mint_token()
    register_secret(token)
    data, _ = answer_body(payload="E" * 2 ** 21)
    data["products"]["analysis_parameters"]["token"] = token  # as both servers echo it
    data["exit_status"]["message"] = f"run with {token} and {token}"
    body = json.dumps(data).encode()
    spool = cache.spool(key)
    spool_in_pieces(spool, body, size=7)  # a token always straddles two pieces
    envelope = envelope_from_data(json.loads(body))
    assert envelope.token_echoes == 3 and spool.redacted == 3
    assert cache.put(key, envelope.data, spool=spool, token_echoes=envelope.token_echoes)
    assert_no_token(tmp_path, token)
    entry = (tmp_path / "results" / f"{key}.json").read_bytes()
    assert body.replace(token.encode(), b"<token>") in entry  # stored as received, but for the token
    stored = envelope_from_data(cache.get(key))
    assert as_sent(stored.products["numpy_data_product_list"]) == \
        envelope.products["numpy_data_product_list"]
    assert "token" not in stored.products["analysis_parameters"]
    assert stored.exit_status["message"] == "run with <token> and <token>"


def spool_missing_a_token(tmp_path, letter):
    """``(cache, key, token, spool, envelope)``: an answer whose echoed token the spool did not see."""
    from astroquery_mmoda.protocol import envelope_from_data
    from astroquery_mmoda.redaction import register_secret
    cache, key, token = ResultCache(tmp_path), key_of(), mint_token()
    register_secret(token)
    data, _ = answer_body(payload=letter * 2 ** 21)
    data["products"]["analysis_parameters"]["token"] = token
    # The same token, with its first letter escaped: the same text once decoded.
    body = json.dumps(data).encode().replace(token.encode(), b"\\u0065" + token[1:].encode())
    spool = cache.spool(key)
    spool_in_pieces(spool, body)
    return cache, key, token, spool, envelope_from_data(json.loads(body))


def test_an_answer_with_a_token_the_spool_missed_is_written_anew(tmp_path):
    cache, key, token, spool, envelope = spool_missing_a_token(tmp_path, "F")
    assert envelope.token_echoes == 1 and spool.redacted == 0
    assert cache.put(key, envelope.data, spool=spool, token_echoes=envelope.token_echoes)
    assert_no_token(tmp_path, token)
    assert b"\\u0065" + token[1:].encode() not in (tmp_path / "results" / f"{key}.json").read_bytes()
    assert os.listdir(tmp_path / "results") == [f"{key}.json"]


def test_a_sealed_spool_holds_no_open_file(tmp_path):
    cache, key = ResultCache(tmp_path), key_of()
    data, body = answer_body(payload="G" * 2 ** 21)
    spools = []
    for _ in range(3):  # finished jobs of a group, not decoded yet
        spool = cache.spool(key)
        spool_in_pieces(spool, body)
        spool.seal()
        spools.append(spool)
    for spool in spools:
        spool.wait()  # the background writer has caught up
    if os.path.isdir("/proc/self/fd"):
        open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert not any(name.startswith(str(tmp_path)) for name in open_files)
    assert len(os.listdir(tmp_path / "results")) == 3
    assert cache.put(key, data, spool=spools[0])
    for spool in spools[1:]:
        spool.discard()
    assert os.listdir(tmp_path / "results") == [f"{key}.json"]
    assert as_sent(cache.get(key)["products"]["numpy_data_product_list"][0]["binarys"]) == "G" * 2 ** 21


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"{", b"xyz" * 5, b"SECRET-ONE-123", b"SECRET-ONE-12", b"TWO-SECRET"]),
                max_size=40),
       st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_secrets_are_replaced_whatever_the_pieces(tmp_path_factory, parts, sizes):
    folder = tmp_path_factory.mktemp("spool")
    secrets_ = ("SECRET-ONE-123", "TWO-SECRET")
    body = b"{" + b"".join(parts)
    spool = AnswerSpool(folder / "entry.json", b"[", secrets_)
    start, index = 0, 0
    while start < len(body):
        size = sizes[index % len(sizes)]
        spool.write(body[start:start + size])
        start, index = start + size, index + 1
    assert spool.commit()
    expected = body
    for secret in secrets_:
        expected = expected.replace(secret.encode(), b"<token>")
    assert (folder / "entry.json").read_bytes() == b"[" + expected + b"}"
    assert spool.redacted == sum(body.count(s.encode()) for s in secrets_)


def test_a_large_answer_for_a_folder_that_cannot_be_made_warns_once(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache, key = ResultCache(blocker), key_of()
    data, body = answer_body(payload="H" * 2 ** 21)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spool = cache.spool(key)
        spool_in_pieces(spool, body)
        spool.seal()
        assert not cache.put(key, data, spool=spool)
    messages = [str(w.message) for w in caught if "Cannot write" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith(f"Cannot write to the MMODA cache folder {blocker / 'results'}: ")
    assert blocker.read_text() == "a file where the cache folder should be"


def test_a_writer_that_does_not_keep_up_ends_the_spooling_in_bounded_time(tmp_path, monkeypatch):
    from astroquery_mmoda import conf
    from astroquery_mmoda.writing import Spool

    cache, key = ResultCache(tmp_path), key_of()
    data, body = answer_body(payload="I" * 2 ** 22)
    original = Spool.write

    def stuck(self, piece):  # a file system that hangs on every piece
        time.sleep(0.3)
        return original(self, piece)
    monkeypatch.setattr(Spool, "write", stuck)
    started = time.monotonic()
    with conf.set_temp("timeout", 0.05), pytest.warns(AstropyUserWarning, match="behind|longer than"):
        spool = cache.spool(key)
        spool_in_pieces(spool, body)
        assert not cache.put(key, data, spool=spool)
    assert time.monotonic() - started < 5


def test_an_answer_released_while_decoded_is_only_stored_as_it_arrived(tmp_path):
    """Its data are gone from the decoded answer: when the spool cannot be kept, nothing is stored."""
    cache, key, token, spool, envelope = spool_missing_a_token(tmp_path, "G")
    envelope.data["products"]["numpy_data_product_list"][0]["binarys"] = None  # released
    assert not cache.put(key, envelope.data, spool=spool, token_echoes=envelope.token_echoes,
                         complete=False)
    assert cache.get(key) is None and os.listdir(tmp_path / "results") == []
    # the usual case: the spool replaced every token, and the answer as received is stored
    data, body = answer_body(payload="H" * 2 ** 21)
    spool = cache.spool(key)
    spool_in_pieces(spool, body)
    data["products"]["numpy_data_product_list"][0]["binarys"] = None
    assert cache.put(key, data, spool=spool, complete=False)
    assert as_sent(cache.get(key)["products"]["numpy_data_product_list"][0]["binarys"]) == "H" * 2 ** 21
