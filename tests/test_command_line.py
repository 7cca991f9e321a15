"""Mistakes on the command line: an option that would do nothing is refused,
a range is read as written, a --set typo is the command line's fault."""

from __future__ import annotations

import pytest
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.cli.options import parse_hop_limits

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
NGINX = str(TOPOLOGIES / "nginx-reverse-proxy.yaml")


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


@pytest.mark.parametrize("args,message", [
    (["sweep", "--hop-limit", "2"],
     "--hop-limit does nothing in sweep, which tries each hop limit of --hop-limits: use "
     "--hop-limits N, or check --hop-limit N"),
    (["demo", "--delay", "1"], "--delay does nothing without --auto"),
    (["demo", "--list", "--from", "app"], "--from does nothing with --list"),
    (["generate", "fleet", "--instances", "2", "--containers", "2", "--compact", "--seed", "3"],
     "--seed does nothing with --compact"),
    (["emulate", "--cleanup", "--hop-limits", "1-2"],
     "--hop-limits does nothing with --cleanup"),
    (["emulate", "--cleanup", NGINX], "--cleanup takes no PATHS"),
    (["emulate", "--dry-run", "--timeout", "2", NGINX], "--timeout does nothing with --dry-run"),
])
def test_an_option_that_would_do_nothing_is_refused(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_sweep_does_not_offer_a_hop_limit_it_would_ignore():
    assert "--hop-limit " not in run("sweep", "--help").output
    assert "--hop-limits" in run("sweep", "--help").output


def test_defaults_of_those_options_are_fine():
    assert run("generate", "fleet", "--instances", "2", "--containers", "2",
               "--compact").exit_code == 0
    assert run("demo", "--auto", "--delay", "0").exit_code == 0


def test_a_reversed_range_says_so():
    result = run("sweep", "--hop-limits", "4-2")
    assert result.exit_code == 2
    assert "the range '4-2' is reversed: write 2-4" in result.output
    assert "hop limits are" not in result.output


@pytest.mark.parametrize("text", ["0-2", "3-65", "0"])
def test_a_range_outside_1_to_64_says_the_bounds(text):
    result = run("sweep", "--hop-limits", text)
    assert result.exit_code == 2
    assert f"hop limits are 1..64, got '{text}'" in result.output


def test_ranges_are_read_as_written():
    assert parse_hop_limits("1-3,16") == [1, 2, 3, 16]
    assert parse_hop_limits("8,2") == [2, 8]


@pytest.mark.parametrize("value,message", [
    ("ngin.adds_xff=true", "error: --set ngin.adds_xff ({}): no node 'ngin' (did you mean "
     "'nginx'?)"),
    ("nginx.adds_xf=true", "error: --set nginx.adds_xf ({}): unknown key 'adds_xf' for a "
     "proxy node (did you mean 'adds_xff'?)"),
    ("nginx.adds_xff=maybe", "error: --set nginx.adds_xff ({}): expected true or false, "
     "got 'maybe'"),
    ("nginx.methods=[GET,PUTT]", "error: --set nginx.methods ({}): unknown HTTP method "
     "'PUTT' (did you mean 'PUT'?)"),
])
def test_a_set_typo_is_reported_against_the_command_line_not_a_line_of_the_file(value,
                                                                                 message):
    result = run("check", NGINX, "--set", value)
    assert result.exit_code == 2
    assert message.format(NGINX) in result.output
    assert f"{NGINX}:" not in result.output  # no line of the file is blamed


def test_a_set_typo_in_sarif_names_the_option(tmp_path):
    sarif = tmp_path / "x.sarif"
    run("check", NGINX, "--set", "nginx.adds_xf=true", "--output", f"sarif:{sarif}")
    assert "--set nginx.adds_xf: unknown key 'adds_xf'" in sarif.read_text()
