"""Evaluation rows say how each example ended and why, as the batch runner would record it."""

from __future__ import annotations

import dspy
import pytest

from argalign.modes.base import AlignmentFailed, QualityRejected
from argalign.programs.evaluation import evaluate, metric_row, summarize
from argalign.scoring.metrics import make_metric


class Scripted(dspy.Module):
    """No LM: returns a row or raises, as listed per example id."""

    def __init__(self, plan: dict):
        super().__init__()
        self.plan = plan

    def forward(self, row):
        what = self.plan[row["source_id"]]
        if isinstance(what, Exception):
            raise what
        return dspy.Prediction(row=what(row))


def changed(row):
    new = {**row, "messages": [dict(m) for m in row["messages"]]}
    user = next(m for m in new["messages"] if m["role"] == "user")
    # Something the request did not say yet (repeating "standard form in Argdown" would be a
    # trivial edit: unchanged).
    user["content"] += "\n\nPlease number the premises and say which of them the text leaves implicit."
    return new


def broken(row):
    new = changed(row)
    assistant = next(m for m in new["messages"] if m["role"] == "assistant")
    assistant["content"] = "something else"
    return new


@pytest.fixture
def examples(sample_rows):
    rows = {f"s{k}": {**row, "source_id": f"s{k}"} for k, row in enumerate(sample_rows[:5])}
    return [dspy.Example(id=i, row=row, mode="A").with_inputs("row") for i, row in rows.items()]


def test_each_row_says_how_the_example_ended(examples):
    program = Scripted({"s0": changed, "s1": lambda row: row, "s2": broken,
                        "s3": QualityRejected("PLAN_DROPPED", "the plan is gone", 3),
                        "s4": AlignmentFailed("PARSE_ERROR", "no JSON", 3)})
    rows = evaluate(program, examples, make_metric(comparison="structural"))
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == ["s0", "s1", "s2", "s3", "s4"]
    assert by_id["s0"]["outcome"] == "aligned" and by_id["s0"]["score"] > 0
    assert by_id["s0"]["codes"] == [] and by_id["s0"]["error"] is None
    assert by_id["s1"]["outcome"] == "unchanged" and by_id["s1"]["score"] == 0.0
    assert by_id["s2"]["outcome"] == "rejected" and "ASSISTANT_CONTENT_CHANGED" in by_id["s2"]["codes"]
    assert (by_id["s3"]["outcome"], by_id["s3"]["codes"]) == ("rejected", ["PLAN_DROPPED"])
    assert (by_id["s4"]["outcome"], by_id["s4"]["codes"]) == ("failed", ["PARSE_ERROR"])
    assert by_id["s4"]["error"].startswith("AlignmentFailed")
    for row_id in ("s2", "s3", "s4"):
        assert by_id[row_id]["score"] == 0.0 and by_id[row_id]["gate"] != "pass"
    summary = summarize(rows)
    passed = [r for r in rows if r["gate"] == "pass"]
    assert summary["invariant_pass_rate"] == len(passed) / 5
    assert summary["score"] == pytest.approx(sum(r["score"] for r in rows) / 5)


def test_rows_keep_the_rewrite_only_when_asked(examples):
    program = Scripted({"s0": changed, "s1": lambda row: row, "s2": broken,
                        "s3": QualityRejected("PLAN_DROPPED", "the plan is gone", 3),
                        "s4": AlignmentFailed("PARSE_ERROR", "no JSON", 3)})
    metric = make_metric(comparison="structural")
    plain = evaluate(program, examples, metric)
    kept = evaluate(program, examples, metric, keep_output=True)
    assert all("output" not in r and r["seconds"] >= 0 for r in plain)
    assert kept[0]["output"] == changed(examples[0].row)
    assert kept[0]["output"] != examples[0].row
    assert kept[3]["output"] is None and kept[4]["output"] is None  # gave up: no rewrite
    assert [{k: v for k, v in r.items() if k not in ("output", "seconds")} for r in kept] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in plain]


def test_a_plain_float_metric_gives_a_row_too():
    example = dspy.Example(id="x", row={}, mode="A").with_inputs("row")
    row = metric_row(example, dspy.Prediction(row={"messages": []}), 0.5)
    assert (row["score"], row["gate"], row["outcome"]) == (0.5, "error", "rejected")
