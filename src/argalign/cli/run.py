"""CLI subcommands ``run``, ``merge``, ``clean``, ``report`` and ``pipeline``: parse, call one
function.

``argalign.cli`` calls :func:`register`; errors are argalign error types, which it maps to
exit codes (a configuration error 2, a failed or refused run 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from argalign.cli.options import (
    EXIT_OK,
    MODES,
    NON_NEGATIVE,
    POSITIVE,
    add_comparison,
    add_data,
    add_judge,
    add_list,
    add_public,
    add_renamed,
    add_seed,
    add_settings,
    add_source,
    add_thinking,
    emit,
)
from argalign.core.defaults import (
    DEFAULT_ACCEPT_MARGIN,
    DEFAULT_ACCEPT_RETRIES,
    DEFAULT_DEBUG_DATA,
    DEFAULT_MODES,
    DEFAULT_TRACE_SAMPLE,
)


def _mode_program(value: str) -> tuple[str, str]:
    """One ``--programs`` value: ``A=programs/a.json`` -> ``("A", "programs/a.json")``;
    ``none`` -> every mode zero-shot."""
    from argalign.stages.run.plan import ALL_MODES, NO_PROGRAM

    if value == NO_PROGRAM:
        return ALL_MODES, NO_PROGRAM
    mode, sep, program = value.partition("=")
    if not sep or not mode or not program:
        raise argparse.ArgumentTypeError(f"expected MODE=PATH, MODE=none or none, not {value!r}")
    return mode, program


def _run_options(args: argparse.Namespace, data: str):
    from argalign.core.errors import ConfigError
    from argalign.stages.run.runner import RunOptions

    programs = dict(args.programs or [])
    if len(programs) < len(args.programs or []):
        raise ConfigError("--programs names the same mode twice")
    accept = args.accept_if_better
    if accept and not args.score:  # asked for by name: the gate cannot run without the scores
        raise ConfigError("--accept-if-better needs the scores: drop --no-score, or pass "
                          "--no-accept to keep every rewrite that passes the checks")
    return RunOptions(
        data=Path(data), modes=tuple(args.modes or ()), models=tuple(args.models or ()),
        settings=args.settings, programs=programs,
        thinking=args.thinking, score=args.score, judge=args.judge, comparison=args.comparison,
        accept_if_better=accept is not False, accept_retries=args.accept_retries,
        accept_margin=args.accept_margin,
        retry_failed=args.retry_failed,
        max_errors=args.max_errors, seed=args.seed, run_name=args.run_name, force=args.force,
        configs=tuple(getattr(args, "configs", None) or ()),
        splits=tuple(getattr(args, "splits", None) or ()),
        track=args.track, progress=args.progress, trace_sample=args.trace_sample,
        workers=args.workers or os.cpu_count() or 1,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from argalign.stages.run.runner import run_batch

    emit(run_batch(_run_options(args, args.data)).as_dict())
    return EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from argalign.stages.merge import merge

    emit(merge(args.data, args.run_name, allow_missing=args.allow_missing).as_dict())
    return EXIT_OK


def cmd_clean(args: argparse.Namespace) -> int:
    from argalign.core.results import text_table
    from argalign.stages.clean import clean

    summary = clean(args.data, max_user_change=args.max_user_change)
    sys.stdout.write(text_table(summary.as_table()) + "\n")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from argalign.stages.report import build_report

    emit(build_report(args.data, run_name=args.run_name, page=args.page).as_dict())
    return EXIT_OK


def cmd_pipeline(args: argparse.Namespace) -> int:
    from argalign.core.results import text_table
    from argalign.stages.pipeline import pipeline

    publish = None
    if args.publish_repo or args.publish_dry_run:
        from argalign.core.errors import ConfigError
        from argalign.stages.publish import publish as publish_data

        org, _, name = (args.publish_repo or "argalign/dry-run").partition("/")
        if not name:
            raise ConfigError(f"--publish-repo takes ORG/NAME, not {args.publish_repo!r}")

        def publish(cleaned_dir):
            return publish_data(cleaned_dir.parent, org=org, repo_name=name,
                                configs=args.configs, public=args.public,
                                dry_run=args.publish_dry_run)

    n = None if args.all else args.n
    result = pipeline(source=args.source, configs=args.configs, splits=args.splits, n=n,
                      seed=args.seed, data=args.data, run=_run_options(args, args.data),
                      publish=publish, report=args.report)
    sys.stdout.write(f"run {result.run.run} in {args.data}\n" + text_table(result.as_table()) + "\n")
    if result.run.scores:
        from argalign.scoring.scoreboard import score_table

        sys.stdout.write("\nmutual predictability of the rows that ended aligned, before and after "
                         "(95% intervals):\n" + text_table(score_table(result.run.scores)) + "\n")
    if result.report is not None:
        sys.stdout.write(f"\nreview report: {result.report.out}\n")
    return EXIT_OK


def _add_run_options(p: argparse.ArgumentParser) -> None:
    add_list(p, "--modes", choices=MODES, metavar="MODE",
             help=f"modes to mix (default: {' '.join(DEFAULT_MODES)})")
    add_list(p, "--models", metavar="MODEL",
             help="model names from the settings; several make a mix (default: default_model)")
    add_settings(p)
    p.add_argument("--programs", nargs="+", action="extend", type=_mode_program,
                   metavar="MODE=PATH",
                   help="each mode's compiled program: path or MLflow URI (space-separated, "
                        "repeatable); MODE=none or none runs zero-shot. Default: the best program "
                        "`argalign optimize` compiled for the mode and the task model, else zero-shot")
    add_renamed(p, "--program", "--programs MODE=PATH")
    add_thinking(p)
    p.add_argument("--score", action=argparse.BooleanOptionalAction, default=True,
                   help="score the original and the aligned row of every example (mutual "
                        "predictability; default on; --no-score saves the judge calls and turns "
                        "the acceptance gate off)")
    add_judge(p)
    add_comparison(p)
    # None: not given, on unless --no-score; True (given by name) with --no-score is refused.
    p.add_argument("--accept-if-better", action=argparse.BooleanOptionalAction, default=None,
                   help="the acceptance gate, on by default: keep a rewrite only if it scores "
                        "at least --accept-margin above the original; otherwise sample again, "
                        "and end the example not_improved. Off with --no-score (it needs the "
                        "scores); --no-accept-if-better or --no-accept keeps every rewrite that "
                        "passes the checks")
    p.add_argument("--no-accept", dest="accept_if_better", action="store_false",
                   help="the acceptance gate off (same as --no-accept-if-better)")
    p.add_argument("--accept-margin", type=float, default=DEFAULT_ACCEPT_MARGIN, metavar="X",
                   help="how much higher than the original a rewrite must score to be kept "
                        "(default %(default)s, well above the metric's repeatability of 0.0007)")
    p.add_argument("--accept-retries", type=NON_NEGATIVE, default=DEFAULT_ACCEPT_RETRIES, metavar="N",
                   help="fresh samples after a rewrite that is not better by the margin "
                        "(default %(default)s)")
    p.add_argument("--retry-failed", action="store_true",
                   help="resume, aligning the failed and not_improved examples again and keeping "
                        "every other result")
    p.add_argument("--max-errors", type=NON_NEGATIVE, default=None, metavar="N",
                   help="stop cleanly after more than N failed examples")
    add_seed(p)
    p.add_argument("--run-name", default=None, metavar="NAME",
                   help="the run in DATA/runs (default: run-<modes>-<models>-s<seed>)")
    p.add_argument("--force", action="store_true",
                   help="resume even though the parameters changed (finished results are kept)")
    p.add_argument("--no-track", dest="track", action="store_false", help="no MLflow run")
    p.add_argument("--trace-sample", type=NON_NEGATIVE, default=DEFAULT_TRACE_SAMPLE, metavar="N",
                   help="trace N examples in MLflow, drawn by a hash of seed and id (default "
                        "%(default)s; 0: none); their scores are evaluated with mlflow.genai")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.add_argument("--workers", type=NON_NEGATIVE, default=1, metavar="N",
                   help="worker processes sharing the run's LM threads (default %(default)s; 0: one "
                        "per core); concurrency, rpm and --max-errors stay limits of the whole run. "
                        "Worth it when the endpoint serves far more requests than one process can "
                        "send (~400 calls/s per process); a local model on the same cores needs none")


def register(sub: argparse._SubParsersAction) -> None:
    from argalign.core.policies import DEFAULT_MAX_USER_CHANGE
    from argalign.stages.prepare import CONFIGS, SAMPLE, SPLITS

    p = sub.add_parser("run", help="align every raw example once; resumes after a kill")
    add_data(p, "reads DIR/raw, writes DIR/runs/<run>")
    add_list(p, "--configs", metavar="CONFIG", help="dataset configs (default: all prepared)")
    add_list(p, "--splits", metavar="SPLIT", help="splits (default: all prepared)")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("merge", help="one file per (config, split) in raw order: DATA/merged")
    add_data(p, "reads DIR/runs/<run>, writes DIR/merged")
    p.add_argument("--run-name", default=None, metavar="NAME",
                   help="the run in DATA/runs (default: the only one)")
    p.add_argument("--allow-missing", action="store_true",
                   help="merge an unfinished run, reporting the ids without a result")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("clean", help="keep aligned rows that pass the checker: DATA/cleaned")
    add_data(p, "reads DIR/merged, writes DIR/cleaned")
    p.add_argument("--max-user-change", type=NON_NEGATIVE, default=DEFAULT_MAX_USER_CHANGE, metavar="N",
                   help="Mode B: longest clarification (characters) that may follow the unchanged "
                        "user message (default %(default)s)")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("report", help="one self-contained HTML page to review a run before publishing")
    add_data(p, "reads DIR/raw, DIR/runs/<run>, DIR/merged and DIR/cleaned")
    p.add_argument("--run-name", default=None, metavar="NAME",
                   help="the run in DATA/runs (default: the only one)")
    add_renamed(p, "--run", "--run-name NAME")
    p.add_argument("--page", default=None, metavar="FILE",
                   help="the HTML page to write (default: DATA/report.html, beside cleaned/)")
    add_renamed(p, "--out", "--page FILE")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("pipeline", help="prepare, run, merge and clean in one command")
    add_source(p, SAMPLE)
    add_list(p, "--configs", default=CONFIGS, metavar="CONFIG", help="dataset configs")
    add_list(p, "--splits", default=SPLITS, metavar="SPLIT", help="splits")
    # A first run on the local model should end in minutes, not hours: one example per
    # (config, split) unless asked for more.
    p.add_argument("-n", type=POSITIVE, default=1, metavar="N",
                   help="examples per (config, split) (default %(default)s; --all for every row)")
    p.add_argument("--all", action="store_true", help="every row of every (config, split)")
    add_data(p, f"every stage's folders ({DEFAULT_DEBUG_DATA} with --debug)")
    add_renamed(p, "--out", "--data DIR")
    p.add_argument("--debug", action="store_true",
                   help=f"5 examples, train split only, everything under {DEFAULT_DEBUG_DATA}/, verbose")
    p.add_argument("--publish-repo", default=None, metavar="ORG/NAME",
                   help="publish the cleaned data to this Hub dataset repo (private unless --public)")
    p.add_argument("--publish-dry-run", default=None, metavar="DIR",
                   help="build and verify the Hub folder in DIR instead of uploading")
    add_public(p)
    p.add_argument("--no-report", dest="report", action="store_false",
                   help="do not write DATA/report.html (the review report)")
    _add_run_options(p)
    p.set_defaults(func=cmd_pipeline)
