"""Does prompt optimization improve alignment on held-out conversations? Zero-shot vs compiled.

For each mode and optimizer, ``argalign optimize`` compiles the mode's program: the optimizer
learns from the bundled sample's train split and selects on its validation split (programs are
saved by fingerprint, so a rerun reuses them). Then the zero-shot program and every compiled
program align the same held-out test set: a seeded draw from the sample's test split plus the
six real rows (``ARGALIGN_REAL_ROWS`` or ``../shared/data/argunauts-real-6.jsonl``, read here
and never copied). Each aligned row is scored by the metric (the gate, then the judge), and
the original rows too. Every rewrite is kept next to its original in
``bench/results/<out>.outputs.jsonl`` (one line per program and example; git-ignored, as the
real rows are never copied into the project), for reading the rewrites side by side.

Reported per mode and program: the mean test score with its bootstrap 95% interval; per
compiled program, the paired difference to zero-shot with its bootstrap 95% interval (the
conversations are resampled, both programs' scores stay paired), and where the difference
comes from: rows whose gate outcome changed (a rewrite rejected, failed or unchanged under
one program and kept under the other scores 0 on one side) against rows both programs got
through the gate. The raw score counts an ``unchanged`` row as 0 (an unchanged output is no
success), so a program that changes more rows can win on it with rewrites worse than their
originals; hence also the *gain over the original* (the kept rewrite's score minus the
original's, 0 when the original stays) per program and its paired difference. This gain is
the benchmark's own figure, not the before/after table's: ``run``, its MLflow metrics and
``mlflow.genai.evaluate`` average after - before over the rows that ended ``aligned`` only
(:func:`argalign.scoring.scoreboard.counted`); here an example whose original stays counts as 0, so
that two programs are compared on the same examples (a pair needs both).
``--render RESULTS_JSON`` computes every figure again from a results file's rows.
MLflow: one parent run per benchmark (experiment ``argalign-bench``), a child run per program
with its per-example rows; the compile runs are in ``argalign-optimize``. The test set is
measured example by example, every program in turn, and ``bench/results/optimize.json`` is
rewritten after each example (``"complete": false`` until the end; ``done`` per mode), so a
benchmark stopped early keeps complete pairs.

    python bench/optimize.py --settings /work/notes/exp/settings-8081.yaml     # local Qwen
    python bench/optimize.py --fake --train 3 --val 2 --test 4                  # simulated, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dspy
from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    FakeServerProcess,
    read_jsonl,
    table,
    write_results,
    write_settings,
)
from tqdm import tqdm

from argalign.core.defaults import DEFAULT_COMPARISON
from argalign.core.schema import content_key, example_id
from argalign.core.stats import difference_ci, mean_ci
from argalign.models.config import load_settings, model_fingerprint
from argalign.models.lm import open_models
from argalign.programs.evaluation import evaluate, metric_row, summarize
from argalign.programs.optimizer import program_key, with_gold
from argalign.programs.store import fingerprint, load_program
from argalign.scoring.metrics import make_metric
from argalign.stages.optimize import CallBudget, OptimizeSpec, budgeted, run_optimize
from argalign.stages.prepare import CONFIGS, sample_dir

log = logging.getLogger("bench.optimize")
EXPERIMENT = "argalign-bench"
DEFAULT_REAL_ROWS = BENCH_DIR.parents[1] / "shared" / "data" / "argunauts-real-6.jsonl"


# --- the test set ---------------------------------------------------------------------------------

def test_rows(n_sample: int, real_rows: Path | None, seed: int) -> list[tuple[str, dict]]:
    """``(id, row)``: a seeded draw of the sample's test split across configs, then the real rows."""
    pool = []
    for config in CONFIGS:
        for index, row in enumerate(read_jsonl(sample_dir() / config / "test.jsonl")):
            pool.append((example_id(row, config, "test", index), row))
    chosen = sorted(random.Random(f"bench-optimize/{seed}").sample(pool, min(n_sample, len(pool))),
                    key=lambda item: item[0])
    if real_rows is not None:
        for index, row in enumerate(read_jsonl(real_rows)):
            chosen.append((f"real/{row.get('example_id', index)}", row))
    return chosen


