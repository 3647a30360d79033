"""The ``argalign`` command: parse, call one library function, map errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable

from argalign.cli.options import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    MODES,
    NON_NEGATIVE,
    POSITIVE,
    add_choice,
    add_data,
    add_list,
    add_renamed,
    add_seed,
    add_source,
    emit,
)
from argalign.core.defaults import DEFAULT_DATA, DEFAULT_DEBUG_DATA
from argalign.core.errors import ArgalignError, ConfigError, Terminated

log = logging.getLogger("argalign")


# --- commands ----------------------------------------------------------------------------

def cmd_prepare(args: argparse.Namespace) -> int:
    from argalign.stages.prepare import prepare

    result = prepare(source=args.source, configs=args.configs, splits=args.splits, n=args.n,
                     seed=args.seed, data=args.data)
    emit(result.as_dict())
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from argalign.core.records import Outcome
    from argalign.stages.validate import validate_files

    summary = validate_files(args.original, args.aligned, args.mode, out=args.out,
                             max_user_change=args.max_user_change)
    emit(summary.as_dict())
    for line in summary.report:
        if line["outcome"] == Outcome.REJECTED:
            log.error("%s: %s", line["id"], ", ".join(
                f"{v['code']}@{v['message_index']}" for v in line["violations"]))
    return EXIT_FAILED if summary.rejected else EXIT_OK


def cmd_settings(args: argparse.Namespace) -> int:
    from argalign.models.config import default_config_text

    sys.stdout.write(default_config_text())
    return EXIT_OK


def cmd_codes(args: argparse.Namespace) -> int:
    from argalign.core.codes import catalogue
    from argalign.core.results import Table, text_table

    rows = [(code, kind, meaning) for code, (kind, meaning) in catalogue().items()
            if args.kind in (None, kind)]
    if args.json:
        emit([{"code": code, "kind": kind, "meaning": meaning} for code, kind, meaning in rows])
        return EXIT_OK
    sys.stdout.write(text_table(Table(None, rows)) + "\n")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------

def _add_sampling(p: argparse.ArgumentParser) -> None:
    from argalign.stages.prepare import CONFIGS, HUB_DATASET, SPLITS

    add_source(p, HUB_DATASET, note="; the bundled sample also replaces the default Hub id, with "
                                    "a warning, when the Hub is unreachable; anything else that "
                                    "cannot be read is an error")
    add_list(p, "--configs", default=CONFIGS, metavar="CONFIG", help="dataset configs")
    add_list(p, "--splits", default=SPLITS, metavar="SPLIT", help="splits")
    p.add_argument("-n", type=POSITIVE, default=None, metavar="N",
                   help="examples per (config, split) (default: all)")
    add_seed(p)
    add_data(p, "writes DIR/raw")
    add_renamed(p, "--out", "--data DIR")
    p.add_argument("--debug", action="store_true",
                   help=f"5 examples, train split only, everything under {DEFAULT_DEBUG_DATA}/, verbose")


def build_parser() -> argparse.ArgumentParser:
    from argalign.core.policies import DEFAULT_MAX_USER_CHANGE

    parser = argparse.ArgumentParser(
        prog="argalign", allow_abbrev=False,
        description="Re-align SFT conversations so that request and answer are mutually predictable.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="draw seeded samples into DATA/raw/<config>/<split>.jsonl")
    _add_sampling(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("validate", help="check an aligned file against its original")
    p.add_argument("--original", required=True, metavar="FILE",
                   help="the original rows (JSONL), the file --aligned was aligned from")
    p.add_argument("--aligned", required=True, metavar="FILE",
                   help="the aligned rows or result records (JSONL)")
    add_choice(p, "--mode", MODES, metavar="MODE", required=True)
    p.add_argument("--out", default=None, metavar="FILE",
                   help="the output file (JSONL): one report line per example")
    add_renamed(p, "--report", "--out FILE")
    p.add_argument("--max-user-change", type=NON_NEGATIVE, default=DEFAULT_MAX_USER_CHANGE, metavar="N",
                   help="Mode B: longest clarification (characters) that may follow the unchanged "
                        "user message (default %(default)s)")
    p.set_defaults(func=cmd_validate)

    from argalign.core.codes import KINDS

    p = sub.add_parser("settings", help="print the packaged model settings (YAML) to start your own")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("codes", help="every code a record, report or rejects file can hold")
    p.add_argument("--kind", choices=list(KINDS), default=None, help="only codes of this kind")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(func=cmd_codes)

    _register_features(sub)
    for command in sub.choices.values():
        # No prefixes: "--config" must not pass for "--configs" (nor "--mode" for "--modes").
        command.allow_abbrev = False
    return parser


def _register_features(sub: argparse._SubParsersAction) -> None:
    """Each feature module adds its own subcommands (``register(subparsers)``)."""
    from argalign.cli import alignment as alignment_commands
    from argalign.cli import optimize as optimize_commands
    from argalign.cli import publish as publish_commands
    from argalign.cli import run as run_commands

    for module in (alignment_commands, optimize_commands, run_commands, publish_commands):
        module.register(sub)


def _apply_debug(args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        args.n, args.splits, args.verbose = 5, ["train"], True
        if args.data == DEFAULT_DATA:
            args.data = DEFAULT_DEBUG_DATA


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed): a return code
        return int(e.code or 0)
    _apply_debug(args)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from argalign.core.redact import scrub_log_records

    scrub_log_records()  # every library's log, not only ours
    if not args.verbose:
        for noisy in ("httpx", "LiteLLM", "litellm", "datasets", "urllib3", "mlflow", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return func(args)
    except ConfigError as e:
        log.error("configuration error: %s", e)
        return EXIT_CONFIG
    except OSError as e:  # a path that is missing, a file where a folder must be, no permission
        from argalign.core.files import WRITE_ERRNOS

        if e.errno in WRITE_ERRNOS:  # a full disk: the step failed, the configuration is fine
            log.error("could not write: %s", _os_error(e))
            return EXIT_FAILED
        log.error("configuration error: %s", _os_error(e))
        return EXIT_CONFIG
    except ArgalignError as e:
        log.error("%s", e)
        return EXIT_FAILED
    except Terminated:
        log.error("terminated (SIGTERM)")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - one clear line, never a raw traceback
        from argalign.core.redact import scrub

        log.error("unexpected error: %s: %s%s", type(e).__name__, scrub(str(e)),
                  "" if args.verbose else " (run with -v for the details)")
        log.debug("traceback", exc_info=True)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, a container stopping) is handled as Ctrl-C: cleanly, in the main thread."""
    raise Terminated()


def _os_error(error: OSError) -> str:
    """``what: path`` (and the second path of a rename) without the errno noise."""
    what = error.strerror or type(error).__name__
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    return f"{what}: {' -> '.join(paths)}" if paths else f"{what}: {error}"


if __name__ == "__main__":
    sys.exit(main())
