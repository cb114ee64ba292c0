"""Result cache, resumable jobs and many jobs at once, against the real local dispatcher."""
import time
import warnings

import numpy as np
import pytest
from astroquery import cache_conf
from astroquery.exceptions import CorruptDataWarning

from astroquery_mmoda import conf, jobs
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.dispatcher import MmodaWarning
from astroquery_mmoda.exceptions import JobFailedError, TimeoutError

pytestmark = pytest.mark.integration


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def make_client(dispatcher, cache_dir, token):
    client = MmodaClass(server=dispatcher.url)
    client.cache_location = cache_dir
    client.login(token)
    return client


@pytest.fixture
def client(local_dispatcher, cache_dir, mmoda_token):
    return make_client(local_dispatcher, cache_dir, mmoda_token("general", sub="alice@example.org"))


@pytest.fixture
def counted(monkeypatch):
    """Count the HTTP requests of a client: counted(client) -> list of URLs sent."""
    def count(client):
        sent = []
        original = client._session.request
        monkeypatch.setattr(client._session, "request",
                            lambda method, url, *a, **k: sent.append(url) or original(method, url, *a, **k))
        return sent
    return count


@pytest.fixture
def fast_polls():
    with conf.set_temp("poll_interval", 0.05), conf.set_temp("poll_max", 0.3):
        yield


def numerical(client, p, **options):
    products = client.get_product("empty", "numerical", query_type="Dummy", p=p, **options)
    (hdul,) = products.values()
    return hdul[0].data


def test_same_query_twice_makes_no_request(client, counted):
    first = numerical(client, 7)
    sent = counted(client)
    second = numerical(client, 7)
    assert sent == []
    np.testing.assert_array_equal(first, second)
    client.clear_cache()
    third = numerical(client, 7)
    assert any("run_analysis" in url for url in sent)
    np.testing.assert_array_equal(first, third)


def test_cache_switches(client, counted):
    numerical(client, 8)
    sent = counted(client)
    numerical(client, 8, cache=False)
    assert len(sent) == 1
    with cache_conf.set_temp("cache_active", False):
        numerical(client, 8)
    assert len(sent) == 2
    numerical(client, 8)
    assert len(sent) == 2  # the entry written by the first call is still used


def test_failed_jobs_are_never_cached(client, counted, cache_dir):
    sent = counted(client)
    for _ in range(2):
        with pytest.raises(JobFailedError):
            client.get_product("empty", "failing", query_type="Dummy")
    assert sum("run_analysis" in url for url in sent) == 2
    assert not list((cache_dir / "results").glob("*.json"))


def test_two_users_never_share_an_entry(client, local_dispatcher, cache_dir, mmoda_token, counted):
    numerical(client, 9)
    bob = make_client(local_dispatcher, cache_dir, mmoda_token("general", sub="bob@example.org"))
    sent = counted(bob)
    numerical(bob, 9)
    assert any("run_analysis" in url for url in sent)
    assert len(list((cache_dir / "results").glob("*.json"))) == 2


def test_corrupted_entry_is_fetched_again(client, counted, cache_dir):
    first = numerical(client, 11)
    (entry,) = (cache_dir / "results").glob("*.json")
    entry.write_text(entry.read_text()[:1000])  # truncated, as after a crash
    sent = counted(client)
    with pytest.warns(CorruptDataWarning):
        again = numerical(client, 11)
    assert any("run_analysis" in url for url in sent)
    np.testing.assert_array_equal(first, again)


