"""The ``mmoda`` command: MMODA products from the shell.

Synopsis::

    mmoda [--server URL] [-v | -vv] COMMAND ...

    mmoda login [--store] [--token-file PATH]
    mmoda token [refresh [--store]]
    mmoda instruments
    mmoda products INSTRUMENT
    mmoda parameters INSTRUMENT PRODUCT
    mmoda get INSTRUMENT PRODUCT [key=value ...] [--dummy] [-o DIR] [--overwrite]
              [--wait | --no-wait] [--timeout S] [--no-cache] [--no-validate]
    mmoda jobs [--all]
    mmoda job JOB_ID [--session-id S] [--wait] [-o DIR] [--overwrite] [--timeout S]

Every command logs in by itself when a token is found in ``ODA_TOKEN``, the
system keyring, ``./.oda-token`` or ``~/.oda-token`` (it never asks for one),
and works anonymously otherwise.  Tokens are never printed.

The values of ``key=value`` are read as JSON when they parse as JSON (``5``,
``2.5``, ``true``, ``null``, ``[1, 2]``, ``"text"``) and kept as text otherwise
(``T1=2003-03-15T23:27:40``, ``src_name=Crab``).

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
import json
import logging
import re
import sys
import warnings
from pathlib import Path

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_LOGIN",
           "EXIT_TIMEOUT", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOGIN = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130

PROG = "mmoda"
# Keyword arguments of Mmoda.submit that a key=value must not silently set.
_OPTION_NAMES = {"query_type": "use --dummy", "cache": "use --no-cache",
                 "validate": "use --no-validate", "get_query_payload": "it is not a parameter",
                 "timeout": "use --timeout"}


class CommandError(Exception):
    """A failure of a command, with the exit code to return."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.code = code


# -- argument parsing ---------------------------------------------------------------------

def _reject_constant(name):
    raise ValueError(name)


def parse_value(text):
    """The value of a ``key=value`` argument: JSON if it parses, else the text itself.

    ``NaN`` and ``Infinity`` stay text.

    Examples
    --------
    >>> parse_value("5"), parse_value("[1, 2]"), parse_value("2003-03-15"), parse_value("true")
    (5, [1, 2], '2003-03-15', True)
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def _parameter(text):
    from .auth import redact

    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected key=value, not {redact(text)!r}")
    return name, parse_value(value)


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def build_parser():
    """The `argparse.ArgumentParser` of the ``mmoda`` command."""
    from . import conf

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

    login = command("login", _cmd_login, "log in with an API token and show who it belongs to",
                    "Find a token (ODA_TOKEN, the keyring, ./.oda-token, ~/.oda-token, or a prompt "
                    "in a terminal), check it and show who it belongs to.")
    login.add_argument("--store", action="store_true",
                       help="save the token in the system keyring for later commands")
    login.add_argument("--token-file", metavar="PATH",
                       help="read the token from this file ('-' for standard input)")

    token = command("token", _cmd_token, "show the current token's owner, roles and expiry")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION")
    refresh = token_commands.add_parser(
        "refresh", parents=[common], help="get a token with a later expiry from the dispatcher",
        description="Get a token with a later expiry (needs the refresh-tokens role).")
    refresh.add_argument("--store", action="store_true",
                         help="write the new token where the old one came from (keyring or file)")
    refresh.set_defaults(handler=_cmd_token_refresh)

    command("instruments", _cmd_instruments, "list the instruments of the dispatcher")

    products = command("products", _cmd_products, "list the products of an instrument")
    products.add_argument("instrument", metavar="INSTRUMENT")

    parameters = command("parameters", _cmd_parameters,
                         "show the parameters of a product, with defaults and units")
    parameters.add_argument("instrument", metavar="INSTRUMENT")
    parameters.add_argument("product", metavar="PRODUCT")

    get = command("get", _cmd_get, "request a product and write it to files",
                  "Request a product and, unless --no-wait, wait for it and write its files. "
                  "Values of key=value are read as JSON when possible (5, 2.5, true, null, "
                  "[1, 2]), else kept as text.")
    get.add_argument("instrument", metavar="INSTRUMENT")
    get.add_argument("product", metavar="PRODUCT")
    get.add_argument("params", metavar="key=value", nargs="*", type=_parameter, default=[],
                     help="a parameter of the product (see 'mmoda parameters')")
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

    jobs = command("jobs", _cmd_jobs, "list the unfinished jobs submitted from this computer")
    jobs.add_argument("--all", action="store_true", help="also the jobs of other dispatchers")

    job = command("job", _cmd_job, "show a job's status; with --wait, write its products")
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
    parser.add_argument("--timeout", metavar="S", type=_seconds,
                        help="longest wait in seconds (default: conf.job_timeout)")


# -- output ---------------------------------------------------------------------------

def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(item) for item in value)
    text = str(value)
    return "" if text in ("None", "--") else text


def format_table(headers, rows):
    """Lines of a plain-text table, columns padded to their widest cell."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def _note(text):
    print(f"{PROG}: {text}", file=sys.stderr)


