"""bench/optimize.py: the test set is disjoint from training, and the difference is decomposed right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import dspy
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_optimize", BENCH / "optimize.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def row(i, score, gate="pass"):
    return {"id": i, "score": score, "gate": gate, "outcome": "aligned" if gate == "pass"
            else "rejected", "codes": [] if gate == "pass" else ["PLAN_DROPPED"]}


def test_the_difference_is_split_into_gate_changes_and_rows_both_kept(bench):
    zero = [row("a", 0.5), row("b", 0.0, "check"), row("c", 0.6), row("d", 0.0, "check"),
            row("e", 0.4)]
    compiled = [row("a", 0.7), row("b", 0.8), row("c", 0.0, "check"), row("d", 0.0, "check"),
                row("e", 0.4)]
    out = bench.compare(zero, compiled)
    assert out["difference"]["mean"] == pytest.approx((0.2 + 0.8 - 0.6) / 5, abs=1e-4)
    assert (out["wins"], out["losses"], out["ties"]) == (2, 1, 2)
    assert out["gate"] == {"both_pass": 2, "neither": 1, "only_compiled_pass": 1,
                           "only_zero_shot_pass": 1}
    assert out["from_gate_changes"] == pytest.approx((0.8 - 0.6) / 5, abs=1e-4)
    assert out["from_rows_both_pass"] == pytest.approx(0.2 / 5, abs=1e-4)
    assert out["from_gate_changes"] + out["from_rows_both_pass"] == pytest.approx(
        out["difference"]["mean"], abs=1e-3)
    rows = bench.evidence(zero, compiled, [0.3] * 5)
    assert rows[1]["zero_shot"] == {"outcome": "rejected", "score": 0.0, "codes": ["PLAN_DROPPED"]}
    assert rows[1]["difference"] == 0.8


def test_an_unchanged_row_gains_nothing_and_a_worse_kept_rewrite_loses(bench):
    zero = [{**row("a", 0.0), "outcome": "unchanged", "gate": "unchanged"}, row("b", 0.6)]
    compiled = [row("a", 0.15), row("b", 0.55)]
    assert bench.gains(zero, [0.16, 0.5]) == [0.0, pytest.approx(0.1)]
    assert bench.gains(compiled, [0.16, 0.5]) == [pytest.approx(-0.01), pytest.approx(0.05)]
    out = bench.compare(zero, compiled, [0.16, 0.5])
    assert out["difference"]["mean"] > 0  # the raw scores favour the compiled program
    assert out["gain_difference"]["mean"] == pytest.approx((-0.01 - 0.05) / 2, abs=1e-4)
    assert out["gain_wins_losses_ties"] == [0, 2, 0]


def test_the_test_set_is_the_sample_test_split_and_the_real_rows_and_never_training(
        bench, real_rows_path):
    test = bench.test_rows(14, real_rows_path, seed=0)
    ids = [i for i, _ in test]
    assert len(ids) == len(set(ids)) == 20
    assert sum("/test/" in i for i in ids) == 14 and sum(i.startswith("real/") for i in ids) == 6
    assert bench.test_rows(14, real_rows_path, seed=0) == test  # seeded
    # A training example with a test row's content under another id still counts as overlap.
    with pytest.raises(SystemExit, match="overlap"):
        bench.check_disjoint(test, [dspy.Example(id="x", row=test[0][1])])
    other = [dspy.Example(id=i, row=r) for i, r in bench.test_rows(40, None, seed=0)
             if i not in ids]
    bench.check_disjoint(test, other)  # the rest of the test split: no overlap


def test_a_stopped_benchmark_keeps_complete_pairs(bench):
    measured = {"zero-shot": [], "bootstrap": []}
    original = {"a": 0.4, "b": 0.5, "c": 0.2}
    entry = {"programs": {}, "comparisons": {}}
    cost = {"seconds": 2.0, "lm_calls": 3, "output_tokens": 10, "forward": 0.5, "backward": 0.5}
    for i, (zero, compiled) in zip("abc", [(0.5, 0.7), (0.6, 0.0), (0.3, 0.3)]):
        measured["zero-shot"].append({**row(i, zero), **cost})
        measured["bootstrap"].append({**row(i, compiled, "pass" if compiled else "check"), **cost})
        bench.update_entry(entry, measured, None, original, None)
        if i == "b":  # stopped here: two complete pairs
            assert entry["programs"]["bootstrap"]["n"] == 2
            assert entry["comparisons"]["bootstrap"]["difference"]["mean"] == pytest.approx(
                (0.2 - 0.6) / 2, abs=1e-4)
    m = entry["programs"]["bootstrap"]
    assert (m["n"], m["lm_calls"], m["wall_s"], m["outcomes"]["rejected"]) == (3, 9, 6.0, 1)
    assert m["versus_original"]["mean"] == pytest.approx((0.3 - 0.5 + 0.1) / 3, abs=1e-4)
    c = entry["comparisons"]["bootstrap"]
    assert (c["wins"], c["losses"], c["ties"]) == (1, 1, 1)
    # Gains over the original: a kept rewrite scoring below its original loses; a rejected one
    # leaves the original (gain 0). Zero-shot gains 0.1, 0.1, 0.1; compiled 0.3, 0, 0.1.
    assert m["gain_ci"]["mean"] == pytest.approx(0.4 / 3, abs=1e-4)
    assert c["gain_difference"]["mean"] == pytest.approx((0.2 - 0.1 + 0) / 3, abs=1e-4)
    assert c["gain_wins_losses_ties"] == [1, 1, 1]
    assert [e["original"] for e in c["evidence"]] == [0.4, 0.5, 0.2]
    # A zero-shot evaluation reused from an earlier run pairs with the rows measured so far.
    earlier = bench.measurement([{**row(i, s), **cost} for i, s in zip("abc", (0.5, 0.6, 0.3))],
                                [0.4, 0.5, 0.2])
    again = {"programs": {}, "comparisons": {}}
    bench.update_entry(again, {"bootstrap": measured["bootstrap"][:1]}, earlier, original,
                       Path("old.json"))
    assert list(again["programs"]) == ["zero-shot", "bootstrap"]
    assert again["comparisons"]["bootstrap"]["difference"]["n"] == 1
    assert again["programs"]["zero-shot"]["reused_from"] == "old.json"


def _results(programs, reused=False):
    entry = {"programs": {}, "comparisons": {}, "compile": {}, "zero_shot_kept": []}
    for name, rows in programs.items():
        entry["programs"][name] = {"rows": rows}
    if reused:
        entry["programs"]["zero-shot"] = {"rows": [], "reused_from": "zs.json"}
    return {"comparison": "structural", "test": {"ids": ["x"]}, "modes": {"A": entry},
            "original": {"scores": {"x": 0.1}}}


def test_runs_merge_and_a_rewrite_a_later_check_catches_is_gated_again(bench, tmp_path):
    """Three runs on one test set become one table; a vague request rewritten into a question
    the answer does not answer (REQUEST_SKIPS_TASK, added after the run) is rejected."""
    import json

    from argalign.modes.base import Request
    from argalign.programs.gold import training_row

    original = training_row("sample/deepa2-aaac03-thinking/train/07")  # "Your turn." + text
    user = Request.of(original["messages"][1]["content"])

    def rewritten(instructions):
        new = json.loads(json.dumps(original))
        new["messages"][1]["content"] = user.with_instructions(instructions)
        return new

    good = rewritten("Reconstruct the argument in Argdown standard form with a title and a "
                     "gist, and name the inference rule of each step.")
    off_task = rewritten("What could Lena do about the meeting on Monday?")
    kept = {"id": "x", "outcome": "aligned", "score": 0.9, "gate": "pass", "codes": [],
            "seconds": 1, "lm_calls": 1, "output_tokens": 1}
    runs = {"zs": (_results({"zero-shot": [kept]}), off_task),
            "gold": (_results({"gold-few-shot": [dict(kept)]}, reused=True), good)}
    paths = []
    for name, (results, row) in runs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(results), "utf-8")
        program = next(iter(results["modes"]["A"]["programs"]))
        lines = [{"mode": None, "program": "original", "id": "x", "row": original},
                 {"mode": "A", "program": program, "id": "x", "row": row}]
        path.with_suffix(".outputs.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in lines), "utf-8")
        paths.append(path)
    results, outputs = bench.merged(paths)
    programs = results["modes"]["A"]["programs"]
    assert set(programs) == {"zero-shot", "gold-few-shot"}
    assert "reused_from" not in programs["zero-shot"]  # the run that measured it
    assert len(bench.read_jsonl(outputs)) == 3  # one original, two rewrites
    results = bench.rendered(bench.regated(results, outputs))
    zero, gold = (results["modes"]["A"]["programs"][n]["rows"][0]
                  for n in ("zero-shot", "gold-few-shot"))
    assert zero["outcome"] == "rejected" and "REQUEST_SKIPS_TASK" in zero["codes"]
    assert zero["score"] == 0.0
    assert gold["outcome"] == "aligned" and gold["score"] > results["original"]["scores"]["x"]
    assert results["modes"]["A"]["comparisons"]["gold-few-shot"]["difference"]["mean"] > 0
