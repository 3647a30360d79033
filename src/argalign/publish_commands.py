"""The ``publish`` and ``export`` subcommands: parse flags, call one function, print its summary."""

from __future__ import annotations

import argparse
import logging

from argalign.cli_options import EXIT_FAILED, EXIT_OK, FORMATS, add_choice, add_list, emit
from argalign.defaults import DEFAULT_DATA


def cmd_publish(args: argparse.Namespace) -> int:
    from argalign.publish import publish

    emit(publish(args.data, org=args.org, repo_name=args.repo_name, configs=args.configs,
                 public=args.public, messages_field=args.messages_field,
                 with_provenance=args.with_provenance, from_merged=args.from_merged,
                 dry_run=args.dry_run).as_dict())
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from argalign.export import export

    summary = export(args.inp, args.out, args.format, thinking=args.thinking,
                     tokenizer=args.tokenizer)
    emit(summary.as_dict())
    if not summary.rows:
        logging.getLogger("argalign").error("export: no row exported, all %d rejected (see %s)",
                                            summary.rejected, summary.rejects)
        return EXIT_FAILED
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    from argalign.prepare import CONFIGS

    p = subparsers.add_parser(
        "publish", help="publish the cleaned rows to the Hub, one <config>-aligned config each",
        description="Build <config>-aligned/<split>-00000-of-00001.parquet and a dataset card from "
                    "<data>/cleaned, check the folder loads with datasets, and upload it in one commit "
                    "(HF_TOKEN from the environment or .env).")
    p.add_argument("--data", default=DEFAULT_DATA, help="the run's data folder (default %(default)s)")
    p.add_argument("--org", required=True, help="Hub user or organisation")
    p.add_argument("--repo-name", required=True, help="dataset repo name")
    add_list(p, "--configs", default=CONFIGS, metavar="CONFIG", help="source configs")
    p.add_argument("--public", action="store_true", help="create the repo public (default private)")
    p.add_argument("--messages-field", default="messages",
                   help="name of the message column (default %(default)s), e.g. conversations")
    p.add_argument("--with-provenance", action="store_true",
                   help="add columns mode, model, program and the baseline/aligned scores")
    p.add_argument("--from-merged", action="store_true",
                   help="publish outcome=aligned rows of <data>/merged instead of <data>/cleaned")
    p.add_argument("--dry-run", metavar="DIR", default=None,
                   help="write and check the folder that would be uploaded in DIR; no network")
    p.set_defaults(func=cmd_publish)

    p = subparsers.add_parser("export",
                              help="convert cleaned rows to ShareGPT (LLaMA-Factory) or OpenAI JSONL")
    add_choice(p, "--format", FORMATS, metavar="FORMAT", required=True)
    p.add_argument("--in", dest="inp", metavar="PATH", required=True,
                   help="a cleaned JSONL file or a cleaned folder (or the data folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--thinking", choices=["keep", "drop"], default="keep",
                   help="keep thinking (<think> block / reasoning_content) or drop it (default %(default)s)")
    p.add_argument("--tokenizer", metavar="FILE", default=None,
                   help="tokenizer.json of the model to train, to count the longest row's tokens "
                        "exactly (default: cl100k_base, an approximation)")
    p.set_defaults(func=cmd_export)
