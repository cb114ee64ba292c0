"""A second Ctrl-C ends the command even when the first one was swallowed by clean-up code."""
import subprocess
import sys
import textwrap

from tests.interrupt_helpers import default_sigint

SCRIPT = textwrap.dedent("""
    import os, signal, time, types
    from astroquery_mmoda.cli import _second_interrupt_leaves

    with _second_interrupt_leaves(lambda: "interrupted; MMODA job j1 goes on"):
        for attempt in range(2):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                pass  # swallowed, as a finalizer would
    print("not left")
""")


def test_a_second_interrupt_leaves_with_the_message():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                          preexec_fn=default_sigint)
    assert done.returncode == 130
    assert "mmoda: error: interrupted; MMODA job j1 goes on" in done.stderr
    assert "not left" not in done.stdout
