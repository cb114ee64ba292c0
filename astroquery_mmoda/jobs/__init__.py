"""MMODA jobs: submit, poll with back-off, wait, resume.

A job goes ``new → submitted → progress → ready → done`` (or ``failed``); a
synchronous product answers ``done`` at once.  The dispatcher keeps the job in
the scratch folder named by its session id and job id, so a `Job` can be
resumed from another process with the same parameters and token.
"""
from .group import JobGroup
from .job import Job, _seconds, new_session_id, summarize_reports  # noqa: F401

__all__ = ["Job", "JobGroup", "new_session_id", "summarize_reports"]
