"""The ``publish`` and ``export`` subcommands: parse flags, call one function, print its summary."""

from __future__ import annotations

import argparse
import logging

from argalign.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    FORMATS,
    add_choice,
    add_data,
    add_list,
    add_public,
    add_renamed,
    emit,
)
from argalign.core.defaults import DEFAULT_MESSAGES_FIELD


def cmd_publish(args: argparse.Namespace) -> int:
    from argalign.stages.publish import publish

    emit(publish(args.data, org=args.org, repo_name=args.repo_name, configs=args.configs,
                 public=args.public, messages_field=args.messages_field,
                 with_provenance=args.with_provenance, from_merged=args.from_merged,
                 dry_run=args.dry_run).as_dict())
    return EXIT_OK


def _export_input(args: argparse.Namespace) -> str:
    """What ``export`` reads: ``--in`` when given, else the cleaned folder of ``--data``."""
    from argalign.core.datadir import DataDir
    from argalign.core.errors import ConfigError

    if args.input is not None:
        return args.input
    cleaned = DataDir(args.data).stage("cleaned")
    if not cleaned.is_dir():
        raise ConfigError(f"--data {args.data}: no {cleaned} to export (run argalign clean first), "
                          "or name a cleaned file or folder with --in")
    return str(cleaned)


def cmd_export(args: argparse.Namespace) -> int:
    from argalign.stages.export import export

    summary = export(_export_input(args), args.out_dir, args.format,
                     keep_thinking=args.keep_thinking, tokenizer=args.tokenizer)
    emit(summary.as_dict())
    if not summary.rows:
        logging.getLogger("argalign").error("export: no row exported, all %d rejected (see %s)",
                                            summary.rejected, summary.rejects)
        return EXIT_FAILED
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    from argalign.stages.prepare import CONFIGS

    p = subparsers.add_parser(
        "publish", help="publish the cleaned rows to the Hub, one <config>-aligned config each",
        description="Build <config>-aligned/<split>-00000-of-00001.parquet and a dataset card from "
                    "<data>/cleaned, check the folder loads with datasets, and upload it in one commit "
                    "(HF_TOKEN from the environment or .env).")
    add_data(p, "reads DIR/cleaned (DIR/merged with --from-merged)")
    p.add_argument("--org", required=True, metavar="ORG", help="Hub user or organisation")
    p.add_argument("--repo-name", required=True, metavar="NAME", help="dataset repo name")
    add_list(p, "--configs", default=CONFIGS, metavar="CONFIG", help="dataset configs")
    add_public(p)
    p.add_argument("--messages-field", default=DEFAULT_MESSAGES_FIELD, metavar="NAME",
                   help="name of the message column (default %(default)s), e.g. conversations")
    p.add_argument("--with-provenance", action="store_true",
                   help="add columns mode, model, program and the baseline/aligned scores")
    p.add_argument("--from-merged", action="store_true",
                   help="publish outcome=aligned rows of DATA/merged instead of DATA/cleaned")
    p.add_argument("--dry-run", metavar="DIR", default=None,
                   help="write and check the folder that would be uploaded in DIR; no network")
    p.set_defaults(func=cmd_publish)

    p = subparsers.add_parser("export",
                              help="convert cleaned rows to ShareGPT (LLaMA-Factory) or OpenAI JSONL")
    add_choice(p, "--format", FORMATS, metavar="FORMAT", required=True)
    source = p.add_mutually_exclusive_group()
    add_data(source, "reads DIR/cleaned")
    source.add_argument("--in", dest="input", metavar="PATH", default=None,
                        help="the input: a cleaned JSONL file or folder, read instead of DATA/cleaned")
    p.add_argument("--out-dir", required=True, metavar="DIR",
                   help="the folder the training files are written into")
    add_renamed(p, "--out", "--out-dir DIR")
    p.add_argument("--keep-thinking", action=argparse.BooleanOptionalAction, default=True,
                   help="keep each thinking (<think> block / reasoning_content); "
                        "--no-keep-thinking drops it (default: keep)")
    add_renamed(p, "--thinking", "--keep-thinking or --no-keep-thinking")
    p.add_argument("--tokenizer", metavar="FILE", default=None,
                   help="tokenizer.json of the model to train, to count the longest row's tokens "
                        "exactly (default: cl100k_base, an approximation)")
    p.set_defaults(func=cmd_export)
