"""Offline tests of `astroquery_mmoda.jobs` against a scripted dispatcher."""
import logging
import re
import time

import pytest

from astroquery_mmoda import conf
from astroquery_mmoda.exceptions import TimeoutError
from astroquery_mmoda.jobs import Job, JobGroup, summarize_reports
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
    job = Job(client, "empty-async-return-progress", "dummy", "Real",
              {"p": "5", "return_progress": "True"})
    job.wait(timeout=10)
    assert job.status == "done" and polls == ["new", "submitted", "submitted"]
    assert job.progress == {"p": 2}
    ordinary = [p for p in dispatcher.sent if "return_progress" not in p]
    assert len(ordinary) == 3 and all(p["p"] == "5" for p in ordinary)
    assert [p["query_status"] for p in dispatcher.sent if "return_progress" in p] == \
        ["submitted", "submitted"]


def test_a_decoded_job_lets_go_of_the_answer():
    import gc
    import weakref

    class Products(list):  # a list that can be watched with a weak reference
        pass

    texts = Products([{"name": "note", "value": "x" * 1000}])
    watch = weakref.ref(texts)
    script = [answer("done", {"text_product_list": texts})]
    client, _ = scripted_client(lambda params: script[0])
    job = Job(client, "empty", "echo", "Real", {})
    job.wait(timeout=10)
    assert job.result()["note"] == "x" * 1000
    script.clear()
    del texts
    gc.collect()
    assert watch() is None  # only the decoded products are kept
    assert job.result()["note"] == "x" * 1000 and job.status == "done"


def test_ready_forever_still_times_out_and_sleeps_between_polls():
    client, dispatcher = scripted_client(lambda params: answer("ready"))
    job = Job(client, "empty", "numerical", "Real", {})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still ready after 0.5 s") as error:
        job.wait(timeout=0.5)
    assert time.monotonic() - started < 2
    assert error.value.job_id == "0123456789abcdef"
    assert len(dispatcher.sent) < 60  # polls back off (0.01 s, up to 0.02 s), never a busy loop
    assert all(0 < t <= 0.55 for t in dispatcher.timeouts)  # no poll may outlive the deadline


def test_job_group_with_ready_forever_jobs_times_out():
    client, _ = scripted_client(lambda params: answer("ready"))
    group = JobGroup([Job(client, "empty", "numerical", "Real", {"p": str(p)}) for p in range(3)])
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="3 of 3"):
        group.wait(timeout=0.5, show_progress=False)
    assert time.monotonic() - started < 3


def test_reports_with_lists_and_objects_as_nodes():
    reports = [{"node": ["a", "b"], "message": "x"}, {"node": {"k": 1}}, {"node": "main", "message": 3}]
    client, _ = scripted_client(lambda params: dict(answer("done"), job_monitor={
        "job_id": "0123456789abcdef", "session_id": "ABCDEFGHIJKLMNOP", "full_report_dict_list": reports}))
    job = Job(client, "empty", "numerical", "Real", {})
    assert job.wait(timeout=5).status == "done"
    assert summarize_reports(reports) == "3 reports, 1 node"


def test_heartbeat_while_the_state_does_not_change(caplog):
    states = iter(["submitted"] * 6 + ["progress"] * 2 + ["done"])
    client, _ = scripted_client(lambda params: answer(next(states)))
    job = Job(client, "isgri", "isgri_spectrum", "Real", {})
    with conf.set_temp("heartbeat", 0.02), conf.set_temp("poll_interval", 0.015), \
            conf.set_temp("poll_max", 0.015), caplog.at_level(logging.INFO, logger="astroquery"):
        job.wait(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(re.fullmatch(r"MMODA isgri_spectrum job 01234567: still submitted after \d+ s", line)
               for line in lines), lines
    assert any(line.endswith(": progress") for line in lines), lines
    assert sum("still" in line for line in lines) < 6


def test_no_heartbeat_for_a_short_job(caplog):
    states = iter(["submitted", "submitted", "done"])
    client, _ = scripted_client(lambda params: answer(next(states)))
    with caplog.at_level(logging.INFO, logger="astroquery"):
        Job(client, "isgri", "isgri_spectrum", "Real", {}).wait(timeout=10)
    assert not any("still" in r.getMessage() for r in caplog.records)


def test_reprs_for_notebooks():
    client, _ = scripted_client(lambda params: answer("submitted"))
    job = Job(client, "isgri", "isgri_<b>", "Real", {})
    job.update()
    assert repr(job) == ("<Job isgri/isgri_<b> job_id=0123456789abcdef session_id=ABCDEFGHIJKLMNOP "
                         "status=submitted>")
    assert "<td>isgri_&lt;b&gt;</td>" in job._repr_html_() and "<td>submitted</td>" in job._repr_html_()
    group = JobGroup([job, Job(client, "jemx", "jemx_image", "Real", {})])
    assert repr(group) == "<JobGroup of 2 jobs: 0/2 done, 0 failed>"
    page = group._repr_html_()
    assert page.startswith("<p>JobGroup: 0/2 done, 0 failed</p><table>")
    assert page.count("<tr>") == 3 and "<td>jemx_image</td>" in page and "<td>new</td>" in page
