"""``argalign score`` logs to MLflow (a real SQLite store) and draws a progress bar; the
difference is over the rows that ended aligned."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import mlflow
import pytest

from argalign import tracking
from argalign.cli import main
from argalign.scoring.calibration import read_oracle

ORACLE = Path(str(importlib.resources.files("argalign") / "data" / "oracle" / "pairs.jsonl"))
SECRET = "sk-test-SCORE-0123456789"


@pytest.fixture
def files(tmp_path):
    """Originals and their rewrites as result records (the oracle's explicit pairs), and one
    record that ended unchanged."""
    explicit = [p for p in read_oracle(ORACLE) if p.id.startswith("explicit/")]
    original = tmp_path / "original.jsonl"
    aligned = tmp_path / "aligned.jsonl"
    original.write_text("".join(json.dumps({**p.a, "source_id": p.id}) + "\n" for p in explicit))
    records = [{"id": p.id, "row": p.b, "outcome": "aligned"} for p in explicit[1:]]
    records.append({"id": explicit[0].id, "row": explicit[0].a, "outcome": "unchanged"})
    aligned.write_text("".join(json.dumps(r) + "\n" for r in records))
    return original, aligned, len(explicit)


def test_score_logs_params_metrics_and_the_scores_file(files, tmp_path, mlflow_store, capsys,
                                                       monkeypatch):
    monkeypatch.setenv("API_ENDPOINT_KEY", SECRET)
    original, aligned, n = files
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--in", str(aligned), "--original", str(original), "--oracle",
                 str(ORACLE), "--comparison", "structural", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert "score: 100%" in captured.err  # the progress bar, on stderr
    # The unchanged record is scored but not paired: the difference is over aligned rows.
    assert (summary["paired"], summary["not_aligned"]) == (n - 1, 1)

    (run,) = tracking.search_runs(tracking.EXPERIMENT_SCORE)
    assert run["run_name"] == "score-aligned" and run["status"] == "FINISHED"
    assert run["tags"]["argalign.command"] == "score"
    assert run["params"] == {"comparison": "structural", "judge": "", "input": "aligned.jsonl",
                             "n": str(n), "scored": str(n), "original": "original.jsonl",
                             "oracle": "pairs.jsonl"}
    metrics = run["metrics"]
    for name, found in (("score_mean", summary["mean"]["score"]),
                        ("score_before", summary["baseline"]),
                        ("score_difference", summary["difference"]),
                        ("oracle_agreement", summary["oracle"]["better_worse"]["agreement"])):
        assert (metrics[f"{name}_low"], metrics[name], metrics[f"{name}_high"]) == pytest.approx(
            (found["low"], found["mean"], found["high"])), name
    assert metrics["n_paired"] == n - 1 and metrics["n_not_aligned"] == 1
    assert metrics["oracle_pairs"] == summary["oracle"]["pairs"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert artifacts == {"summary.json", "scores.jsonl", "scores.jsonl.oracle.jsonl"}
    logged = mlflow.artifacts.load_text(f"runs:/{run['run_id']}/scores.jsonl")
    assert logged == out.read_text("utf-8")
    assert SECRET.encode() not in mlflow_store.read_bytes()


def test_no_track_and_no_progress(files, tmp_path, mlflow_store, capsys):
    original, aligned, _ = files
    assert main(["score", "--in", str(aligned), "--comparison", "structural", "--no-track",
                 "--no-progress", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert "score:" not in capsys.readouterr().err
    assert tracking.search_runs(tracking.EXPERIMENT_SCORE) == []


def test_a_tracking_uri_that_is_not_a_store_is_refused_before_scoring(files, tmp_path, monkeypatch):
    _, aligned, _ = files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    out = tmp_path / "s.jsonl"
    assert main(["score", "--in", str(aligned), "--comparison", "structural",
                 "--out", str(out)]) == 2
    assert not out.exists()
