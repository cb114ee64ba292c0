"""What the ``mmoda`` command prints: tables, exit codes and messages of failures."""
from astroquery.exceptions import InvalidQueryError, LoginError, RemoteServiceError, TimeoutError

from astroquery_mmoda.cli import EXIT_ERROR, EXIT_LOGIN, EXIT_TIMEOUT, EXIT_USAGE, format_table
from astroquery_mmoda.cli.output import exit_code
from astroquery_mmoda.cli.values import CommandError


def test_format_table():
    lines = format_table(["name", "unit"], [["p", "W"], ["src_name", None]])
    assert lines == ["name      unit", "--------  ----", "p         W", "src_name"]


def test_exit_codes_of_failures():
    assert exit_code(CommandError("x", EXIT_USAGE)) == EXIT_USAGE
    assert exit_code(LoginError("x")) == EXIT_LOGIN
    assert exit_code(InvalidQueryError("x")) == EXIT_USAGE
    assert exit_code(TimeoutError("x")) == EXIT_TIMEOUT
    assert exit_code(RemoteServiceError("x")) == EXIT_ERROR
    assert exit_code(ValueError("x")) == EXIT_ERROR
