"""The ``mmoda`` command: MMODA products from the shell.

Synopsis::

    mmoda [--server URL] [-v | -vv] COMMAND ...

    mmoda login [--store] [--token-file PATH]
    mmoda token [refresh [--store]]
    mmoda instruments
    mmoda products INSTRUMENT
    mmoda parameters INSTRUMENT PRODUCT
    mmoda get INSTRUMENT PRODUCT [key=value ...] [--catalog FILE] [--dummy] [-o DIR] [--overwrite]
              [--wait | --no-wait] [--timeout S] [--no-cache] [--no-validate]
    mmoda jobs [--all]
    mmoda job JOB_ID [--session-id S] [--wait] [-o DIR] [--overwrite] [--timeout S]

Every command logs in by itself when a token is found in ``ODA_TOKEN``, the
system keyring, ``./.oda-token`` or ``~/.oda-token`` (it never asks for one),
and works anonymously otherwise.  Tokens are never printed.

The values of ``key=value`` are read as JSON when they parse as JSON (``5``,
``2.5``, ``true``, ``null``, ``[1, 2]``, ``"text"``) and kept as text otherwise
(``T1=2003-03-15T23:27:40``, ``src_name=Crab``).

INTEGRAL spectra (``isgri_spectrum``, ``jemx_spectrum``) are written ready for
XSPEC, as `~astroquery_mmoda.integral.SpectrumSet.write` writes them: three files
a source, ``RESPFILE`` and ``ANCRFILE`` naming the source's own responses.
Files are written all or nothing; a planted symbolic link is refused.

Exit codes:

====  ======================================================================
0     success
1     the dispatcher reported an error, or the job failed
2     bad command-line arguments, or a request rejected as invalid
3     no usable token, or the token is expired or refused (HTTP 401/403)
4     time is up while the job still runs (the message says how to resume it)
130   interrupted (Ctrl-C); a submitted job goes on and can be resumed
====  ======================================================================

Errors are written to stderr as one line ``mmoda: error: ...`` (with the
traceback at ``-vv``).
"""
import argparse
import contextlib
import os
import signal
import threading

from . import commands as _commands
from .output import Output, error_message, exit_code, format_table, report, resume_hint  # noqa: F401
from .values import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_LOGIN, EXIT_OK, EXIT_TIMEOUT,  # noqa: F401
                     EXIT_USAGE, PROG, CommandError, parameter, parse_value, seconds)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_LOGIN",
           "EXIT_TIMEOUT", "EXIT_INTERRUPTED"]


