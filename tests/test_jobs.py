"""Offline tests of `astroquery_mmoda.jobs` against a scripted dispatcher."""
import time

import pytest

from astroquery_mmoda import conf
from astroquery_mmoda.exceptions import TimeoutError
from astroquery_mmoda.jobs import Job, JobGroup
from tests.jobs_helpers import answer, scripted_client


@pytest.fixture(autouse=True)
def fast():
    with conf.set_temp("poll_interval", 0.01), conf.set_temp("poll_max", 0.02):
        yield


def test_return_progress_job_finishes_and_keeps_its_progress():
    polls = []

    def script(params):
        if params.get("return_progress") == "True":  # what the server does: never done on these
            return answer("submitted", {"p": len(polls)})
        polls.append(params["query_status"])
        return answer("done", {"p": 5}) if len(polls) >= 3 else answer("submitted")

    client, dispatcher = scripted_client(script)
    job = Job(client, "empty-async-return-progress", "dummy", "Real", {"p": "5", "return_progress": "True"})
    job.wait(timeout=10)
    assert job.status == "done" and polls == ["new", "submitted", "submitted"]
    assert job.progress == {"p": 2}
    ordinary = [p for p in dispatcher.sent if "return_progress" not in p]
    assert len(ordinary) == 3 and all(p["p"] == "5" for p in ordinary)
    assert [p["query_status"] for p in dispatcher.sent if "return_progress" in p] == ["submitted", "submitted"]
