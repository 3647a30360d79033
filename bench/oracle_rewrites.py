"""Real rewrites labelled by reading them, and how the metric agrees with the labels.

The labelled file (``src/argalign/data/oracle/rewrites.jsonl``, :mod:`argalign.scoring.labels`) holds
each rewrite as a patch against its original, a label (better, same or worse aligned than the
original) and a one-line reason. The originals are the bundled sample's rows and the six real
rows (read at run time from ``../shared/data``, never copied).

    python bench/oracle_rewrites.py show --aligned A.jsonl --original RAW.jsonl
    python bench/oracle_rewrites.py add --aligned A.jsonl --original RAW.jsonl --origin real \\
        --run new1-A --labels labels.tsv          # lines: id <TAB> better|same|worse <TAB> why
    python bench/oracle_rewrites.py score --comparison structural [--rows]

``score`` prints the label counts per run, the agreement on the better/worse labels (the
higher-scored side is the labelled one; ties count half) and how the metric scores the "same"
ones, each with a bootstrap 95% interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import REAL_ROWS, read_jsonl, sample_rows

from argalign.core.records import gate_word
from argalign.core.stats import bootstrap, win_rate
from argalign.core.thinking import split_thinking
from argalign.scoring.comparison import turn_views
from argalign.scoring.labels import LABELS, labelled_pairs, make_patch
from argalign.scoring.metrics import MutualPredictability, score_aligned

LABELLED = Path(__file__).resolve().parents[1] / "src" / "argalign" / "data" / "oracle" / \
    "rewrites.jsonl"


def _key(row: dict[str, Any]) -> str:
    return str(row.get("source_id", row.get("example_id")))


def originals() -> dict[tuple[str, str], dict[str, Any]]:
    found = {("sample", _key(r)): r for r in sample_rows()}
    if REAL_ROWS.exists():
        found |= {("real", _key(r)): r for r in read_jsonl(REAL_ROWS)}
    return found


def aligned_rows(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(key of the original, mode, aligned row) of each aligned result record."""
    out = []
    for record in read_jsonl(path):
        row = record.get("row")
        if isinstance(row, dict) and record.get("outcome") == "aligned":
            out.append((_key(row), record.get("mode"), row))
    return out


def read_originals(path: Path) -> dict[str, dict[str, Any]]:
    """Rows by key, from plain rows or prepared examples (``{"id", ..., "row"}``)."""
    rows = [r if "messages" in r else r["row"] for r in read_jsonl(path)]
    return {_key(r): r for r in rows}


def _frame(row: dict[str, Any]) -> list[str]:
    out = []
    for m in row["messages"]:
        if m.get("thinking"):
            parts = split_thinking(m["thinking"])
            out.append(f"  preamble: {parts.preamble}\n  closing: {parts.closing[:400]}")
    return out


def show(args: argparse.Namespace) -> None:
    by_key = {}
    for path in args.original:
        by_key |= read_originals(Path(path))
    for key, _, row in (x for path in args.aligned for x in aligned_rows(Path(path))):
        old = by_key[key]
        view_old, view_new = turn_views(old)[0], turn_views(row)[0]
        print(f"=== {key}  task {view_old.delivered.task}, major methods "
              f"{sorted(view_old.delivered.major_methods)}")
        print(f"--- request before:\n{view_old.request[:900]}\n--- request after:\n"
              f"{view_new.request[:900]}")
        print("--- thinking before:\n" + "\n".join(_frame(old)))
        print("--- thinking after:\n" + "\n".join(_frame(row)))
        answer = next(m["content"] for m in reversed(old["messages"]) if m.get("content"))
        print(f"--- answer: {answer[:200]!r}\n")


