"""tracking.genai: the metric as an MLflow scorer, evaluations, traces built from LM histories
(scrubbed), and the sample as an evaluation dataset, in a real MLflow SQLite store."""

from __future__ import annotations

import copy

import mlflow
import pytest

from argalign import tracking
from argalign.programs.align import score_pair, scores_of
from argalign.scoring.metrics import MutualPredictability
from argalign.tracking import genai
from support import OWN_METHOD_SENTENCE

SECRET = "sk-test-GENAI-0123456789"


def _aligned(row: dict) -> dict:
    aligned = copy.deepcopy(row)
    user = next(m for m in aligned["messages"] if m["role"] == "user")
    user["content"] = "Reconstruct the argument in Argdown, with a title and gist.\n" + user["content"]
    thinking = next(m for m in aligned["messages"] if m.get("thinking"))
    thinking["thinking"] = f"{OWN_METHOD_SENTENCE} {thinking['thinking']}"  # not a trivial edit
    return aligned


def _feedback(trace, name: str):
    return next(a for a in trace.info.assessments if a.name == name)


def test_the_scorer_reports_given_scores_and_computes_missing_ones(sample_rows, mlflow_store):
    row = sample_rows[0]
    expected = score_pair(row, _aligned(row), "A", MutualPredictability("structural"), None, None)
    given = {"baseline": {"score": 0.2, "forward": 0.1}, "aligned": {"score": 0.5, "forward": 0.4,
                                                                     "gate": "pass"}}
    rows = [{"inputs": {"id": "given"}, "outputs": {"scores": given}},
            {"inputs": {"id": "computed", "row": row, "mode": "A"}, "outputs": {"row": _aligned(row)}},
            {"inputs": {"id": "unscorable"}, "outputs": {"outcome": "failed"}}]
    with tracking.start_run("genai-test", "evaluation", {}) as run:
        means = genai.evaluate_rows(rows, genai.scorer(compute=scores_of("structural")))
    traces = {t.data.spans[0].inputs["id"]: t
              for t in mlflow.search_traces(run_id=run.info.run_id, return_type="list")}
    assert set(traces) == {"given", "computed", "unscorable"}
    assert _feedback(traces["given"], "mutual_predictability").value == 0.5
    assert _feedback(traces["given"], "mutual_predictability_before").value == 0.2
    assert _feedback(traces["given"], "mutual_predictability_gain").value == pytest.approx(0.3)
    computed = traces["computed"]
    assert _feedback(computed, "mutual_predictability").value == pytest.approx(
        expected["aligned"]["score"])
    assert _feedback(computed, "mutual_predictability_before").value == pytest.approx(
        expected["baseline"]["score"])
    assert not [a for a in traces["unscorable"].info.assessments if a.name.startswith("mutual")]
    assert means["mutual_predictability/mean"] == pytest.approx(
        (0.5 + expected["aligned"]["score"]) / 2)


