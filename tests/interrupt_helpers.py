"""Child processes that can be interrupted, whatever the test run's own SIGINT disposition."""
import signal


def default_sigint():
    """A ``preexec_fn``: the child gets the default SIGINT disposition.

    A background job of a non-interactive shell ignores SIGINT, and its
    children inherit that: Python then installs no KeyboardInterrupt handler,
    and a test that presses Ctrl-C would see nothing happen.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