def build_parser():
    """The `argparse.ArgumentParser` of the ``mmoda`` command."""
    from .. import conf

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                        help=f"root URL of the MMODA dispatcher (default: {conf.server})")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="show progress (-v) or also debugging messages (-vv)")

    parser = argparse.ArgumentParser(
        prog=PROG, parents=[common],
        description="Query MMODA, the Multi-Messenger Online Data Analysis platform.",
        epilog="Exit codes: 0 ok, 1 dispatcher error or failed job, 2 bad arguments or invalid "
               "request, 3 login/token problem, 4 timeout (job still running), 130 interrupted.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, handler, help_text, description=None):
        sub = commands.add_parser(name, parents=[common], help=help_text,
                                  description=description or help_text)
        sub.set_defaults(handler=handler)
        return sub

    login = command("login", _commands.cmd_login, "log in with an API token and show who it belongs to",
                    "Find a token (ODA_TOKEN, the keyring, ./.oda-token, ~/.oda-token, or a prompt "
                    "in a terminal), check it and show who it belongs to.")
    login.add_argument("--store", action="store_true",
                       help="save the token in the system keyring for later commands")
    login.add_argument("--token-file", metavar="PATH",
                       help="read the token from this file ('-' for standard input)")

    token = command("token", _commands.cmd_token, "show the current token's owner, roles and expiry")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION")
    refresh = token_commands.add_parser(
        "refresh", parents=[common], help="get a token with a later expiry from the dispatcher",
        description="Get a token with a later expiry (needs the refresh-tokens role).")
    refresh.add_argument("--store", action="store_true",
                         help="write the new token where the old one came from (keyring or file)")
    refresh.set_defaults(handler=_commands.cmd_token_refresh)

    command("instruments", _commands.cmd_instruments, "list the instruments of the dispatcher")

    products = command("products", _commands.cmd_products, "list the products of an instrument")
    products.add_argument("instrument", metavar="INSTRUMENT")

    parameters = command("parameters", _commands.cmd_parameters,
                         "show the parameters of a product, with defaults and units")
    parameters.add_argument("instrument", metavar="INSTRUMENT")
    parameters.add_argument("product", metavar="PRODUCT")

    get = command("get", _commands.cmd_get, "request a product and write it to files",
                  "Request a product and, unless --no-wait, wait for it and write its files. "
                  "Values of key=value are read as JSON when possible (5, 2.5, true, null, "
                  "[1, 2]), else kept as text.")
    get.add_argument("instrument", metavar="INSTRUMENT")
    get.add_argument("product", metavar="PRODUCT")
    get.add_argument("params", metavar="key=value", nargs="*", type=parameter, default=[],
                     help="a parameter of the product (see 'mmoda parameters')")
    get.add_argument("--catalog", metavar="FILE",
                     help="the sources to extract: a catalog ECSV file, as written by 'mmoda get' "
                          "for an image (maybe filtered)")
    get.add_argument("--dummy", action="store_true",
                     help="ask for the canned test products (query type Dummy)")
    _output_options(get)
    get.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                     help="wait for the job and write its products (default), or only submit "
                          "it and print its job id and session id")
    get.add_argument("--no-cache", action="store_true",
                     help="neither use nor store a cached result")
    get.add_argument("--no-validate", action="store_true",
                     help="do not check the parameters against the product's description")

    jobs = command("jobs", _commands.cmd_jobs, "list the unfinished jobs submitted from this computer")
    jobs.add_argument("--all", action="store_true", help="also the jobs of other dispatchers")

    job = command("job", _commands.cmd_job, "show a job's status; with --wait, write its products")
    job.add_argument("job_id", metavar="JOB_ID")
    job.add_argument("--session-id", metavar="S", help="the job's session id (default: from the "
                                                       "journal of submitted jobs)")
    job.add_argument("--wait", action="store_true", help="wait for the job and write its products")
    _output_options(job)
    return parser


def _output_options(parser):
    parser.add_argument("-o", "--output", metavar="DIR", default=".",
                        help="folder for the product files (default: the working folder)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing files (otherwise nothing is written if any exists)")
    parser.add_argument("--timeout", metavar="S", type=seconds,
                        help="longest wait in seconds (default: conf.job_timeout)")


def main(argv=None):
    """Run the ``mmoda`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code (see the module documentation).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    verbosity = getattr(args, "verbose", 0) or 0
    session = _commands.Session(args)
    with Output(verbosity), _second_interrupt_leaves(lambda: _interrupted(session, args)):
        try:
            return args.handler(session, args)
        except KeyboardInterrupt:
            report(_interrupted(session, args))
            return EXIT_INTERRUPTED
        except Exception as exc:  # every failure becomes one line and an exit code
            report(error_message(exc, session), verbosity=verbosity, exc=exc)
            return exit_code(exc)


def _interrupted(session, args):
    """The message of an interrupted command: how to resume its job."""
    job = session.job
    message = "interrupted"
    if job is not None and job.job_id and not job.finished:
        message += (f"; MMODA job {job.job_id} goes on. Resume it with: "
                    f"{resume_hint(job, getattr(args, 'output', '.'))}")
    elif args.command == "get":
        message += ("; a job already submitted goes on: repeat the command to resume it "
                    f"(see '{PROG} jobs')")
    return message


@contextlib.contextmanager
def _second_interrupt_leaves(message):
    """Ctrl-C interrupts the command; a second Ctrl-C leaves at once, with the same message.

    The first one is Python's KeyboardInterrupt; should clean-up code swallow it
    (one raised inside a finalizer is only printed), the second one still ends
    the command.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    count = [0]

    def handle(signum, frame):
        count[0] += 1
        if count[0] > 1:
            report(message())
            os._exit(EXIT_INTERRUPTED)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
