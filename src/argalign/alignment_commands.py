"""``argalign align`` and ``argalign score``: one file in, one file out, every row accounted for.

``align`` writes a result record per input example (see :mod:`argalign.align`); ``score``
writes the metric components per row and prints their mean.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _read_examples(path: str | Path):
    """Yield ``(example, record)`` per line. A line that is not JSON, or not a row, still
    yields an example (its row is what the line held) so that it ends as ``rejected``."""
    from argalign.errors import ConfigError, RowError
    from argalign.schema import Example, PlainRowIds

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"input file not found: {path}")
    ids = PlainRowIds()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                log.error("%s:%d: not valid JSON (%s)", path.name, lineno, e)
                record = {"not_json": raw[:200].decode("utf-8", "replace")}
            try:
                example = ids.example(record, f"{path.stem}:{lineno}")
            except RowError:
                example = Example(f"line {lineno}", "", "", lineno - 1, record)
            yield example, record


def align_file(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from argalign.align import align_example
    from argalign.config import load_settings
    from argalign.jsonl import write_jsonl_atomic
    from argalign.lm import open_models
    from argalign.programs import load_program

    settings = load_settings(args.config)
    model = args.model or settings.default_model
    program, program_id = load_program(args.mode, args.program, thinking=args.thinking)
    examples = [example for example, _ in _read_examples(args.input)]
    outcomes: Counter = Counter()
    records = []
    with open_models(settings, [model]) as handles:
        handle = handles[model]
        bar = tqdm(examples, desc=f"align {args.mode}", unit="conv", file=sys.stderr,
                   disable=None)
        for example in bar:
            record = align_example(example, program, model=model, lm=handle.lm,
                                   adapter=handle.adapter, program_id=program_id)
            outcomes[record["outcome"]] += 1
            records.append(record)
            bar.set_postfix(outcomes)
    write_jsonl_atomic(args.out, records)
    return {"out": str(args.out), "program": program_id, "outcomes": dict(outcomes)}


def score_file(args: argparse.Namespace) -> dict[str, Any]:
    import dspy
    from tqdm import tqdm

    from argalign.config import load_settings
    from argalign.jsonl import write_jsonl_atomic
    from argalign.lm import open_models
    from argalign.metrics import MutualPredictability, score_row

    settings = load_settings(args.config)
    model = args.model or settings.default_judge
    judge = MutualPredictability(args.comparison)
    rows = list(_read_examples(args.input))
    out: list[dict[str, Any]] = []
    totals: Counter = Counter()
    with open_models(settings, [model]) as handles:
        handle = handles[model]
        for example, record in tqdm(rows, desc="score", unit="conv", file=sys.stderr,
                                    disable=None):
            line: dict[str, Any] = {"id": example.id, "judge": model,
                                    "comparison": args.comparison}
            if example.row is None:
                line.update(status="skipped", reason=f"no row (outcome {record.get('outcome')})")
            else:
                try:
                    with dspy.context(lm=handle.lm, adapter=handle.adapter, trace=None):
                        result = score_row(example.row, judge)
                    line.update(status="scored", **result.components(), feedback=result.feedback)
                    totals["scored"] += 1
                    for key in ("score", "forward", "backward"):
                        totals[key] += getattr(result, key)
                except Exception as e:  # noqa: BLE001 - one row's judge failure is recorded
                    line.update(status="failed", reason=f"{type(e).__name__}: {e}")
            out.append(line)
    write_jsonl_atomic(args.out, out)
    n = totals["scored"]
    means = {k: round(totals[k] / n, 4) if n else None for k in ("score", "forward", "backward")}
    return {"out": str(args.out), "rows": len(out), "scored": n, "mean": means}


def cmd_align(args: argparse.Namespace) -> int:
    summary = align_file(args)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    summary = score_file(args)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from argalign.metrics import COMPARISONS
    from argalign.modules import MODES, THINKING_SCOPES

    p = sub.add_parser("align", help="align one JSONL file in one mode")
    p.add_argument("--mode", choices=list(MODES), required=True)
    p.add_argument("--model", default=None, help="model name from the config (default: its default)")
    p.add_argument("--in", dest="input", required=True, help="raw examples or plain rows (JSONL)")
    p.add_argument("--out", required=True)
    p.add_argument("--program", default=None, help="compiled program: JSON path or MLflow URI")
    p.add_argument("--thinking", choices=THINKING_SCOPES, default="blocks",
                   help="blocks: keep fenced blocks and the middle verbatim (default); full: rewrite all")
    p.add_argument("--config", default=None, help="model settings YAML (default: bundled)")
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("score", help="mutual-predictability score of each row of a file")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--model", default=None, help="judge model (default: the config's judge)")
    p.add_argument("--out", required=True)
    p.add_argument("--comparison", choices=list(COMPARISONS), default="judge")
    p.add_argument("--config", default=None)
    p.set_defaults(func=cmd_score)