def check_disjoint(test: list[tuple[str, dict]], *others: list[dspy.Example]) -> None:
    """No test conversation is a training or validation conversation (by id or by content)."""
    seen_ids = {e.id for group in others for e in group}
    seen_keys = {content_key(e.row) for group in others for e in group}
    clash = [i for i, row in test if i in seen_ids or content_key(row) in seen_keys]
    if clash:
        raise SystemExit(f"test rows overlap the train/validation rows: {clash}")


# --- compiling --------------------------------------------------------------------------------------

def compile_program(args: argparse.Namespace, mode: str, optimizer: str) -> dict[str, Any]:
    spec = OptimizeSpec(mode=mode, optimizer=optimizer, model=args.model, judge=args.judge,
                        reflection_model=args.reflection_model, train=args.train, val=args.val,
                        seed=args.seed, budget_calls=args.budget_calls,
                        comparison=args.comparison, source="sample", configs=list(CONFIGS),
                        candidates=args.candidates, max_demos=args.max_demos, recompile=args.recompile)
    started = time.monotonic()
    result = run_optimize(spec, args.settings)
    log.info("%s/%s: compiled in %.0f s (%s)", mode, optimizer, time.monotonic() - started,
             "reused" if result.reused else f"{result.compile_calls} LM calls")
    return {**result.meta, "program_path": result.program_path, "reused": result.reused}


# --- evaluating -------------------------------------------------------------------------------------

