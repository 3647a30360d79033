"""What every subcommand shares: list options, registry choices, the flags of several commands
(each defined once, so a flag name keeps one meaning), old spellings refused, exit codes, emit().

Subcommands are registered whenever the parser is built, also for ``argalign --help``, so a
registry (modes, comparisons, optimizers, export formats) is named here by module and
attribute and only imported when an option of it is checked or its help is printed: building
the parser imports no DSPy, MLflow or datasets.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from argalign.core.defaults import DEFAULT_COMPARISON, DEFAULT_DATA, DEFAULT_THINKING

# What every command returns: done, the step failed (or found rejected rows), the user's
# configuration is wrong (also a usage error); and, as a shell reports them, a command ended by
# Ctrl-C (128 + SIGINT) or by SIGTERM (128 + SIGTERM).
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130, 143


def emit(obj: object) -> None:
    """A command's result on stdout, as indented JSON (logs go to stderr)."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


class Registry:
    """The names of a registry (``MODES``, ``COMPARISONS`` ...), looked up on first use."""

    def __init__(self, module: str, attribute: str):
        self.module, self.attribute = module, attribute

    def names(self) -> list[str]:
        return list(getattr(importlib.import_module(self.module), self.attribute))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __len__(self) -> int:
        return len(self.names())


MODES = Registry("argalign.modes", "MODES")
THINKING_SCOPES = Registry("argalign.modes.base", "THINKING_SCOPES")
COMPARISONS = Registry("argalign.scoring.metrics", "COMPARISONS")
OPTIMIZERS = Registry("argalign.programs.optimizers", "OPTIMIZERS")
FORMATS = Registry("argalign.stages.export", "CONVERTERS")


def add_choice(parser: argparse.ArgumentParser, flag: str, registry: Registry, *,
               metavar: str, help: str = "", **kwargs: Any) -> None:
    """One value from a registry; the help lists the choices when it is shown."""
    parser.add_argument(flag, choices=registry, metavar=metavar,
                        help=f"{help}{'; ' if help else ''}one of %(choices)s", **kwargs)


class _ListAction(argparse.Action):
    """Values given space- or comma-separated, or both; repeated names kept once, in order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        names = list(dict.fromkeys(v for value in values for v in value.replace(",", " ").split()))
        allowed = self.const
        if allowed is not None:
            known = list(allowed)
            for name in names:
                if name not in known:
                    parser.error(f"argument {option_string}: invalid choice: {name!r} "
                                 f"(choose from {', '.join(known)})")
        setattr(namespace, self.dest, names)


def add_list(parser: argparse.ArgumentParser, flag: str, *, default: Sequence[str] | None = None,
             choices: Registry | Sequence[str] | None = None, metavar: str = "NAME",
             help: str = "") -> None:
    """A list option: ``--configs a b``, ``--configs a,b`` and ``--configs a, b`` alike."""
    parser.add_argument(flag, nargs="+", action=_ListAction, const=choices, metavar=metavar,
                        default=list(default) if default is not None else None,
                        help=f"{help}{' ' if help else ''}(space- or comma-separated)")


def count(minimum: int) -> Callable[[str], int]:
    """An ``argparse`` type: a whole number of at least ``minimum`` (0 or 1, as is meaningful)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    parse.__name__ = f"count >= {minimum}"
    return parse


# The numeric option types: every count, limit and seed of every command is one of these.
NON_NEGATIVE, POSITIVE = count(0), count(1)


def add_settings(parser: argparse.ArgumentParser) -> None:
    """``--settings FILE``: the models YAML (the packaged one when not given)."""
    parser.add_argument("--settings", default=None, metavar="FILE",
                        help="model settings YAML (default: the packaged one)")


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model NAME``: the task model, the one that rewrites (``--models`` for a mix)."""
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="task model name from the settings (default: their default_model)")


def add_judge(parser: argparse.ArgumentParser) -> None:
    """``--judge NAME``: the model that scores, in every command that scores."""
    parser.add_argument("--judge", default=None, metavar="NAME",
                        help="judge model name from the settings (default: their default_judge)")


def add_comparison(parser: argparse.ArgumentParser) -> None:
    """``--comparison NAME``: how the metric compares request and answer."""
    add_choice(parser, "--comparison", COMPARISONS, metavar="NAME", default=DEFAULT_COMPARISON,
               help="the metric's comparison (default %(default)s)")


def add_thinking(parser: argparse.ArgumentParser) -> None:
    """``--thinking SCOPE``: how much of a thinking the task model rewrites."""
    add_choice(parser, "--thinking", THINKING_SCOPES, metavar="SCOPE", default=DEFAULT_THINKING,
               help="how much of a thinking is rewritten: blocks keeps fenced blocks and the "
                    "middle verbatim (default), full rewrites all")


def add_seed(parser: argparse.ArgumentParser) -> None:
    """``--seed N``: the one seed of a command's random draws."""
    parser.add_argument("--seed", type=NON_NEGATIVE, default=0, metavar="N",
                        help="random seed (default %(default)s)")


def add_source(parser: argparse.ArgumentParser, default: str, note: str = "") -> None:
    """``--source SOURCE``: where the rows come from, as ``prepare`` reads it."""
    parser.add_argument("--source", default=default, metavar="SOURCE",
                        help="where the rows come from: 'sample' (the bundled sample), a Hub "
                             "dataset id, a dataset folder or a JSONL file (default %(default)s)"
                             + note)


def add_public(parser: argparse.ArgumentParser) -> None:
    """``--public``: a Hub repo that ``publish`` creates is public."""
    parser.add_argument("--public", action="store_true",
                        help="create the Hub repo public (default: private)")


def add_data(parser: argparse.ArgumentParser, what: str) -> None:
    """``--data DIR``: the data folder, in every command that reads or writes it; ``what`` says
    which of its subfolders this command reads and writes."""
    parser.add_argument("--data", default=DEFAULT_DATA, metavar="DIR",
                        help=f"the data folder: {what} (default %(default)s)")


class Renamed(argparse.Action):
    """An old spelling of a flag: using it is a usage error that names the new one.

    Hidden from ``--help``; it takes an optional value, so ``--out data`` and ``--force`` alike
    reach the message rather than a confusing "unrecognized arguments".
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string} was renamed: use {self.const}")


def add_renamed(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Refuse ``old`` with a message naming ``new`` (e.g. ``"--data DIR"``)."""
    parser.add_argument(old, nargs="?", action=Renamed, const=new, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
