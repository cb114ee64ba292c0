"""What the ``mmoda`` command prints: tables, notes, token-free log and warnings, errors."""
import logging
import re
import shlex
import sys
import warnings

from .values import EXIT_ERROR, EXIT_LOGIN, EXIT_TIMEOUT, EXIT_USAGE, PROG, CommandError

__all__ = ["format_table"]

# C0 and C1 controls but tab and newline, and DEL: what could move a terminal's cursor, retitle it or
# hide text (escape sequences from a hostile server).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text):
    """``text`` without control characters, each shown as ``?``."""
    return _CONTROL_RE.sub("?", str(text))


def cell(value):
    """The text of a table cell: empty for None and masked values, lists joined by commas."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(item) for item in value)
    text = printable(value)
    return "" if text in ("None", "--") else text


def format_table(headers, rows):
    """Lines of a plain-text table, columns padded to their widest cell."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def note(text):
    """Print a message for the user to stderr (stdout holds only results)."""
    print(printable(f"{PROG}: {text}"), file=sys.stderr)


def print_lines(lines):
    """Print each line to stdout."""
    for line in lines:
        print(printable(line))


def resume_hint(job, output="."):
    """The command that resumes ``job`` and writes its products to ``output``."""
    words = [PROG, "job", job.job_id, "--session-id", job.session_id, "--wait"]
    if str(output) != ".":
        words += ["-o", str(output)]
    return " ".join(shlex.quote(str(word)) for word in words)


def _log():
    from astroquery import log
    return log


class _Formatter(logging.Formatter):
    def format(self, record):
        # The redacting filter installed with this formatter has made the message safe.
        return printable(f"{PROG}: {record.levelname.lower()}: {record.getMessage()}")


class Output:
    """Send the package's log and Python warnings to stderr, token-free, for one command."""

    def __init__(self, verbosity):
        self.level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 \
            else logging.DEBUG
        self._saved = []
        self._warnings = None

    def __enter__(self):
        from ..redaction import RedactingFilter

        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(RedactingFilter())
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
    from ..redaction import redact

    print(printable(f"{PROG}: warning: {_one_line(redact(str(message)))}"), file=sys.stderr)


def _one_line(text):
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def exit_code(exc):
    """The exit code of a failure."""
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


def error_message(exc, session):
    """The one-line message of a failure (for a timeout: how to resume the job)."""
    code = exit_code(exc)
    job = session.job
    if code == EXIT_TIMEOUT and job is not None and job.job_id:
        output = getattr(session.args, "output", ".")
        return (f"MMODA job {job.job_id} is still {job.status}; it goes on. "
                f"Resume it with: {resume_hint(job, output)}")
    text = str(exc) or type(exc).__name__
    if code == EXIT_ERROR and not isinstance(exc, (CommandError, OSError)) \
            and not _is_service_error(exc):
        text = f"{type(exc).__name__}: {text}"
    return text


def _is_service_error(exc):
    from astroquery.exceptions import RemoteServiceError
    return isinstance(exc, RemoteServiceError)


def report(message, *, verbosity=0, exc=None):
    """Print an error line to stderr, token-free (with the traceback at ``-vv``)."""
    from ..redaction import redact

    if exc is not None and verbosity >= 2:
        import traceback
        print(printable(redact("".join(traceback.format_exception(exc)))), file=sys.stderr, end="")
    print(printable(f"{PROG}: error: {_one_line(redact(message))}"), file=sys.stderr)