class Outputs:
    """``<out>.outputs.jsonl``: the originals, then each program's rewrites, one per line."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", "utf-8")

    def add(self, mode: str | None, program: str, rows: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"mode": mode, "program": program, **r},
                                    ensure_ascii=False) + "\n")


def evaluate_one(program: dspy.Module, example: dspy.Example, metric, task,
                 counter: CallBudget) -> tuple[dict[str, Any], dict[str, Any]]:
    """One example through one program: its metric row (with ``lm_calls`` and
    ``output_tokens``) and the line for the outputs file."""
    before = (counter.used, counter.output_tokens)
    with dspy.context(lm=budgeted(task.lm, counter), adapter=task.adapter):
        row = evaluate(program, [example], metric, keep_output=True)[0]
    output = row.pop("output")
    row.update(lm_calls=counter.used - before[0], output_tokens=counter.output_tokens - before[1])
    return row, {"id": row["id"], "outcome": row["outcome"], "score": row["score"],
                 "codes": row["codes"], "row": output}


def gains(rows: list[dict[str, Any]], original: list[float]) -> list[float]:
    """What each example gains over its original: the rewrite's score minus the original's when
    the rewrite is kept (``aligned``); 0 otherwise, as the original is then what remains. So an
    unchanged row neither wins nor loses, and a kept rewrite that scores lower loses. (Not the
    run's mean gain, which leaves the rows not aligned out: see the module docstring.)"""
    return [r["score"] - o if r["outcome"] == "aligned" else 0.0 for r, o in zip(rows, original)]


def measurement(rows: list[dict[str, Any]], original: list[float]) -> dict[str, Any]:
    """A program's test figures over the rows measured so far (``original``: their originals'
    scores, in the same order)."""
    scores = [r["score"] for r in rows]
    return {"n": len(rows), "rows": rows, "summary": summarize(rows),
            "gain_ci": mean_ci(gains(rows, original)).as_dict(),
            "wall_s": round(sum(r["seconds"] for r in rows), 1),
            "lm_calls": sum(r["lm_calls"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
            "outcomes": {o: sum(r["outcome"] == o for r in rows)
                         for o in ("aligned", "unchanged", "failed", "rejected")},
            "score_ci": mean_ci(scores).as_dict(),
            "versus_original": difference_ci(list(zip(original, scores))).as_dict()}


def compare(zero: list[dict[str, Any]], compiled: list[dict[str, Any]],
            original: list[float] | None = None) -> dict[str, Any]:
    """The paired difference compiled - zero-shot, and where it comes from; with the originals'
    scores also the paired difference of the gains over the original (:func:`gains`)."""
    pairs = [(a["score"], b["score"]) for a, b in zip(zero, compiled)]
    n = len(pairs)
    passes = [(a["gate"] == "pass", b["gate"] == "pass") for a, b in zip(zero, compiled)]
    both = [i for i, (x, y) in enumerate(passes) if x and y]
    changed = [i for i, (x, y) in enumerate(passes) if x != y]
    delta = [b - a for a, b in pairs]
    out = {
        "difference": difference_ci(pairs).as_dict(),
        "wins": sum(d > 0 for d in delta), "losses": sum(d < 0 for d in delta),
        "ties": sum(d == 0 for d in delta),
        "gate": {"both_pass": len(both), "neither": sum(not x and not y for x, y in passes),
                 "only_compiled_pass": sum(y and not x for x, y in passes),
                 "only_zero_shot_pass": sum(x and not y for x, y in passes)},
        # Shares of the mean difference: the two parts sum to it (rows failing both score 0).
        "from_gate_changes": round(sum(delta[i] for i in changed) / n, 4),
        "from_rows_both_pass": round(sum(delta[i] for i in both) / n, 4),
    }
    if len(both) >= 2:
        out["both_pass_difference"] = difference_ci([pairs[i] for i in both]).as_dict()
    if original is not None:
        gained = list(zip(gains(zero, original), gains(compiled, original)))
        out["gain_difference"] = difference_ci(gained).as_dict()
        out["gain_wins_losses_ties"] = [sum(b > a for a, b in gained),
                                        sum(b < a for a, b in gained),
                                        sum(b == a for a, b in gained)]
    return out


def evidence(zero: list[dict[str, Any]], compiled: list[dict[str, Any]],
             original: list[float]) -> list[dict[str, Any]]:
    """Per example: both programs' outcome, score and codes, and the original's score."""
    return [{"id": a["id"], "original": round(o, 4),
             "zero_shot": {"outcome": a["outcome"], "score": round(a["score"], 4),
                           "codes": a["codes"]},
             "compiled": {"outcome": b["outcome"], "score": round(b["score"], 4),
                          "codes": b["codes"]},
             "difference": round(b["score"] - a["score"], 4)}
            for a, b, o in zip(zero, compiled, original)]


def reused_zero_shot(path: Path | None, mode: str, key: str) -> dict[str, Any] | None:
    """The zero-shot test evaluation of an earlier results file, if it measured the same thing."""
    if path is None:
        return None
    entry = json.loads(path.read_text("utf-8"))["modes"].get(mode) or {}
    if entry.get("zero_shot_key") != key:
        raise SystemExit(f"{path}: its mode {mode} zero-shot evaluation was made with another "
                         "program, models, metric or test set; leave out --zero-shot-from")
    log.info("mode %s: zero-shot test rows reused from %s", mode, path)
    return entry["programs"]["zero-shot"]


def update_entry(entry: dict[str, Any], rows: dict[str, list[dict[str, Any]]],
                 earlier: dict[str, Any] | None, original: dict[str, float],
                 earlier_path: Path | None) -> None:
    """A mode's programs and comparisons over the examples measured so far."""
    if earlier is not None:
        entry["programs"]["zero-shot"] = {**earlier, "reused_from": str(earlier_path)}
    for name, program_rows in rows.items():
        entry["programs"][name] = measurement(program_rows,
                                              [original[r["id"]] for r in program_rows])
    zero_rows = entry["programs"]["zero-shot"]["rows"]
    for name, program_rows in rows.items():
        if name != "zero-shot":
            paired = zero_rows[:len(program_rows)]
            before = [original[r["id"]] for r in program_rows]
            entry["comparisons"][name] = {**compare(paired, program_rows, before),
                                          "evidence": evidence(paired, program_rows, before)}


# --- the benchmark ----------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark; the results file is rewritten after each test example."""
    from argalign import tracking
    from argalign.stages.optimize import load_examples

    started = time.monotonic()
    real = args.real_rows if args.real_rows and args.real_rows.is_file() else None
    if args.real_rows and real is None:
        log.warning("no real rows at %s: the test set is the sample's test split only",
                    args.real_rows)
    test = test_rows(args.test, real, args.seed)
    settings = load_settings(args.settings)
    model = args.model or settings.default_model
    judge = args.judge or settings.default_judge
    results: dict[str, Any] = {
        "command": " ".join(sys.argv), "task_model": model, "judge_model": judge,
        "task_model_string": settings.get(model).model, "comparison": args.comparison,
        "train": args.train, "val": args.val, "seed": args.seed, "budget_calls": args.budget_calls,
        "candidates": args.candidates, "max_demos": args.max_demos,
        "test": {"n": len(test), "sample": args.test, "real": 0 if real is None else
                 sum(1 for i, _ in test if i.startswith("real/")), "ids": [i for i, _ in test]},
        "modes": {}, "complete": False}
    outputs = Outputs(RESULTS_DIR / f"{args.out}.outputs.jsonl")

    compiled: dict[str, dict[str, Any]] = {}
    for mode in args.modes:
        train = load_examples("sample", list(CONFIGS), "train", args.train, args.seed, mode)
        val = load_examples("sample", list(CONFIGS), "validation", args.val, args.seed, mode)
        check_disjoint(test, train, val)
        compiled[mode] = {opt: compile_program(args, mode, opt) for opt in args.optimizers}
    compile_s = time.monotonic() - started

    params = {"modes": args.modes, "optimizers": args.optimizers, "task_model": model,
              "judge_model": judge, "comparison": args.comparison, "train": args.train,
              "val": args.val, "test": len(test), "seed": args.seed,
              "budget_calls": args.budget_calls}
    with open_models(settings, [model, judge]) as handles, tracking.start_run(
            EXPERIMENT, f"optimize-{'+'.join(args.modes)}-{'+'.join(args.optimizers)}", params,
            {"argalign.bench": "optimize"}):
        task, judge_handle = handles[model], handles[judge]
        task_calls, judge_calls = CallBudget(None), CallBudget(None)
        # One metric, so one judge and one reading cache: the originals' readings (and the
        # response readings every rewrite shares) are made once.
        metric = make_metric(budgeted(judge_handle.lm, judge_calls), args.comparison)
        original: dict[str, float] = {}  # the originals' scores, made as the examples come up

        def score_original(example_id: str, row: dict[str, Any]) -> float:
            if example_id not in original:
                with dspy.context(lm=budgeted(judge_handle.lm, judge_calls)):
                    original[example_id] = metric.scorer.score(row).score
                outputs.add(None, "original", [{"id": example_id, "score": original[example_id],
                                                "row": row}])
                results["original"] = {"scores": original,
                                       "mean": mean_ci(list(original.values())).as_dict()}
            return original[example_id]

        for mode in args.modes:
            examples = [dspy.Example(id=i, row=row, mode=mode).with_inputs("row")
                        for i, row in test]
            programs = {"zero-shot": load_program(mode)[0]}
            if args.gold_few_shot:
                # The gold demos as they are, unselected: what gold alone does on held-out rows
                # (the ``gold`` optimizer keeps them only if they beat zero-shot on the valset).
                programs["gold-few-shot"] = with_gold(programs["zero-shot"], OptimizeSpec(
                    mode=mode, max_demos=args.max_demos, seed=args.seed))
            entry: dict[str, Any] = {"programs": {}, "comparisons": {}, "compile": {},
                                     "zero_shot_kept": [], "done": 0}
            results["modes"][mode] = entry
            for opt, result in compiled[mode].items():
                entry["compile"][opt] = {k: result.get(k) for k in (
                    "program_path", "fingerprint", "reused", "partial", "baseline", "compiled",
                    "compile_calls", "report_calls", "output_tokens", "wall_s", "zero_shot_kept",
                    "compile")}
                program = load_program(mode, result["program_path"])[0]
                if program_key(program) == program_key(programs["zero-shot"]):
                    # No candidate beat zero-shot on the valset: the same program, nothing to
                    # compare on the test set.
                    entry["zero_shot_kept"].append(opt)
                else:
                    programs[opt] = program
            reuse_key = fingerprint({
                "mode": mode, "zero_shot": program_key(programs["zero-shot"]),
                "task_model": model_fingerprint(settings.get(model)),
                "judge_model": model_fingerprint(settings.get(judge)),
                "comparison": args.comparison, "test": [i for i, _ in test]})
            entry["zero_shot_key"] = reuse_key
            earlier = reused_zero_shot(args.zero_shot_from, mode, reuse_key)
            measured = [name for name in programs if not (name == "zero-shot" and earlier)]
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in measured}
            # Example by example, every program in turn: a benchmark stopped early still has
            # complete pairs, and the results file says how many (``done``).
            bar = tqdm(examples, desc=f"mode {mode} test", unit="conv", file=sys.stderr,
                       dynamic_ncols=True)
            for example in bar:
                score_original(example.id, example.row)
                for name in measured:
                    row, output = evaluate_one(programs[name], example, metric, task, task_calls)
                    rows[name].append(row)
                    outputs.add(mode, name, [output])
                entry["done"] += 1
                update_entry(entry, rows, earlier, original, args.zero_shot_from)
                bar.set_postfix({n: f"{c['difference']['mean']:+.3f}"
                                 for n, c in entry["comparisons"].items()})
                write_results(args.out, results)  # what is measured so far survives a stop
            for name in measured:
                with tracking.child_run(f"{mode}-{name}", {
                        "mode": mode, "program": name,
                        "program_path": compiled[mode].get(name, {}).get("program_path", "")}):
                    m = entry["programs"][name]
                    tracking.log_metrics({
                        **{f"test_{k}": v for k, v in m["summary"].items()},
                        "test_score_low": m["score_ci"]["low"],
                        "test_score_high": m["score_ci"]["high"],
                        **{f"n_{k}": v for k, v in m["outcomes"].items()},
                        "lm_calls": m["lm_calls"], "wall_time_s": m["wall_s"]})
                    tracking.log_dict(m["rows"], "test_rows.json")
        results["usage"] = {"test_task_calls": task_calls.used, "judge_calls": judge_calls.used}
        results["duration_s"] = {"compile": round(compile_s, 1),
                                 "total": round(time.monotonic() - started, 1)}
        tracking.log_metrics({f"{mode}_{opt}_difference": c["difference"]["mean"]
                              for mode, e in results["modes"].items()
                              for opt, c in e["comparisons"].items()})
        results["complete"] = True
        tracking.log_dict(results, "results.json")
    return results


def report(results: dict[str, Any]) -> str:
    rows = []
    for mode, entry in results["modes"].items():
        for name, measured in entry["programs"].items():
            ci = measured["score_ci"]
            row = {"mode": mode, "program": name, "test score": ci["mean"],
                   "95% CI": f"[{ci['low']:.3f}, {ci['high']:.3f}]",
                   "pass": measured["summary"]["invariant_pass_rate"],
                   "outcomes a/u/f/r": "/".join(str(measured["outcomes"][o]) for o in (
                       "aligned", "unchanged", "failed", "rejected"))}
            comparison = entry["comparisons"].get(name)
            if comparison:
                d = comparison["difference"]
                row.update({"diff": d["mean"], "diff 95% CI": f"[{d['low']:.3f}, {d['high']:.3f}]",
                            "w/l/t": f"{comparison['wins']}/{comparison['losses']}/"
                                     f"{comparison['ties']}",
                            "from gate": comparison["from_gate_changes"]})
            rows.append(row)
        for name in entry.get("zero_shot_kept", []):
            rows.append({"mode": mode, "program": f"{name} (= zero-shot)"})
    return table(rows, ["mode", "program", "test score", "95% CI", "pass", "outcomes a/u/f/r",
                        "diff", "diff 95% CI", "w/l/t", "from gate"])


def _signed(ci: dict[str, Any]) -> str:
    return f"{ci['mean']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"


def rendered(results: dict[str, Any]) -> dict[str, Any]:
    """The results with every figure computed again from the saved per-example rows (for a
    results file written by an earlier version of this script, or stopped early); no LM call."""
    original = results["original"]["scores"]
    for entry in results["modes"].values():
        rows = {name: m["rows"] for name, m in entry["programs"].items()
                if not m.get("reused_from")}
        earlier = entry["programs"].get("zero-shot") if "zero-shot" not in rows else None
        n = min(len(r) for r in rows.values())
        entry["done"] = n
        update_entry(entry, {name: r[:n] for name, r in rows.items()}, earlier, original,
                     Path(earlier["reused_from"]) if earlier else None)
    return results


def merged(paths: list[Path]) -> tuple[dict[str, Any], Path]:
    """One results file from several runs on the same test set (each adds its programs to each
    mode; a reused zero-shot entry gives way to the run that measured it), and their outputs
    files joined into ``<first>.merged.outputs.jsonl``. One path: that file, as it is."""
    results = json.loads(paths[0].read_text("utf-8"))
    if len(paths) == 1:
        return results, paths[0].with_suffix(".outputs.jsonl")
    out = paths[0].with_name(paths[0].stem + ".merged.outputs.jsonl")
    lines = read_jsonl(paths[0].with_suffix(".outputs.jsonl"))
    for path in paths[1:]:
        other = json.loads(path.read_text("utf-8"))
        if other["test"]["ids"] != results["test"]["ids"] or \
                other["comparison"] != results["comparison"]:
            raise SystemExit(f"{path}: another test set or comparison than {paths[0]}")
        for mode, entry in other["modes"].items():
            mine = results["modes"].setdefault(mode, entry)
            if mine is entry:
                continue
            for name, measured in entry["programs"].items():
                if name not in mine["programs"] or mine["programs"][name].get("reused_from"):
                    mine["programs"][name] = measured
            mine["compile"] = {**mine.get("compile", {}), **entry.get("compile", {})}
            mine["zero_shot_kept"] = [*mine.get("zero_shot_kept", []),
                                      *entry.get("zero_shot_kept", [])]
        lines += [r for r in read_jsonl(path.with_suffix(".outputs.jsonl"))
                  if r["program"] != "original"]
    seen, unique = set(), []
    for r in lines:  # a program measured twice (a reused zero-shot) keeps its first rows
        key = (r.get("mode"), r["program"], r["id"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in unique), "utf-8")
    results["merged_from"] = [str(p) for p in paths]
    return results, out


def regated(results: dict[str, Any], outputs: Path) -> dict[str, Any]:
    """The results with every kept rewrite gated and scored again by today's checks and metric
    (LM-free comparisons only): a check added after the run rejects what it catches. A program
    that ran with the check would have retried such a rewrite, so this is the conservative
    reading; the originals' scores are computed again too. No LM call."""
    if results["comparison"] not in ("structural", "lexical"):
        raise SystemExit(f"--regate needs an LM-free comparison, not {results['comparison']!r}")
    metric = make_metric(None, results["comparison"])
    lines = read_jsonl(outputs)
    originals = {r["id"]: r["row"] for r in lines if r["program"] == "original"}
    results["original"]["scores"] = {i: metric.scorer.score(row).score
                                     for i, row in originals.items()}
    rewrites = {(r["mode"], r["program"], r["id"]): r["row"] for r in lines
                if r["program"] != "original"}
    for mode, entry in results["modes"].items():
        for name, measured in entry["programs"].items():
            for k, row in enumerate(measured["rows"]):
                aligned = rewrites.get((mode, name, row["id"]))
                if row["outcome"] not in ("aligned", "unchanged") or aligned is None:
                    continue  # failed or rejected in the run: no rewrite to gate again
                example = dspy.Example(id=row["id"], row=originals[row["id"]], mode=mode)
                fresh = metric_row(example, dspy.Prediction(row=aligned),
                                   metric(example, dspy.Prediction(row=aligned)))
                measured["rows"][k] = {**row, **{key: fresh[key] for key in (
                    "outcome", "score", "forward", "backward", "coherence", "gate", "codes")}}
    results["regated"] = True
    return results


def markdown(results: dict[str, Any]) -> str:
    """The README's tables: scores and differences, then the per-example evidence."""
    lines = ["| mode | program | n | test score (95% CI) | aligned / unchanged / failed / rejected "
             "| compiled − zero-shot (95% CI) | wins / losses / ties | from gate changes "
             "| gain over the original (95% CI) | compiled − zero-shot in gain (95% CI) "
             "| gain wins / losses / ties |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, entry in results["modes"].items():
        for name, measured in entry["programs"].items():
            ci, o = measured["score_ci"], measured["outcomes"]
            cells = [mode, name, str(ci["n"]), f"{ci['mean']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]",
                     f"{o['aligned']} / {o['unchanged']} / {o['failed']} / {o['rejected']}"]
            c = entry["comparisons"].get(name)
            if c:
                d = c["difference"]
                cells += [_signed(d), f"{c['wins']} / {c['losses']} / {c['ties']}",
                          f"{c['from_gate_changes']:+.3f}"]
            else:
                cells += ["", "", ""]
            cells.append(_signed(measured["gain_ci"]) if "gain_ci" in measured else "")
            if c and "gain_difference" in c:
                cells += [_signed(c["gain_difference"]),
                          " / ".join(map(str, c["gain_wins_losses_ties"]))]
            else:
                cells += ["", ""]
            lines.append("| " + " | ".join(cells) + " |")
        for name in entry.get("zero_shot_kept", []):
            lines.append(f"| {mode} | {name} | | = zero-shot (no candidate beat it on the valset) "
                         "| | | | | | | |")
    for mode, entry in results["modes"].items():
        for name, c in entry["comparisons"].items():
            lines += ["", f"Per example, mode {mode}, {name} vs zero-shot (score, outcome, codes):",
                      "", "| example | original | zero-shot | compiled | difference |",
                      "|---|---:|---|---|---:|"]
            for e in c["evidence"]:
                def side(x: dict[str, Any]) -> str:
                    codes = f" {','.join(x['codes'])}" if x["codes"] else ""
                    return f"{x['score']:.3f} {x['outcome']}{codes}"
                lines.append(f"| {e['id']} | {e['original']:.3f} | {side(e['zero_shot'])} | "
                             f"{side(e['compiled'])} | {e['difference']:+.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default=None, help="model settings YAML")
    parser.add_argument("--model", default=None)
    parser.add_argument("--judge", default=None)
    parser.add_argument("--reflection-model", default=None)
    parser.add_argument("--modes", nargs="+", default=["A", "B"])
    parser.add_argument("--optimizers", nargs="*", default=["bootstrap", "gepa"],
                        help="optimizers to compile and measure (none: zero-shot and gold only)")
    parser.add_argument("--train", type=int, default=6)
    parser.add_argument("--val", type=int, default=6)
    parser.add_argument("--test", type=int, default=14, help="rows of the sample's test split")
    parser.add_argument("--real-rows", type=Path, default=Path(os.environ.get(
        "ARGALIGN_REAL_ROWS") or DEFAULT_REAL_ROWS))
    parser.add_argument("--budget-calls", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--max-demos", type=int, default=3, help="demos per predictor")
    parser.add_argument("--gold-few-shot", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the zero-shot program holding --max-demos gold demos, "
                             "unselected (program 'gold-few-shot')")
    parser.add_argument("--comparison", default=DEFAULT_COMPARISON)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recompile", action="store_true", help="compile again even if saved")
    parser.add_argument("--zero-shot-from", type=Path, default=None, metavar="RESULTS_JSON",
                        help="reuse the zero-shot test rows of an earlier run of the same setup")
    parser.add_argument("--fake", action="store_true", help="the simulated endpoint (a smoke run)")
    parser.add_argument("--render", type=Path, nargs="+", default=None, metavar="RESULTS_JSON",
                        help="no benchmark: compute the figures and tables of a results file again "
                             "from its per-example rows (writes RESULTS_JSON's .md next to it)")
    parser.add_argument("--regate", action="store_true",
                        help="with --render: gate and score every rewrite again with today's "
                             "checks (structural or lexical comparison; reads <OUT>.outputs.jsonl)")
    parser.add_argument("--out", default="optimize", help="bench/results/<OUT>.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("dspy", "LiteLLM", "httpx", "mlflow", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)

    if args.render is not None:
        first = args.render[0]
        results, outputs = merged(args.render)
        if args.regate:
            results = regated(results, outputs)
        results = rendered(results)
        path = first.with_name(first.stem + ".rendered.json")
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
        first.with_suffix(".md").write_text(markdown(results) + "\n", "utf-8")
        sys.stdout.write(report(results) + "\n")
        sys.stdout.write(f"complete: {results.get('complete')}; done: "
                         f"{ {m: e.get('done') for m, e in results['modes'].items()} }; {path}\n")
        return 0
    if args.fake:
        with FakeServerProcess("--output-words", "15") as server, \
                tempfile.TemporaryDirectory() as tmp:
            args.settings = str(write_settings(Path(tmp) / "fake.yaml", server.url))
            results = run(args)
    else:
        results = run(args)
    path = write_results(args.out, results)
    path.with_suffix(".md").write_text(markdown(results) + "\n", "utf-8")
    sys.stdout.write(report(results) + "\n")
    sys.stdout.write(f"{results['test']['n']} test conversations; {results['duration_s']}; "
                     f"results in {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
