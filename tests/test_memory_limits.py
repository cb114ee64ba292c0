"""Answers that would need more memory than a laptop has end as our errors, under a memory limit.

Each case runs in a subprocess whose address space is capped (``RLIMIT_AS``) a
fixed budget above what it uses once the package is imported: a client that
read or decoded without a bound would die with `MemoryError` there (or be
killed) instead of raising the package's `ProtocolError`.  Default ``conf``
values apply, as a user has them.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

resource = pytest.importorskip("resource")
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="needs Linux's /proc to measure the address space")

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20

CLIENT = """
import gzip, json, resource, sys, zlib
from astroquery_mmoda import conf
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import MmodaServiceError
from tests.hostile_server import HostileServer, reply

def gzip_members(parts):
    # gzip members decode as their concatenation: gigabytes from a few compressed MiB
    for unit, repeat, times in parts:
        yield gzip.compress(unit * repeat, compresslevel=9) * times

body = b"".join(gzip_members({parts}))
server = HostileServer(lambda sock, *args: sock.sendall(
    reply(body, headers=["Content-Encoding: gzip"])))
client = MmodaClass(server=server.url)
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (vm + {budget}, vm + {budget}))
try:
    client._dispatcher.json_request("api/instr-list", {{}})
except MmodaServiceError as exc:
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
except MemoryError:
    import traceback
    print(json.dumps({{"error": "MemoryError", "where": traceback.format_exc()[-1500:]}}))
else:
    print(json.dumps({{"error": None}}))
"""


def run_limited(parts, budget):
    """Ask a hostile loopback server for a gzip answer within ``budget`` bytes of address space.

    ``parts`` are ``(unit, repeat, times)``: ``times`` gzip members of ``unit * repeat``.
    """
    script = textwrap.dedent(CLIENT).format(parts=repr(parts), budget=budget)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_four_gib_gzip_bomb_stops_at_max_answer_size():
    outcome = run_limited([(b"[", 1, 1), (b" ", 64 * MiB, 64), (b"]", 1, 1)], budget=1600 * MiB)
    assert outcome["error"] == "ProtocolError", outcome
    assert "larger than conf.max_answer_size (1024 MiB)" in outcome["message"]


def test_json_that_parses_to_more_than_the_memory_left_is_a_protocol_error():
    # 600 MiB of "0," is below max_answer_size, but 300 million list items need 2.4 GiB of pointers.
    outcome = run_limited([(b"[", 1, 1), (b"0,", 32 * MiB, 10), (b"0]", 1, 1)], budget=1200 * MiB)
    assert outcome["error"] == "ProtocolError", outcome
    assert "memory" in outcome["message"]