def _print_lines(lines):
    for line in lines:
        print(line)


# -- the session of one command -----------------------------------------------------------

class _Session:
    """The client of one command, logged in when a token is at hand."""

    def __init__(self, args):
        self.args = args
        self.job = None
        self.login_error = None
        self._client = None

    def client(self, *, auto_login=True):
        if self._client is None:
            from .core import MmodaClass
            from .exceptions import LoginError

            # Never prompt: a command without a token runs anonymously.
            client = MmodaClass(server=getattr(self.args, "server", None), prompt=not auto_login)
            if auto_login:
                try:
                    client.login()
                except LoginError as exc:
                    self.login_error = exc
            self._client = client
        return self._client


# -- commands -------------------------------------------------------------------------

def _cmd_login(session, args):
    client = session.client(auto_login=False)
    token = None
    if args.token_file:
        try:
            if args.token_file == "-":
                token = sys.stdin.read()
            else:
                token = Path(args.token_file).expanduser().read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read the token file {args.token_file}: "
                               f"{getattr(exc, 'strerror', None) or exc}", EXIT_LOGIN) from None
        if not token.strip():
            raise CommandError(f"the token file {args.token_file} is empty", EXIT_LOGIN)
    info = client.login(token, store_token=args.store)
    print(info)
    return EXIT_OK


def _describe_token(info):
    remaining = info.remaining.to_value("h")
    when = f"in {remaining:.1f} h" if remaining > 0 else f"{-remaining:.1f} h ago"
    rows = [("subject", info.subject), ("name", info.name), ("email", info.email),
            ("roles", ", ".join(info.roles) or "none"),
            ("expires", f"{info.expires.isot[:19]} UTC ({when})"), ("source", info.source)]
    return [f"{key + ':':<9} {value}" for key, value in rows if value]


def _logged_in_client(session):
    client = session.client()
    if session.login_error is not None:
        raise CommandError(f"not logged in: {session.login_error}", EXIT_LOGIN)
    return client


def _cmd_token(session, args):
    client = _logged_in_client(session)
    _print_lines(_describe_token(client.token_info()))
    return EXIT_OK


def _cmd_token_refresh(session, args):
    client = _logged_in_client(session)
    info = client.refresh_token(store=args.store)
    print(info)
    return EXIT_OK


def _cmd_instruments(session, args):
    _print_lines(session.client().list_instruments())
    return EXIT_OK


def _cmd_products(session, args):
    _print_lines(session.client().list_products(args.instrument))
    return EXIT_OK


