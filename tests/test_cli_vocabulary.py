"""One CLI vocabulary (#22 item 5): every flag name means one thing in every command that has
it, ``--data`` is the data folder wherever a command touches it, ``--out`` is one output file,
old spellings fail naming the new flag, and the README lists exactly what the parser has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from argalign.cli import build_parser, main
from argalign.cli.options import EXIT_CONFIG, Registry
from argalign.cli.reference import BEGIN, END, flag_table, flags, replace_table, subcommands
from argalign.core.defaults import DEFAULT_DATA

README = Path(__file__).resolve().parents[1] / "README.md"

# The commands that read or write the data folder, and those that do not: a new command must
# be put in one of the two.
DATA_COMMANDS = {"prepare", "run", "merge", "clean", "report", "pipeline", "publish", "export"}
OTHER_COMMANDS = {"validate", "settings", "codes", "align", "score", "optimize", "compare"}

COMMANDS = subcommands(build_parser())


def _choices(action: argparse.Action) -> object:
    """What a flag may take, without importing a registry: its module and attribute."""
    choices = action.const if action.nargs == "+" and action.const is not None else action.choices
    if isinstance(choices, Registry):
        return (choices.module, choices.attribute)
    return tuple(choices) if choices is not None else None


def gist(help_text: str | None) -> str:
    """What a flag is, before the first ``:``, ``;``, ``,`` or ``(`` of its help."""
    return re.split(r"[:;,(]", help_text or "", maxsplit=1)[0].strip()


def meaning(action: argparse.Action) -> tuple:
    return (type(action).__name__, action.nargs, getattr(action.type, "__name__", action.type),
            _choices(action), action.metavar, gist(action.help))


def _by_flag() -> dict[str, dict[str, argparse.Action]]:
    table: dict[str, dict[str, argparse.Action]] = {}
    for name, command in COMMANDS.items():
        for action in flags(command):
            for flag in action.option_strings:
                table.setdefault(flag, {})[name] = action
    return table


def test_every_command_is_sorted_into_data_or_not():
    assert set(COMMANDS) == DATA_COMMANDS | OTHER_COMMANDS
    assert not DATA_COMMANDS & OTHER_COMMANDS


@pytest.mark.parametrize("flag", sorted(f for f, where in _by_flag().items() if len(where) > 1))
def test_a_flag_name_has_one_meaning_in_every_command(flag):
    where = _by_flag()[flag]
    meanings = {name: meaning(action) for name, action in where.items()}
    assert len(set(meanings.values())) == 1, meanings
    assert all(gist(action.help) for action in where.values()), f"{flag} has no help"


def test_every_flag_says_what_it_is():
    missing = [f"{name} {action.option_strings[0]}" for name, command in COMMANDS.items()
               for action in flags(command) if not action.help]
    assert missing == []


@pytest.mark.parametrize("name", sorted(DATA_COMMANDS))
def test_data_is_the_data_folder_wherever_a_command_touches_it(name):
    (data,) = [a for a in flags(COMMANDS[name]) if "--data" in a.option_strings]
    assert (data.option_strings, data.dest, data.metavar, data.default) == (
        ["--data"], "data", "DIR", DEFAULT_DATA)
    assert data.help.startswith("the data folder: ")
    # No second name for it: no other flag of the command defaults to the data folder.
    assert [a for a in flags(COMMANDS[name]) if a.default == DEFAULT_DATA] == [data]


@pytest.mark.parametrize("name", sorted(OTHER_COMMANDS))
def test_a_command_that_leaves_the_data_folder_alone_has_no_data(name):
    assert all("--data" not in a.option_strings for a in flags(COMMANDS[name]))


def test_out_is_always_one_output_file():
    outs = {name: a for name, command in COMMANDS.items() for a in flags(command)
            if "--out" in a.option_strings}
    assert set(outs) == {"validate", "align", "score"}
    for action in outs.values():
        assert (action.option_strings, action.metavar) == (["--out"], "FILE")
        assert action.help.startswith("the output file")
    # A folder or a page has a name of its own.
    folders = {(name, a.option_strings[0]) for name, command in COMMANDS.items()
               for a in flags(command) if a.metavar == "DIR"}
    assert folders == {*((name, "--data") for name in DATA_COMMANDS), ("export", "--out-dir"),
                       ("publish", "--dry-run"), ("pipeline", "--publish-dry-run")}


def test_validate_refuses_a_folder_as_out(tmp_path, sample_rows, caplog):
    from argalign.core.jsonl import write_jsonl_atomic

    write_jsonl_atomic(tmp_path / "o.jsonl", sample_rows[:1])
    (tmp_path / "folder").mkdir()
    assert main(["validate", "--original", str(tmp_path / "o.jsonl"), "--aligned",
                 str(tmp_path / "o.jsonl"), "--mode", "A", "--out", str(tmp_path / "folder")]) == EXIT_CONFIG
    assert "--out" in caplog.text and "is a folder" in caplog.text
    assert list((tmp_path / "folder").iterdir()) == []


# Old spellings a script may still use: each is a usage error naming its new flag.
RENAMED = [
    (["prepare", "--out", "data"], "--data DIR"),
    (["pipeline", "--out", "data"], "--data DIR"),
    (["validate", "--original", "o", "--aligned", "a", "--mode", "A", "--report", "r"], "--out FILE"),
    (["score", "--in", "i", "--out", "o", "--model", "m"], "--judge NAME"),
    (["run", "--program", "A=a.json"], "--programs MODE=PATH"),
    (["pipeline", "--program", "none"], "--programs MODE=PATH"),
    (["report", "--out", "r.html"], "--page FILE"),
    (["report", "--run", "r"], "--run-name NAME"),
    (["optimize", "--mode", "A", "--force"], "--recompile"),
    (["export", "--format", "openai", "--in", "i", "--out", "o"], "--out-dir DIR"),
    (["export", "--format", "openai", "--in", "i", "--out-dir", "o", "--thinking", "drop"],
     "--no-keep-thinking"),
]


@pytest.mark.parametrize(("argv", "new"), RENAMED, ids=[" ".join(a[:1] + a[-2:]) for a, _ in RENAMED])
def test_an_old_spelling_fails_naming_the_new_flag(argv, new, capsys):
    assert main(argv) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "was renamed: use" in err and new in err, err


def test_old_spellings_are_hidden_from_help(capsys):
    for name in ("prepare", "report", "export"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, "--help"])
        text = capsys.readouterr().out
        assert " --out " not in text and "--run " not in text and "--thinking" not in text, name


def test_export_reads_data_or_in_not_both(capsys):
    assert main(["export", "--format", "openai", "--data", "d", "--in", "i", "--out-dir", "o"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --- the README ------------------------------------------------------------------------------

def test_the_readme_flag_table_is_what_the_parser_has():
    text = README.read_text("utf-8")
    start, end = text.find(BEGIN), text.find(END)
    assert 0 <= start < end, f"README.md has no {BEGIN} block"
    assert text[start:end + len(END)] == flag_table(build_parser()), (
        "README.md's flag table is stale: python -m argalign.cli.reference README.md")


def test_the_flag_table_lists_every_command_and_flag():
    table = flag_table(build_parser())
    rows = {line.split("`")[1].split()[1]: line for line in table.splitlines()[3:-1]}
    assert list(rows) == list(COMMANDS)
    for name, command in COMMANDS.items():
        for action in flags(command):
            assert all(f in rows[name] for f in action.option_strings), (name, action.option_strings)
        assert "--help" not in rows[name]


def test_replace_table_keeps_the_text_around_it():
    text = f"before\n{BEGIN}\nold\n{END}\nafter\n"
    assert replace_table(text, f"{BEGIN}\nnew\n{END}") == f"before\n{BEGIN}\nnew\n{END}\nafter\n"
    with pytest.raises(ValueError, match="no"):
        replace_table("no table here", "x")


_MENTION = re.compile(r"argalign (\w[\w-]*)([^`|\n]*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-n)\b")


def test_every_readme_command_uses_flags_its_command_has():
    """Each ``argalign CMD ... --flag`` in the README, in prose, tables and examples alike."""
    text = README.read_text("utf-8")
    wrong = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for match in _MENTION.finditer(line):
            name, rest = match.groups()
            if name not in COMMANDS:
                continue
            have = {f for a in flags(COMMANDS[name]) for f in a.option_strings} | {"--help"}
            rest = rest.split("argalign ")[0].split(" #")[0]  # up to the next command or comment
            wrong += [f"README.md:{lineno}: argalign {name} {flag}" for flag in _FLAG.findall(rest)
                      if flag not in have]
    assert wrong == []


def test_export_without_a_cleaned_folder_names_data_and_in(tmp_path, caplog):
    (tmp_path / "data").mkdir()
    argv = ["export", "--format", "openai", "--data", str(tmp_path / "data"),
            "--out-dir", str(tmp_path / "out")]
    assert main(argv) == EXIT_CONFIG
    assert f"--data {tmp_path / 'data'}: no {tmp_path / 'data' / 'cleaned'}" in caplog.text
    assert "--in" in caplog.text and not (tmp_path / "out").exists()
