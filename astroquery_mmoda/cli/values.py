"""The values of the ``mmoda`` command: exit codes, ``key=value`` arguments, errors."""
import argparse
import json

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_LOGIN", "EXIT_TIMEOUT", "EXIT_INTERRUPTED",
           "PROG", "CommandError", "parameter", "parse_value", "request_parameters", "seconds"]

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
    except (ValueError, RecursionError):  # not JSON, or nested too deeply: sent as the text it is
        return text


def parameter(text):
    """``(name, value)`` of a ``key=value`` argument (an `argparse` type)."""
    from ..redaction import redact

    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected key=value, not {redact(text)!r}")
    return name, parse_value(value)


def seconds(text):
    """A positive number of seconds (an `argparse` type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def request_parameters(pairs):
    """The product parameters of ``key=value`` pairs, none twice and none an option of the command."""
    params = {}
    for name, value in pairs:
        if name in _OPTION_NAMES:
            raise CommandError(f"{name} cannot be given as key=value: {_OPTION_NAMES[name]}",
                               EXIT_USAGE)
        if name in params:
            raise CommandError(f"the parameter {name!r} is given twice", EXIT_USAGE)
        params[name] = value
    return params