def _cmd_parameters(session, args):
    table = session.client().get_parameters(args.instrument, args.product)
    columns = [("name", "name"), ("default", "default"), ("unit", "unit"),
               ("allowed_values", "allowed values"), ("min", "min"), ("max", "max")]
    rows = [[row[name] for name, _ in columns] for row in table]
    # Leave out the restriction columns that no parameter uses.
    keep = [i for i, (name, _) in enumerate(columns)
            if i < 3 or any(_cell(row[i]) for row in rows)]
    _print_lines(format_table([columns[i][1] for i in keep], [[row[i] for i in keep] for row in rows]))
    return EXIT_OK


def _request_parameters(pairs):
    params = {}
    for name, value in pairs:
        if name in _OPTION_NAMES:
            raise CommandError(f"{name} cannot be given as key=value: {_OPTION_NAMES[name]}",
                               EXIT_USAGE)
        if name in params:
            raise CommandError(f"the parameter {name!r} is given twice", EXIT_USAGE)
        params[name] = value
    return params


def _write_products(products, args):
    try:
        paths = products.write(args.output, overwrite=args.overwrite)
    except FileExistsError as exc:
        raise CommandError(f"{exc}".replace("use overwrite=True", "use --overwrite")) from None
    if not paths:
        _note(f"MMODA job {products.job_id} is done but returned no products")
    _print_lines(str(path) for path in paths)
    return EXIT_OK


def _print_job(job):
    from .jobs import summarize_reports

    rows = [("job_id", job.job_id), ("session_id", job.session_id),
            ("instrument", job.instrument), ("product", job.product), ("status", job.status)]
    summary = summarize_reports(job.reports)
    if summary:
        rows.append(("progress", summary))
    _print_lines(f"{key + ':':<11} {value}" for key, value in rows)


def _resume_hint(job, output="."):
    command = f"{PROG} job {job.job_id} --session-id {job.session_id} --wait"
    if str(output) != ".":
        command += f" -o {output}"
    return command


def _cmd_get(session, args):
    params = _request_parameters(args.params)
    client = session.client()
    job = client.submit(args.instrument, args.product, query_type="Dummy" if args.dummy else "Real",
                        cache=not args.no_cache, validate=not args.no_validate, **params)
    session.job = job
    if not args.wait:
        if job.status == "failed":
            job.result()  # raises the job's error
        _print_job(job)
        if job.finished:
            _note("the job is finished: run the same command without --no-wait to write its "
                  "products (from the cache)")
        else:
            _note(f"resume it with: {_resume_hint(job)}")
        return EXIT_OK
    if not job.finished:
        _note(f"MMODA job {job.job_id} is {job.status} (session {job.session_id}); waiting for it. "
              "Interrupting leaves it running.")
    return _write_products(job.result(args.timeout), args)


def _cmd_jobs(session, args):
    client = session.client()
    table = client.list_jobs()
    columns = ["job_id", "session_id", "instrument", "product", "status", "submitted", "updated"]
    if args.all:
        columns.append("url")
        rows = list(table)
    else:
        rows = [row for row in table if str(row["url"]).rstrip("/") == client.server]
    if not rows:
        _note("no unfinished jobs" + ("" if args.all else f" for {client.server}"))
        return EXIT_OK
    # ISO times to the second, in UTC
    times = {"submitted", "updated"}
    _print_lines(format_table(
        [f"{name} (UTC)" if name in times else name for name in columns],
        [[str(row[name])[:19].replace("T", " ") if name in times else row[name] for name in columns]
         for row in rows]))
    return EXIT_OK


def _cmd_job(session, args):
    client = session.client()
    known = [row for row in client.list_jobs() if row["job_id"] == args.job_id
             and (args.session_id is None or row["session_id"] == args.session_id)]
    if not known:
        raise CommandError(
            f"job {args.job_id} is not among the unfinished jobs submitted from this computer "
            f"(see '{PROG} jobs'); a finished job is forgotten: repeat its '{PROG} get' command to "
            "get its products (from the cache)", EXIT_USAGE)
    job = client.get_job(args.job_id, args.session_id)
    session.job = job
    if args.wait:
        return _write_products(job.result(args.timeout), args)
    _print_job(job)
    if job.status == "failed":
        job.result()  # raises the job's error
    if job.finished:
        # A finished job leaves the journal: this is the last chance to get its files by id.
        _note(f"the job is done: its products go to {args.output}")
        return _write_products(job.result(), args)
    return EXIT_OK


