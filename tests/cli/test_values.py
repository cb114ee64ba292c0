"""The values of the ``mmoda`` command: ``key=value`` arguments, exit codes."""
import argparse

import pytest

from astroquery_mmoda.cli import EXIT_USAGE, parse_value
from astroquery_mmoda.cli.values import CommandError, parameter, request_parameters, seconds


def test_parse_value():
    assert parse_value("5") == 5 and parse_value("2.5") == 2.5
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value("[1, 2]") == [1, 2] and parse_value('"5"') == "5"
    assert parse_value("2003-03-15T23:27:40") == "2003-03-15T23:27:40"
    assert parse_value("4U 1700-377") == "4U 1700-377"
    assert parse_value("NaN") == "NaN" and parse_value("Infinity") == "Infinity"
    assert parse_value("") == ""


def test_parameter_and_seconds_are_argparse_types():
    assert parameter(" T1 =2003-03-15") == ("T1", "2003-03-15")
    assert parameter("p=5") == ("p", 5)
    with pytest.raises(argparse.ArgumentTypeError, match="expected key=value, not 'p'"):
        parameter("p")
    assert seconds("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive, not 0"):
        seconds("0")
    with pytest.raises(argparse.ArgumentTypeError, match="not a number of seconds: 'x'"):
        seconds("x")


def test_request_parameters_refuse_options_and_repeats():
    assert request_parameters([("p", 5), ("q", "x")]) == {"p": 5, "q": "x"}
    with pytest.raises(CommandError, match="cache cannot be given as key=value: use --no-cache") as raised:
        request_parameters([("cache", False)])
    assert raised.value.code == EXIT_USAGE
    with pytest.raises(CommandError, match="the parameter 'p' is given twice"):
        request_parameters([("p", 5), ("p", 6)])