def test_interrupted_job_is_resumed_by_a_new_client(local_dispatcher, backend, cache_dir, mmoda_token,
                                                    fast_polls, monkeypatch, caplog):
    token = mmoda_token("general")
    name = f"resume-{np.random.default_rng().integers(1 << 40)}"
    first = make_client(local_dispatcher, cache_dir, token)

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs.job.time, "sleep", interrupt)
    with caplog.at_level("WARNING", logger="astroquery"), pytest.raises(KeyboardInterrupt):
        first.get_product("empty-async", "dummy", src_name=name)
    monkeypatch.undo()
    (entry,) = first.list_jobs()
    job_id, session_id = entry["job_id"], entry["session_id"]
    assert entry["status"] == "submitted" and entry["instrument"] == "empty-async"
    assert any(job_id in record.message and "get_job" in record.message for record in caplog.records)

    # A new client object (a new kernel) repeats the same call: the same job is polled.
    second = make_client(local_dispatcher, cache_dir, token)
    backend.finish_job(job_id, session_id)
    with pytest.warns(MmodaWarning, match="mock comment"):
        products = second.get_product("empty-async", "dummy", src_name=name)
    assert products.job_id == job_id
    submissions = [line for line in local_dispatcher.log_text().splitlines()
                   if name in line and "query_status=new" in line and "run_analysis" in line]
    assert len(submissions) == 1
    assert len(second.list_jobs()) == 0  # finished jobs leave the journal


def test_a_forgotten_job_leaves_the_journal_and_the_request_is_submitted_anew(client, backend, fast_polls,
                                                                              caplog):
    name = f"forget-{id(client)}-{time.time_ns()}"
    job = client.submit("empty-async", "dummy", src_name=name)
    assert job.status == "submitted" and list(client.list_jobs()["job_id"]) == [job.job_id]
    job.forget()
    assert len(client.list_jobs()) == 0
    with caplog.at_level("INFO", logger="astroquery"):
        again = client.submit("empty-async", "dummy", src_name=name)
    assert again.job_id and not any("resuming" in record.message for record in caplog.records)
    for each in (job, again):
        backend.finish_job(each.job_id, each.session_id)
    with pytest.warns(MmodaWarning):
        assert again.result(60).job_id == again.job_id
    assert len(client.list_jobs()) == 0


def test_get_job_resumes_by_id_from_the_journal(client, backend, fast_polls):
    job = client.submit("empty-async", "dummy", src_name=f"by-id-{id(client)}")
    assert job.status == "submitted"
    other = MmodaClass(server=client.server)
    other.cache_location = client.cache_location
    other.login(client._tokens.token)
    resumed = other.get_job(job.job_id)
    assert (resumed.job_id, resumed.session_id) == (job.job_id, job.session_id)
    assert resumed.instrument == "empty-async" and resumed.status == "submitted"
    backend.finish_job(job.job_id, job.session_id)
    with pytest.warns(MmodaWarning):
        resumed.wait(timeout=30)
    assert resumed.status == "done"


def test_forty_jobs_in_one_group(client, backend, fast_polls, counted, caplog):
    requests = []
    for index in range(30):
        requests.append(("empty-async", "dummy", {"src_name": f"group-{index}-{id(client)}"}))
    for index in range(10):
        p = -1 if index % 2 else 5
        requests.append({"instrument": "empty-semi-async", "product": "numerical", "p": p,
                         "src_name": f"semi-{index}-{id(client)}"})
    group = client.submit_many(requests)
    assert len(group) == 40
    with conf.set_temp("max_concurrent", 4), warnings.catch_warnings():
        warnings.simplefilter("ignore", MmodaWarning)
        # Each short wait submits what it can; a loaded machine may need several for all 40.
        deadline = time.monotonic() + 60
        while True:
            with pytest.raises(TimeoutError, match="not finished"):
                group.wait(timeout=1.5, show_progress=False)
            if all(job.job_id for job in group.jobs) or time.monotonic() > deadline:
                break
        assert all(job.job_id for job in group.jobs)
        assert {job.status for job in group.jobs[:30]} == {"submitted"}
        for job in group.jobs[:30]:
            backend.finish_job(job.job_id, job.session_id)
        with caplog.at_level("INFO", logger="astroquery"):
            group.wait(timeout=60, show_progress=False)
    assert group.summary() == "35/40 done, 5 failed"
    assert any("35/40 done, 5 failed" in r.message for r in caplog.records)
    results = group.results()
    assert [job.instrument for job in group.jobs] == [r[0] if isinstance(r, tuple)
                                                      else r["instrument"] for r in requests]
    for index, result in enumerate(results):
        expected_failure = index >= 30 and (index - 30) % 2 == 1
        assert isinstance(result, JobFailedError) == expected_failure, index
        if not expected_failure:
            assert result.job_id == group.jobs[index].job_id
    assert sorted(group.failures) == [31, 33, 35, 37, 39]
    assert len(client.list_jobs()) == 0


