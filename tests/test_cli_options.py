"""One CLI convention: list options, registry choices, --settings, and a light ``--help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from argalign.cli import build_parser

LIST_OPTIONS = [
    (["prepare"], "--configs", "configs"),
    (["prepare"], "--splits", "splits"),
    (["run"], "--configs", "configs"),
    (["run"], "--models", "models"),
    (["pipeline"], "--splits", "splits"),
    (["optimize", "--mode", "A"], "--configs", "configs"),
    (["publish", "--org", "o", "--repo-name", "r"], "--configs", "configs"),
]


@pytest.mark.parametrize(("command", "flag", "dest"), LIST_OPTIONS)
@pytest.mark.parametrize("given", [["a", "b"], ["a,b"], ["a,", "b"], ["a", "b", "a"]])
def test_every_list_option_takes_spaces_and_commas(command, flag, dest, given):
    args = build_parser().parse_args([*command, flag, *given])
    assert getattr(args, dest) == ["a", "b"]


def test_modes_are_checked_against_the_registry(capsys):
    assert build_parser().parse_args(["run", "--modes", "B,A"]).modes == ["B", "A"]
    assert build_parser().parse_args(["run"]).modes is None  # every registered mode
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--modes", "A,C"])
    assert "invalid choice: 'C'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["align", "--mode", "A", "--in", "i", "--out", "o"],
                                     ["score", "--in", "i", "--out", "o"],
                                     ["optimize", "--mode", "B"], ["run"], ["pipeline"]])
def test_the_model_settings_are_named_by_settings(command, capsys):
    assert build_parser().parse_args([*command, "--settings", "s.yaml"]).settings == "s.yaml"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--config", "s.yaml"])
    assert "unrecognized arguments: --config" in capsys.readouterr().err


def test_a_subcommand_help_lists_the_registry_choices(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["optimize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "one of A, B" in text and "one of gold, bootstrap, mipro, gepa" in text


def test_help_imports_no_dspy_mlflow_or_datasets():
    code = ("import sys\nfrom argalign import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('dspy', 'mlflow', 'datasets', 'litellm') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    assert "prepare" in done.stdout and "codes" in done.stdout  # the help was printed
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- numeric options: a value out of range is a usage error naming the option (#21 item 19) ---

NUMERIC_OPTIONS = [
    (["prepare"], "-n", ["0", "-1"]),
    (["prepare"], "--seed", ["-1"]),
    (["validate", "--original", "o", "--aligned", "a", "--mode", "A"], "--max-user-change", ["-1"]),
    (["clean"], "--max-user-change", ["-5"]),
    (["run"], "--trace-sample", ["-5"]),
    (["run"], "--workers", ["-1"]),
    (["run"], "--accept-retries", ["-1"]),
    (["run"], "--max-errors", ["-1"]),
    (["run"], "--seed", ["-3"]),
    (["pipeline"], "-n", ["0", "-2"]),
    (["pipeline"], "--trace-sample", ["-1"]),
    (["optimize", "--mode", "A"], "--train", ["0"]),
    (["optimize", "--mode", "A"], "--val", ["0"]),
    (["optimize", "--mode", "A"], "--budget-calls", ["0"]),
    (["optimize", "--mode", "A"], "--candidates", ["0"]),
    (["optimize", "--mode", "A"], "--max-demos", ["-1"]),
    (["optimize", "--mode", "A"], "--seed", ["-1"]),
]


@pytest.mark.parametrize(("command", "flag", "values"), NUMERIC_OPTIONS)
def test_a_numeric_option_out_of_range_is_exit_2_naming_it(command, flag, values, capsys):
    # The parser alone: a regression must not go on to run the command.
    for value in [*values, "x", "1.5"]:
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args([*command, flag, value])
        assert info.value.code == 2  # main() returns it as the exit code
        err = capsys.readouterr().err
        assert f"argument {flag}" in err and value in err, err


@pytest.mark.parametrize(("command", "flag", "value", "dest", "expected"), [
    (["run"], "--trace-sample", "0", "trace_sample", 0),
    (["run"], "--workers", "0", "workers", 0),
    (["run"], "--max-errors", "0", "max_errors", 0),
    (["prepare"], "-n", "1", "n", 1),
    (["optimize", "--mode", "A"], "--max-demos", "0", "max_demos", 0),
])
def test_the_edge_of_a_numeric_range_is_accepted(command, flag, value, dest, expected):
    assert getattr(build_parser().parse_args([*command, flag, value]), dest) == expected
