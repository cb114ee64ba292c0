"""A scripted stand-in for the dispatcher, for offline tests of `astroquery_mmoda.jobs`."""
import json
import types

from astroquery_mmoda.protocol import envelope_from_data

SESSION_ID = "ABCDEFGHIJKLMNOP"
JOB_ID = "0123456789abcdef"


def answer(query_status, products=None, *, status=0, job_id=JOB_ID, **exit_status):
    return {"query_status": query_status,
            "exit_status": dict({"status": status, "message": "", "comment": ""}, **exit_status),
            "job_monitor": {"job_id": job_id, "session_id": SESSION_ID, "status": query_status},
            "products": products or {}}


class ScriptedDispatcher:
    """Answers run_analysis with ``script(params)``; records every request's parameters."""

    def __init__(self, script):
        self.script = script
        self.sent = []
        self.timeouts = []

    def run_analysis(self, params, *, token=None, timeout=None, spool=None):
        self.sent.append(dict(params))
        self.timeouts.append(timeout)
        data = self.script(dict(params))
        if spool is not None:  # as the transport does: the body, as it arrives
            spool.write(json.dumps(data).encode())
        return envelope_from_data(data)


def scripted_client(script):
    dispatcher = ScriptedDispatcher(script)
    return types.SimpleNamespace(_dispatcher=dispatcher), dispatcher