def test_progress_bar_in_a_terminal_like_session(client, backend, fast_polls, capsys):
    backend.set_backend_status("done")
    group = client.submit_many([("empty-async", "dummy", {"src_name": f"bar-{i}-{id(client)}"})
                                for i in range(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MmodaWarning)
        group.wait(timeout=30, show_progress=True)
    assert group.summary() == "3/3 done, 0 failed"
    assert "3/3" in capsys.readouterr().out


def test_warning_when_the_token_expires_before_a_long_job(local_dispatcher, backend, cache_dir,
                                                          mmoda_token):
    from astroquery.exceptions import AuthenticationWarning

    client = make_client(local_dispatcher, cache_dir, mmoda_token("general", expires_in=1800))
    numerical(client, 12)  # answered at once: no warning (filterwarnings=error would fail)
    with pytest.warns(AuthenticationWarning, match="expires in 30 min"):
        job = client.submit("empty-async", "dummy", src_name=f"expiring-{id(client)}")
    assert job.status == "submitted"


def test_a_journaled_job_the_server_forgot_is_submitted_again(client, backend, fast_polls, caplog):
    name = f"forgotten-{id(client)}"
    job = client.submit("empty-async", "dummy", src_name=name)
    (entry,) = client._journal.entries()
    client._journal.record(entry["key"], url=client.server, instrument="empty-async",
                           product="dummy", job_id="0123456789abcdef",
                           session_id=job.session_id, status="submitted", params=entry["params"])
    with caplog.at_level("WARNING", logger="astroquery"):
        again = client.submit("empty-async", "dummy", src_name=name)
    assert any("0123456789abcdef cannot be resumed" in r.message for r in caplog.records)
    assert again.job_id == job.job_id  # the dispatcher's job for these parameters
    assert client._journal.entries()[0]["job_id"] == job.job_id


def test_a_new_session_answers_from_the_cache_without_any_request(client, local_dispatcher,
                                                                  cache_dir, counted):
    first = numerical(client, 13)
    # A new client object is a new Python session: no metadata, no job in memory.
    later = make_client(local_dispatcher, cache_dir, client._tokens.token)
    sent = counted(later)
    np.testing.assert_array_equal(numerical(later, 13), first)
    assert sent == []
    # the stored descriptions also spare the parameter check's request for other queries
    numerical(later, 14)
    assert [url.rsplit("/", 1)[-1].split("?")[0] for url in sent] == ["run_analysis"]


def test_an_answer_is_stored_as_it_arrived_but_for_the_token(client, local_dispatcher, cache_dir,
                                                             counted, caplog):
    from astroquery import log
    caplog.set_level("DEBUG", logger=log.name)
    first = numerical(client, 21)
    stored = [r.getMessage() for r in caplog.records if "MMODA cache: stored" in r.getMessage()]
    # Both servers echo the token in the answer: it was replaced as the answer arrived.
    assert len(stored) == 1 and "as received" in stored[0]
    (entry,) = (cache_dir / "results").glob("*.json")
    content = entry.read_bytes()
    assert client._tokens.token.encode() not in content and b"<token>" in content
    # Read back in a new session: the same numbers, no request.
    later = make_client(local_dispatcher, cache_dir, client._tokens.token)
    sent = counted(later)
    np.testing.assert_array_equal(numerical(later, 21), first)
    assert sent == []
