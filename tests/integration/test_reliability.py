"""Reliability against a real local dispatcher behind a fault-injecting proxy.

Every test bounds its own duration through the client's configuration
(``max_retries``, ``timeout``, polling intervals) and asserts behaviour and
request counts, never durations.
"""
import secrets
import threading
import time

import pytest

from astroquery_mmoda import conf
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import DispatcherUnavailable, InvalidQueryError, MmodaServiceError
from astroquery_mmoda.jobs import Job
from astroquery_mmoda.testing import LocalDispatcher
from astroquery_mmoda.testing.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration

GATEWAY_STATUSES = [502, 503, 504]


def unique(prefix="rel"):
    """A parameter value that gives a fresh job id.

    Random: the dispatcher gives one job id to values that are anagrams.
    """
    return f"{prefix}-{secrets.token_hex(8)}"


@pytest.fixture
def proxy(local_dispatcher):
    with FaultProxy(local_dispatcher.url) as proxy:
        yield proxy


@pytest.fixture
def client(proxy, local_dispatcher, tmp_path):
    client = MmodaClass(server=proxy.url)
    client.cache_location = tmp_path / "cache"
    client.login(local_dispatcher.mint_token("general"))
    client.list_products("empty")  # metadata: later counts are product requests only
    client.list_products("empty-async")
    proxy.reset_counts()
    return client


@pytest.fixture
def fast():
    """Short back-off and polls, two retries: every failure below ends within seconds."""
    with conf.set_temp("max_retries", 2), conf.set_temp("poll_interval", 0.05), \
            conf.set_temp("poll_max", 0.2), conf.set_temp("timeout", 10.0):
        yield


@pytest.fixture(autouse=True)
def keep_cache_setting():
    """astroquery's global cache switch on, and restored afterwards.

    Concurrent requests can leave it off (job groups poll from threads): see
    the last test of this module.
    """
    from astroquery import cache_conf

    active = cache_conf.cache_active
    cache_conf.cache_active = True
    yield cache_conf
    cache_conf.cache_active = active


def sync_job(client, **params):
    """A synchronous job (no product to decode): done in one answer."""
    return client.submit("empty", "dummy", query_type="Dummy", cache=False,
                         src_name=unique(), **params)


# -- gateway errors ---------------------------------------------------------------------

@pytest.mark.parametrize("status", GATEWAY_STATUSES)
def test_burst_shorter_than_the_retry_budget_succeeds(client, proxy, fast, status):
    proxy.fail(status, times=2, path="run_analysis")
    job = sync_job(client)
    assert job.status == "done"
    # two answers with the gateway error, then one forwarded: two retries, one call
    assert proxy.count(path="run_analysis", action="status") == 2
    assert proxy.count(path="run_analysis", action="forward") == 1
    assert proxy.pending_faults == 0


@pytest.mark.parametrize("status", GATEWAY_STATUSES)
def test_burst_longer_than_the_retry_budget_fails_clearly(client, proxy, fast, status):
    proxy.fail(status, times=None, path="run_analysis")
    with pytest.raises(DispatcherUnavailable) as error:
        sync_job(client)
    message = str(error.value)
    assert proxy.url in message and f"HTTP {status}" in message
    assert error.value.status_code == status
    # bounded: the first attempt and max_retries more, nothing else
    assert proxy.count(path="run_analysis") == 1 + 2
    assert proxy.count(path="run_analysis", action="forward") == 0


def test_gateway_errors_of_metadata_requests_are_retried(client, proxy, fast):
    proxy.fail(503, times=2, path="api/meta-data")
    client.clear_cache()  # the stored instrument descriptions too
    assert "echo" in client.list_products("empty")
    assert proxy.count(path="api/meta-data") == 3


@pytest.mark.parametrize("status, error", [(500, MmodaServiceError), (400, InvalidQueryError),
                                           (404, MmodaServiceError)])
def test_other_errors_are_not_retried(client, proxy, fast, status, error):
    proxy.fail(status, times=None, path="run_analysis")
    with pytest.raises(error, match=str(status) if status != 400 else "rejected"):
        sync_job(client)
    assert proxy.count(path="run_analysis") == 1


# -- dropped connections and slow answers -------------------------------------------------

def test_dropped_connections_are_retried(client, proxy, fast):
    proxy.drop(times=2, path="run_analysis")
    job = sync_job(client)
    assert job.status == "done"
    assert [r.action for r in proxy.requests] == ["drop", "drop", "forward"]


