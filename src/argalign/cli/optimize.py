"""``argalign optimize`` and ``argalign compare``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from argalign.cli.options import (
    EXIT_OK,
    MODES,
    NON_NEGATIVE,
    OPTIMIZERS,
    POSITIVE,
    add_choice,
    add_comparison,
    add_judge,
    add_list,
    add_model,
    add_renamed,
    add_seed,
    add_settings,
    add_source,
    add_thinking,
    emit,
)
from argalign.core.defaults import DEFAULT_OPTIMIZER

log = logging.getLogger(__name__)


def cmd_optimize(args: argparse.Namespace) -> int:
    from argalign.stages.optimize import OptimizeSpec, run_optimize

    spec = OptimizeSpec(
        mode=args.mode, optimizer=args.optimizer, model=args.model, judge=args.judge,
        reflection_model=args.reflection_model, train=args.train, val=args.val, seed=args.seed,
        budget_calls=args.budget_calls, comparison=args.comparison, thinking=args.thinking,
        source=args.source, configs=args.configs or [], candidates=args.candidates,
        max_demos=args.max_demos, recompile=args.recompile, gold=args.gold,
    )
    emit(run_optimize(spec, settings=args.settings).as_dict())
    return EXIT_OK


def with_intervals(row: dict[str, Any]) -> dict[str, Any]:
    """A compare row for the terminal: each mean with its interval in one cell."""
    out = {k: v for k, v in row.items() if not k.endswith(("_low", "_high"))}
    for column in ("baseline", "compiled", "delta"):
        value, low, high = row.get(column), row.get(f"{column}_low"), row.get(f"{column}_high")
        sign = "+" if column == "delta" else ""
        if value is not None:
            out[column] = f"{value:{sign}.3f}" + (f" [{low:{sign}.3f}, {high:{sign}.3f}]"
                                                  if low is not None and high is not None else "")
    return out


def compare_text(rows: list[dict[str, Any]]) -> str:
    """The compared runs for a terminal: a header, a rule, one line per run."""
    from argalign.core.results import Table, text_table

    if not rows:
        return "(no runs)"
    shown = [with_intervals(r) for r in rows]
    columns = list(shown[0])
    return text_table(Table(columns, [[r[c] for c in columns] for r in shown], rule=True))


def cmd_compare(args: argparse.Namespace) -> int:
    from argalign.stages.optimize import compare_table

    rows = compare_table(args.experiment)
    same = [r["run"] for r in rows if r.get("self_judged")]
    if same:
        log.warning("%d run(s) used the same model as task model and judge (%s): the judge grades "
                    "its own output, so their scores are likely biased upward; judge with another "
                    "model (--judge)", len(same), ", ".join(same[:5]) + (" ..." if len(same) > 5 else ""))
    if args.json:
        emit(rows)
    else:
        sys.stdout.write(compare_text(rows) + "\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from argalign.core.sources import SAMPLE
    from argalign.tracking import EXPERIMENT_OPTIMIZE

    p = sub.add_parser("optimize", help="compile a mode's program against the metric")
    add_choice(p, "--mode", MODES, metavar="MODE", required=True)
    add_choice(p, "--optimizer", OPTIMIZERS, metavar="NAME", default=DEFAULT_OPTIMIZER,
               help="(default %(default)s)")
    add_model(p)
    add_judge(p)
    p.add_argument("--reflection-model", default=None, metavar="NAME",
                   help="GEPA's reflection model name from the settings")
    p.add_argument("--train", type=POSITIVE, default=8, metavar="N",
                   help="training examples (default %(default)s)")
    p.add_argument("--val", type=POSITIVE, default=8, metavar="N",
                   help="validation examples (default %(default)s)")
    add_seed(p)
    p.add_argument("--budget-calls", type=POSITIVE, default=None, metavar="N",
                   help="cap on LM calls of the compile (task, judge, reflection)")
    add_comparison(p)
    add_thinking(p)
    add_source(p, SAMPLE)
    add_list(p, "--configs", metavar="CONFIG", help="dataset configs (default: all)")
    p.add_argument("--candidates", type=POSITIVE, default=3, metavar="N",
                   help="candidate programs / instructions (default %(default)s)")
    p.add_argument("--max-demos", type=NON_NEGATIVE, default=1, metavar="N",
                   help="demos per predictor (default %(default)s)")
    p.add_argument("--gold", action=argparse.BooleanOptionalAction, default=True,
                   help="seed bootstrap, mipro and gepa with the hand-written gold demos "
                        "(--no-gold: start from the zero-shot program)")
    add_settings(p)
    p.add_argument("--recompile", action="store_true",
                   help="compile again even if a program with the same fingerprint is saved")
    add_renamed(p, "--force", "--recompile")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("compare", help="table of MLflow runs: baseline, compiled, delta, cost")
    p.add_argument("--experiment", default=EXPERIMENT_OPTIMIZE, metavar="NAME",
                   help="MLflow experiment (default %(default)s)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(func=cmd_compare)
