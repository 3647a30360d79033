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
