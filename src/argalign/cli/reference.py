"""The README's flag table, written from the parser: every command and every flag it takes.

``python -m argalign.cli.reference README.md`` rewrites the table between the two markers;
``tests/test_cli_vocabulary.py`` fails when the README's copy is not what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from argalign.cli.options import Renamed

BEGIN = "<!-- flags: written by python -m argalign.cli.reference README.md -->"
END = "<!-- /flags -->"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``argalign``, by name, in the order they are registered."""
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def flags(command: argparse.ArgumentParser) -> list[argparse.Action]:
    """A command's options as its ``--help`` shows them (no ``--help``, no old spellings)."""
    return [a for a in command._actions if a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, Renamed))]


def usage(action: argparse.Action) -> str:
    """One flag as the table shows it: ``--data DIR``, ``--configs CONFIG …``, ``[--debug]``."""
    names = "/".join(action.option_strings)
    if action.nargs == 0:
        text = names
    else:
        metavar = action.metavar or action.dest.upper()
        many = " …" if action.nargs in ("+", "*") else ""
        text = f"{names} {metavar}{many}"
    return f"`{text}`" if action.required else f"`[{text}]`"


def flag_table(parser: argparse.ArgumentParser) -> str:
    """The markdown table: one row per command, its flags in the order ``--help`` lists them."""
    lines = [BEGIN, "| command | flags |", "|---|---|"]
    for name, command in subcommands(parser).items():
        cells = " ".join(usage(a) for a in flags(command)) or "(none)"
        lines.append(f"| `argalign {name}` | {cells} |")
    return "\n".join([*lines, END])


def replace_table(text: str, table: str) -> str:
    """``text`` with the part from :data:`BEGIN` to :data:`END` replaced by ``table``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block to replace")
    return text[:start] + table + text[end + len(END):]


def main(argv: list[str] | None = None) -> int:
    from argalign.cli import build_parser

    (readme,) = argv if argv is not None else sys.argv[1:]
    path = Path(readme)
    path.write_text(replace_table(path.read_text("utf-8"), flag_table(build_parser())), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
