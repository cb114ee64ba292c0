"""JobGroup's on_finished callback and Job.release, against a stub dispatcher (no server)."""
import pytest
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda import conf
from astroquery_mmoda.protocol import envelope_from_data
from astroquery_mmoda.exceptions import JobFailedError
from astroquery_mmoda.jobs import Job, JobGroup
from astroquery_mmoda.products import ProductSet


class StubDispatcher:
    """Answers each job ``submitted`` for ``polls`` requests, then ``done`` (or ``failed``)."""

    def __init__(self, polls=2, failing=()):
        self.polls, self.failing, self.requests = polls, set(failing), []

    def run_analysis(self, params, token=None, timeout=None, spool=None):
        self.requests.append(params)
        name = params["src_name"]
        asked = sum(p["src_name"] == name for p in self.requests)
        status = "submitted" if asked < self.polls else ("failed" if name in self.failing else "done")
        data = {"query_status": status, "job_monitor": {"job_id": f"job-{name}", "session_id": "S" * 16},
                "exit_status": {"status": 1 if status == "failed" else 0, "message": "back end broke"},
                "products": {}}
        return envelope_from_data(data)


class StubClient:
    def __init__(self, dispatcher):
        self._dispatcher = dispatcher


def make_jobs(client, names):
    return [Job(client, "isgri", "isgri_lc", "Real", {"src_name": name}) for name in names]


@pytest.fixture(autouse=True)
def fast_polls():
    with conf.set_temp("poll_interval", 0.001), conf.set_temp("poll_max", 0.002):
        yield


def test_on_finished_is_called_once_per_job_with_its_index():
    client = StubClient(StubDispatcher(polls=3, failing={"b"}))
    seen = []
    group = JobGroup(make_jobs(client, "abc"),
                     on_finished=lambda index, job: seen.append((index, job.status)))
    group.wait(timeout=30)
    assert sorted(seen) == [(0, "done"), (1, "failed"), (2, "done")]
    group.wait(timeout=30)  # nothing new finished: no second call
    assert len(seen) == 3


def test_on_finished_sees_jobs_finished_before_wait_and_errors():
    client = StubClient(StubDispatcher(polls=1))
    jobs = make_jobs(client, "ab")
    jobs[0].update()
    assert jobs[0].finished
    jobs[1].update = lambda timeout=None: (_ for _ in ()).throw(RuntimeError("connection reset"))
    seen = []
    group = JobGroup(jobs, on_finished=lambda index, job: seen.append(index))
    group.wait(timeout=30)
    assert seen == [0, 1]
    assert isinstance(group.errors[1], RuntimeError)


def test_without_a_callback_a_group_behaves_as_before():
    client = StubClient(StubDispatcher(polls=2))
    group = JobGroup(make_jobs(client, "ab")).wait(timeout=30)
    assert group.summary() == "2/2 done, 0 failed" and group.on_finished is None
    assert all(isinstance(result, ProductSet) for result in group.results())


def test_release_forgets_the_products_and_says_so():
    client = StubClient(StubDispatcher(polls=1))
    (job,) = make_jobs(client, "a")
    products = job.result(timeout=30)
    assert isinstance(products, ProductSet) and job.result() is products
    job.release()
    assert job.status == "done" and job._result is None and job._envelope is None
    with pytest.raises(InvalidQueryError, match="products of MMODA job job-a were released"):
        job.result()


def test_release_of_a_failed_job_keeps_its_failure():
    client = StubClient(StubDispatcher(polls=1, failing={"a"}))
    (job,) = make_jobs(client, "a")
    job.wait(timeout=30)
    job.release()
    with pytest.raises(JobFailedError):
        job.result()


def test_on_finished_runs_as_each_job_is_answered_not_after_the_whole_batch():
    dispatcher = StubDispatcher(polls=1)
    client = StubClient(dispatcher)
    requests_seen = []
    group = JobGroup(make_jobs(client, "abcd"),
                     on_finished=lambda index, job: requests_seen.append(len(dispatcher.requests)))
    with conf.set_temp("max_concurrent", 1):
        group.wait(timeout=30)
    assert requests_seen == [1, 2, 3, 4]  # so a caller can drop each answer before the next comes