def add(args: argparse.Namespace) -> None:
    by_key = {}
    for path in args.original:
        by_key |= read_originals(Path(path))
    labels = {}
    for line in Path(args.labels).read_text("utf-8").splitlines():
        if line.strip():
            key, label, why = line.split("\t", 2)
            if label not in LABELS:
                raise SystemExit(f"{args.labels}: {key}: label must be one of {', '.join(LABELS)}")
            labels[key] = (label, why.strip())
    mode = args.mode
    # The deterministic parts of a rewrite (Mode A's sentence, a kept thinking) come out the
    # same in every run: a rewrite labelled already is not counted twice.
    known = {(r["origin"], str(r["original_id"]), json.dumps(r["patch"]))
             for r in map(json.loads, LABELLED.read_text("utf-8").splitlines()) if r}
    lines = []
    for key, row_mode, row in (x for path in args.aligned for x in aligned_rows(Path(path))):
        if key not in labels:
            continue
        label, why = labels.pop(key)
        if not (mode or row_mode):
            raise SystemExit(f"{key}: the record names no mode; give --mode")
        patch = make_patch(by_key[key], row)
        if (args.origin, key, json.dumps(patch)) in known:
            print(f"{key}: the same rewrite is labelled already; skipped", file=sys.stderr)
            continue
        lines.append({"id": f"{args.run}/{key}", "origin": args.origin, "original_id": key,
                      "mode": mode or row_mode, "run": args.run,
                      "patch": patch, "label": label, "why": why})
    if labels:
        raise SystemExit(f"labels for rows with no aligned rewrite: {sorted(labels)}")
    with LABELLED.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    print(f"{len(lines)} labelled rewrites added to {LABELLED}")


def score(args: argparse.Namespace) -> None:
    pairs, missing = labelled_pairs(LABELLED, originals())
    runs = {json.loads(line)["id"]: json.loads(line).get("run", "?")
            for line in LABELLED.read_text("utf-8").splitlines() if line.strip()}
    if missing:
        print(f"{len(missing)} labelled rewrites skipped: their originals (the six real rows) "
              f"are not at {REAL_ROWS}", file=sys.stderr)
    counts: dict[str, dict[str, int]] = {}
    for p in pairs:
        label = {"a": "better", "b": "worse", "same": "same"}[p["better"]]
        counts.setdefault(runs[p["id"]], {"better": 0, "same": 0, "worse": 0})[label] += 1
    for run, c in counts.items():
        print(f"{run}: better {c['better']}, same {c['same']}, worse {c['worse']}")
    if args.comparison is None:
        return
    scorer = MutualPredictability(args.comparison)
    for gated in (True, False):
        _agreement(scorer, pairs, gated, f"{args.comparison}{'' if gated else ', ungated'}",
                   rows=args.rows and gated)


def _agreement(scorer: MutualPredictability, pairs: list[dict[str, Any]], gated: bool,
               name: str, rows: bool = False) -> None:
    """The rewrite scored as the product scores it (gated by the invariants and the checks),
    or as it stands; the original as it stands."""
    judged, same = [], []
    for p in pairs:
        after = (score_aligned(p["b"], p["a"], p["mode"], scorer) if gated
                 else scorer.score(p["a"]))
        d = after.score - scorer.score(p["b"]).score
        if rows:
            label = {"a": "better", "b": "worse", "same": "same"}[p["better"]]
            agrees = {"better": d > 0, "worse": d < 0, "same": abs(d) < 0.01}[label]
            print(f"{p['id']:28} {label:6} {d:+.3f} {'' if agrees else 'DISAGREES'} "
                  f"{gate_word(after.outcome, after.rejection)} {','.join(after.codes)}")
        if p["better"] == "same":
            same.append(d)
        else:  # as (labelled better side, other side)
            judged.append((d, 0.0) if p["better"] == "a" else (0.0, d))
    if judged:
        print(f"{name}: agreement on {len(judged)} better/worse labels "
              f"{bootstrap(judged, win_rate)}")
    if same:
        mean_abs = bootstrap([abs(d) for d in same], lambda xs: sum(xs) / len(xs))
        mean = bootstrap(same, lambda xs: sum(xs) / len(xs))
        within = sum(abs(d) < 0.01 for d in same) / len(same)
        print(f"{name}: {len(same)} 'same' labels: mean difference {mean}, mean "
              f"|difference| {mean_abs}, {within:.0%} within 0.01")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("show")
    p.add_argument("--aligned", required=True, nargs="+")
    p.add_argument("--original", required=True, nargs="+")
    p.set_defaults(func=show)
    p = sub.add_parser("add")
    p.add_argument("--aligned", required=True, nargs="+")
    p.add_argument("--original", required=True, nargs="+")
    p.add_argument("--origin", choices=["real", "sample"], required=True)
    p.add_argument("--run", required=True, help="a name for the run the rewrites come from")
    p.add_argument("--mode", default=None, help="the mode, when the rows do not say it")
    p.add_argument("--labels", required=True)
    p.set_defaults(func=add)
    p = sub.add_parser("score")
    p.add_argument("--comparison", default=None,
                   help="score both sides with this comparison (default: counts only)")
    p.add_argument("--rows", action="store_true",
                   help="print each labelled rewrite's score change beside its label")
    p.set_defaults(func=score)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
