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


def test_the_log_of_a_command_is_token_free_with_the_one_redacting_filter(capsys):
    import logging
    import secrets

    import jwt
    from astroquery import log

    from astroquery_mmoda.cli.output import Output
    from astroquery_mmoda.redaction import RedactingFilter

    token = jwt.encode({"sub": "x@example.org", "exp": 4102444800}, secrets.token_hex(32),
                       algorithm="HS256")
    with Output(1):
        (handler,) = log.handlers
        assert [type(f) for f in handler.filters] == [RedactingFilter]
        log.info(f"GET /run_analysis?token={token}")
        log.warning("refused: %s", ValueError(f"token={token}"))  # a non-text argument
        logging.getLogger("urllib3").warning("GET /?token=%s", token)
    err = capsys.readouterr().err
    assert err.splitlines() == ["mmoda: info: GET /run_analysis?token=<token>",
                                "mmoda: warning: refused: token=<token>",
                                "mmoda: warning: GET /?token=<token>"]
