"""``argalign align`` and ``argalign score``: one file in, one file out, every row accounted for.

The work is in :mod:`argalign.stages.align_file` and :mod:`argalign.stages.score_file`; this
module parses their flags and prints their summaries.
"""

from __future__ import annotations

import argparse
import logging

from argalign.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    MODES,
    add_choice,
    add_comparison,
    add_judge,
    add_model,
    add_renamed,
    add_settings,
    add_thinking,
    emit,
)

log = logging.getLogger(__name__)


def cmd_align(args: argparse.Namespace) -> int:
    from argalign.core.records import Outcome
    from argalign.stages.align_file import align_file

    summary = align_file(input=args.input, out=args.out, mode=args.mode, model=args.model,
                         program=args.program, thinking=args.thinking, settings=args.settings)
    emit(summary.as_dict())
    if not summary.outcomes.get(Outcome.ALIGNED):  # nothing usable came out: an error, not a success
        log.error("no row was aligned (%s); every line's reason is in %s",
                  ", ".join(f"{k} {v}" for k, v in summary.outcomes.items()) or "no rows", args.out)
        return EXIT_FAILED
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    from argalign.stages.score_file import score_file

    summary = score_file(input=args.input, out=args.out, judge=args.judge,
                         comparison=args.comparison, settings=args.settings,
                         original=args.original, oracle=args.oracle,
                         repeatability=args.repeatability, progress=args.progress,
                         track=args.track)
    emit(summary.as_dict())
    if not summary.scored:  # as for align: nothing usable came out
        log.error("no row was scored (%d rows); every line's reason is in %s", summary.rows,
                  args.out)
        return EXIT_FAILED
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="align one JSONL file in one mode")
    add_choice(p, "--mode", MODES, metavar="MODE", required=True)
    add_model(p)
    p.add_argument("--in", dest="input", required=True, metavar="PATH",
                   help="the input (JSONL): raw examples or plain rows")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the output file (JSONL): one result record per line")
    p.add_argument("--program", default=None, metavar="PATH",
                   help="the mode's compiled program: JSON path or MLflow URI (default: zero-shot)")
    add_thinking(p)
    add_settings(p)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("score", help="mutual-predictability score of each row of a file")
    p.add_argument("--in", dest="input", required=True, metavar="PATH",
                   help="the input (JSONL): rows, raw examples or result records")
    add_judge(p)
    add_renamed(p, "--model", "--judge NAME (the judge model)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the output file (JSONL): one score line per row (with --oracle also "
                        "FILE.oracle.jsonl)")
    add_comparison(p)
    p.add_argument("--original", default=None, metavar="FILE",
                   help="the original rows (JSONL), the file --in was aligned from: score them "
                        "too, by id, and report the difference")
    p.add_argument("--oracle", default=None, metavar="FILE",
                   help="pairs labelled 'which is better aligned' (JSONL): report the "
                        "comparison's agreement and calibrate it (see argalign.scoring.calibration); "
                        "lines labelled 'same' report how it scores equals")
    p.add_argument("--repeatability", type=float, default=None, metavar="D",
                   help="with --oracle: a |score difference| below D reads as 'scored the "
                        "same' (default 0.01)")
    add_settings(p)
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.add_argument("--no-track", dest="track", action="store_false",
                   help="no MLflow run (default: params, the means with their intervals and the "
                        "scores file in experiment argalign-score, at MLFLOW_TRACKING_URI)")
    p.set_defaults(func=cmd_score)