def test_connection_dropped_every_time_fails_clearly(client, proxy, fast):
    proxy.drop(times=None, path="run_analysis")
    with pytest.raises(DispatcherUnavailable, match="cannot reach the MMODA dispatcher") as error:
        sync_job(client)
    assert proxy.url in str(error.value)
    assert proxy.count(path="run_analysis") == 1 + 2


def test_slow_answer_within_the_timeout_is_waited_for(client, proxy, fast):
    proxy.delay(0.2, times=1, path="run_analysis")
    assert sync_job(client).status == "done"
    assert proxy.count(path="run_analysis") == 1


def test_answer_slower_than_the_timeout_fails_clearly(client, proxy, fast):
    # The proxy would hold each request far longer than the client waits; it
    # releases them when it stops at the end of the test.
    proxy.delay(600, times=None, path="run_analysis")
    with conf.set_temp("timeout", 0.3), conf.set_temp("max_retries", 1):
        with pytest.raises(DispatcherUnavailable) as error:
            sync_job(client)
    message = str(error.value)
    assert proxy.url in message
    assert "timed out: no answer within 0.3 s" in message
    assert "0.3" in message  # the time limit that was exceeded
    assert proxy.count(path="run_analysis") == 1 + 1


# -- jobs ------------------------------------------------------------------------------------

def finish_when_submitted(dispatcher, proxy, count, *, rounds=400):
    """Back-end side: once ``count`` jobs are submitted through ``proxy``, finish them all."""
    jobs = set()
    for _ in range(rounds):  # bounded: 400 × 25 ms
        jobs = {(r.answer_job_id, r.params.get("session_id")) for r in proxy.requests
                if r.query_status == "new" and r.answer_job_id}
        if len(jobs) >= count:
            break
        time.sleep(0.025)
    dispatcher.set_backend_status("done")
    for job_id, session_id in jobs:
        dispatcher.call_back(job_id, session_id, action="done", node_id="node_final",
                             message="done")
    return jobs


def test_wait_rides_out_transient_errors_of_polls(client, proxy, backend, fast):
    job = client.submit("empty-async", "dummy", src_name=unique())
    assert job.status == "submitted"
    proxy.fail(503, times=2, query_status="submitted")
    assert job.update() == "submitted"  # two 503s, retried
    proxy.drop(times=2, query_status="submitted")
    assert job.update() == "submitted"  # two dropped connections, retried
    backend.finish_job(job.job_id, job.session_id)
    with pytest.warns(UserWarning, match="mock comment"):
        job.wait(timeout=60)
    assert job.status == "done"
    assert proxy.count(action="status") == 2 and proxy.count(action="drop") == 2


def test_job_group_completes_through_transient_errors(client, proxy, backend, fast):
    names = [unique(f"group{i}") for i in range(4)]
    group = client.submit_many([("empty-async", "dummy", {"src_name": name}) for name in names])
    # each job's polls meet two gateway errors, within the retry budget of one poll
    for job in group:
        proxy.fail(503, times=2, query_status="submitted",
                   when=lambda params, session=job.session_id: params.get("session_id") == session)
    finisher = threading.Thread(target=finish_when_submitted, args=(backend, proxy, 4))
    finisher.start()
    try:
        with pytest.warns(UserWarning, match="mock comment"):
            group.wait(timeout=60, show_progress=False)
    finally:
        finisher.join(30)
    assert group.errors == {}
    assert [job.status for job in group] == ["done"] * 4
    assert proxy.count(action="status") == 8
    assert proxy.count(query_status="new") == 4  # retries never submitted a job twice


def test_job_group_keeps_polling_a_job_after_one_failed_poll(client, proxy, backend, fast):
    names = [unique(f"group{i}") for i in range(3)]
    group = client.submit_many([("empty-async", "dummy", {"src_name": name}) for name in names])
    # one poll exhausts the retry budget (no retries at all)
    proxy.fail(503, times=1, query_status="submitted")
    finisher = threading.Thread(target=finish_when_submitted, args=(backend, proxy, 3))
    finisher.start()
    try:
        with conf.set_temp("max_retries", 0), pytest.warns(UserWarning, match="mock comment"):
            group.wait(timeout=60, show_progress=False)
    finally:
        finisher.join(30)
    assert proxy.count(action="status") == 1
    assert [job.status for job in group] == ["done"] * 3
    assert group.errors == {}


# -- a dispatcher restart -------------------------------------------------------------------