# -- logging, warnings, errors ------------------------------------------------------------------

def _log():
    from astroquery import log
    return log


class _Redact(logging.Filter):
    def filter(self, record):
        from .auth import redact

        record.msg = redact(record.getMessage())
        record.args = None
        return True


class _Formatter(logging.Formatter):
    def format(self, record):
        return f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"


class _Output:
    """Send the package's log and Python warnings to stderr, token-free, for one command."""

    def __init__(self, verbosity):
        self.level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 \
            else logging.DEBUG
        self._saved = []
        self._warnings = None

    def __enter__(self):
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_Redact())
        handler.setFormatter(_Formatter())
        # astroquery's own handler prints INFO to stdout, where the command's output goes.
        for logger, level in ((_log(), self.level), (logging.getLogger("urllib3"), logging.WARNING)):
            self._saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
            logger.handlers[:] = [handler]
            logger.setLevel(level)
            logger.propagate = False
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = _show_warning
        return self

    def __exit__(self, *exc_info):
        self._warnings.__exit__(*exc_info)
        for logger, handlers, level, propagate in self._saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        return False


def _show_warning(message, category, filename, lineno, file=None, line=None):
    from .auth import redact

    print(f"{PROG}: warning: {_one_line(redact(str(message)))}", file=sys.stderr)


def _one_line(text):
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def _exit_code(exc):
    from astroquery.exceptions import (InvalidQueryError, LoginError, RemoteServiceError,
                                       TimeoutError)

    if isinstance(exc, CommandError):
        return exc.code
    if isinstance(exc, LoginError):
        return EXIT_LOGIN
    if isinstance(exc, InvalidQueryError):
        return EXIT_USAGE
    if isinstance(exc, TimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, RemoteServiceError):
        return EXIT_ERROR
    return EXIT_ERROR


def _error_message(exc, session):
    code = _exit_code(exc)
    job = session.job
    if code == EXIT_TIMEOUT and job is not None and job.job_id:
        output = getattr(session.args, "output", ".")
        return (f"MMODA job {job.job_id} is still {job.status}; it goes on. "
                f"Resume it with: {_resume_hint(job, output)}")
    text = str(exc) or type(exc).__name__
    if code == EXIT_ERROR and not isinstance(exc, (CommandError, OSError)) \
            and not _is_service_error(exc):
        text = f"{type(exc).__name__}: {text}"
    return text


def _is_service_error(exc):
    from astroquery.exceptions import RemoteServiceError
    return isinstance(exc, RemoteServiceError)


def _report(message, *, verbosity=0, exc=None):
    from .auth import redact

    if exc is not None and verbosity >= 2:
        import traceback
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    print(f"{PROG}: error: {_one_line(redact(message))}", file=sys.stderr)


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
    session = _Session(args)
    with _Output(verbosity):
        try:
            return args.handler(session, args)
        except KeyboardInterrupt:
            job = session.job
            message = "interrupted"
            if job is not None and job.job_id and not job.finished:
                message += (f"; MMODA job {job.job_id} goes on. Resume it with: "
                            f"{_resume_hint(job, getattr(args, 'output', '.'))}")
            elif args.command == "get":
                message += ("; a job already submitted goes on: repeat the command to resume it "
                            f"(see '{PROG} jobs')")
            _report(message)
            return EXIT_INTERRUPTED
        except Exception as exc:  # every failure becomes one line and an exit code
            _report(_error_message(exc, session), verbosity=verbosity, exc=exc)
            return _exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