def test_an_alignment_trace_is_linked_scrubbed_and_evaluated(mlflow_store, monkeypatch):
    monkeypatch.setenv("API_ENDPOINT_KEY", SECRET)
    calls = [("lm call 1", {"messages": [{"role": "user", "content": f"rewrite {SECRET}"}],
                            "outputs": ["a new request"], "model": "m",
                            "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
             ("judge reading 1", {"prompt": "Which task?", "outputs": [{"text": "B"}],
                                  "usage": {"prompt_tokens": 7, "completion_tokens": 1}})]
    scores = {"baseline": {"score": 0.1}, "aligned": {"score": 0.3, "gate": "pass"}}
    with tracking.start_run("genai-test", "run", {}) as run:
        trace_id = genai.log_alignment_trace(
            experiment_id=run.info.experiment_id, run_id=run.info.run_id,
            inputs={"id": "x1", "mode": "A", "request": "x" * 20_000},
            outputs={"outcome": "aligned", "reason": f"echo {SECRET}", "scores": scores},
            seconds=2.0, calls=calls)
        assert trace_id is not None
        genai.evaluate_traces(run.info.run_id, genai.scorer())
    (trace,) = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    root, *children = trace.data.spans
    assert root.name == "align x1" and [c.name for c in children] == ["lm call 1", "judge reading 1"]
    assert all(c.parent_id == root.span_id for c in children)
    assert children[0].attributes["prompt_tokens"] == 12
    assert len(root.inputs["request"]) < 9000  # capped
    assert SECRET not in str(trace.to_dict()) and "[redacted]" in root.outputs["reason"]
    assert _feedback(trace, "mutual_predictability_gain").value == pytest.approx(0.2)
    assert trace.info.request_metadata["mlflow.sourceRun"] == run.info.run_id
    assert SECRET.encode() not in mlflow_store.read_bytes()


def test_the_sample_is_an_evaluation_dataset_merged_on_resume(sample_rows, mlflow_store):
    records = [{"inputs": {"id": f"r{i}", "row": row}} for i, row in enumerate(sample_rows[:3])]
    with tracking.start_run("genai-test", "first", {}):
        first = genai.log_sample("run-x sample", records[:2], {"argalign.run": "run-x"})
    with tracking.start_run("genai-test", "resumed", {}) as run:
        again = genai.log_sample("run-x sample", records[1:], {"argalign.run": "run-x"})
    assert again == first  # the same dataset, updated
    from mlflow.genai.datasets import get_dataset

    stored = get_dataset(dataset_id=first).to_df()
    assert sorted(r["id"] for r in stored["inputs"]) == ["r0", "r1", "r2"]
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["run-x sample"]


def test_the_logged_gain_is_the_scoreboards_mean_over_aligned_rows(mlflow_store):
    """One number for one thing: ``mlflow.genai.evaluate``'s mean gain leaves the unchanged and
    not_improved rows out, as the before/after table does (they are not zeros)."""
    from argalign.scoring.scoreboard import Scoreboard

    examples = [("a1", "aligned", 0.40, 0.50), ("a2", "aligned", 0.30, 0.32),
                ("u1", "unchanged", 0.50, 0.0), ("n1", "not_improved", 0.60, 0.55)]
    board = Scoreboard()
    with tracking.start_run("genai-test", "run", {}) as run:
        for name, outcome, before, after in examples:
            scores = {"baseline": {"score": before},
                      "aligned": {"score": after, "gate": "pass" if outcome != "unchanged"
                                  else "unchanged"}}
            board.add(config="c", mode="A", model="m", outcome=outcome, scores=scores)
            genai.log_alignment_trace(
                experiment_id=run.info.experiment_id, run_id=run.info.run_id,
                inputs={"id": name, "mode": "A"}, outputs={"outcome": outcome, "scores": scores},
                seconds=1.0, calls=[])
        means = genai.evaluate_traces(run.info.run_id, genai.scorer())
    table = board.as_dict()["all"]["score"]
    logged = mlflow.get_run(run.info.run_id).data.metrics
    assert table["difference"]["mean"] == pytest.approx(0.06)
    for name, side in (("gain", "difference"), ("before", "before")):
        assert logged[f"mutual_predictability_{name}/mean"] == pytest.approx(
            table[side]["mean"], abs=1e-4) == means[f"mutual_predictability_{name}/mean"]
    assert logged["mutual_predictability/mean"] == pytest.approx(table["after"]["mean"], abs=1e-4)
    traces = {t.data.spans[0].inputs["id"]: t
              for t in mlflow.search_traces(run_id=run.info.run_id, return_type="list")}
    unchanged = _feedback(traces["u1"], "mutual_predictability")
    assert unchanged.value is None and "unchanged: not in the means" in unchanged.rationale
    assert not [a for a in traces["u1"].info.assessments if a.name.endswith("_gain")]