@pytest.fixture
def restartable(tmp_path, mmoda_server):
    """A dispatcher of this test's own, whose working folder survives a restart."""
    dispatcher = LocalDispatcher(server=mmoda_server, workdir=tmp_path / "dispatcher")
    dispatcher.start()
    yield dispatcher
    dispatcher.stop()


def test_job_survives_a_dispatcher_restart(restartable, tmp_path, fast):
    with FaultProxy(restartable.url) as proxy:
        client = MmodaClass(server=proxy.url)
        client.cache_location = tmp_path / "cache"
        client.login(restartable.mint_token("general"))
        params = {"src_name": unique("restart")}
        job = client.submit("empty-async", "dummy", **params)
        assert job.status == "submitted"

        restartable.stop()  # the front-end now answers 502, as during a real restart
        with pytest.raises(DispatcherUnavailable, match="HTTP 502"):
            job.update()
        assert proxy.count(action="upstream-down") == 1 + 2

        restartable.start()  # same working folder and token secret, another port
        proxy.upstream_url = restartable.url

        # by its ids, from the journal (a new client, e.g. after a kernel restart)
        other = MmodaClass(server=proxy.url)
        other.cache_location = client.cache_location
        other.login(restartable.mint_token("general"))
        resumed = other.get_job(job.job_id, job.session_id)
        assert resumed.job_id == job.job_id and resumed.status == "submitted"

        # by repeating the call: the journal resumes the job, nothing is submitted again
        before = proxy.count(query_status="new")
        again = client.submit("empty-async", "dummy", **params)
        assert (again.job_id, again.session_id) == (job.job_id, job.session_id)
        assert proxy.count(query_status="new") == before == 1

        restartable.finish_job(job.job_id, job.session_id)
        with pytest.warns(UserWarning, match="mock comment"):
            resumed.wait(timeout=60)
        assert resumed.status == "done"
        assert isinstance(resumed, Job)


# -- threads ---------------------------------------------------------------------------------

def run_threads(client, tasks):
    """Run ``client.get_product`` for every task in its own thread, all starting together."""
    results = [None] * len(tasks)
    barrier = threading.Barrier(len(tasks), timeout=60)

    def work(index):
        product, query_type, params = tasks[index]
        try:
            barrier.wait()
            results[index] = client.get_product("empty", product, query_type=query_type, **params)
        except Exception as exc:  # checked below, per thread
            results[index] = exc

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def check_result(result, task):
    product, _, params = task
    assert not isinstance(result, Exception), result
    parameters = result.analysis_parameters
    if product == "numerical":
        (hdul,) = result.values()
        assert hdul[0].data.shape == (100, 100)
        assert float(parameters["p"]) == params["p"]
    else:
        assert parameters["src_name"] == params["src_name"]


def thread_tasks():
    echo = unique("echo")
    return [("numerical", "Dummy", {"p": p}) for p in (1, 2, 3, 4, 5, 5)] \
        + [("echo", "Real", {"src_name": echo})] * 2


def test_threads_share_one_client_and_one_cache(client, proxy, monkeypatch, keep_cache_setting):
    """8 threads, distinct and identical queries, one client, one cache folder."""
    tasks = thread_tasks()
    for result, task in zip(run_threads(client, tasks), tasks):
        check_result(result, task)
    assert proxy.count(path="run_analysis") <= len(tasks)

    # Every entry of the cache is sound: a new client reads it back without any request.
    keep_cache_setting.cache_active = True  # see the next test
    stored = set(client._results.keys())
    reader = MmodaClass(server=client.server)
    reader.cache_location = client.cache_location
    reader.login(client._tokens.token)
    reader._meta_cache.update(client._meta_cache)
    monkeypatch.setattr(reader._session, "request", lambda *a, **k: pytest.fail("request sent"))
    read = 0
    for task in {(t[0], t[1], tuple(t[2].items())): t for t in tasks}.values():
        product, query_type, params = task
        if reader._key("empty", product, query_type, params) in stored:
            check_result(reader.get_product("empty", product, query_type=query_type, **params), task)
            read += 1
    assert read == len(stored)


def test_a_request_in_flight_does_not_switch_the_cache_off_for_other_threads(
        client, proxy, keep_cache_setting):
    tasks = thread_tasks()
    # the echo requests stay in flight while the numerical ones finish
    proxy.delay(1.5, times=2, path="run_analysis", when=lambda params: "src_name" in params)
    for result, task in zip(run_threads(client, tasks), tasks):
        check_result(result, task)
    assert keep_cache_setting.cache_active
    assert len(client._results) == 6  # p = 1, 2, 3, 4, 5 and the echo
