"""A local dispatcher starts from a notebook's environment and never outlives the process that started it."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from astroquery_mmoda.testing.local_dispatcher import server_environment

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

PARENT = """
import json, os, signal, sys
from astroquery_mmoda.testing import LocalDispatcher

server = LocalDispatcher(server="1.3.3").start()
print(json.dumps({"pid": server._process.pid, "workdir": str(server.workdir), "url": server.url}),
      flush=True)
if sys.argv[1] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)  # a kernel restart: no clean-up code runs
# "forgot": the script ends without calling stop()
"""


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its (dead) parent counts as gone
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def run_parent(how):
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline", JPY_PARENT_PID="1")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(PARENT), how], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stderr[-3000:]
    return done, json.loads(lines[-1])


def wait_gone(started, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(started["pid"]) and not Path(started["workdir"]).exists():
            return True
        time.sleep(0.2)
    return False


def test_the_server_environment_drops_a_notebook_backend():
    env = server_environment({"MPLBACKEND": "module://matplotlib_inline.backend_inline",
                              "JPY_PARENT_PID": "12", "PYTHONPATH": "/elsewhere", "HOME": "/home/a"})
    assert env["MPLBACKEND"] == "agg" and env["HOME"] == "/home/a"
    assert "JPY_PARENT_PID" not in env and "PYTHONPATH" not in env


@pytest.mark.parametrize("how", ["forgot", "killed"])
def test_a_server_started_in_a_notebook_environment_stops_with_its_parent(how):
    done, started = run_parent(how)
    assert done.returncode == (-signal.SIGKILL if how == "killed" else 0), done.stderr[-3000:]
    try:
        assert wait_gone(started), f"the server {started['pid']} outlived its parent"
    finally:
        if alive(started["pid"]):
            os.killpg(started["pid"], signal.SIGKILL)
