"""MLflow: one parent run per batch with params, metrics and artifacts; no secret anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from argalign import tracking
from argalign.stages.run.runner import run_batch
from support import (
    CONFIG,
    make_rows,
    mark_failing,
    read_rows,
    run_options,
    write_raw,
    write_settings,
)

SECRET = "sk-test-SECRET123"


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_parent_run_params_metrics_artifacts_and_no_secret(tmp_path, monkeypatch, real_rows_path,
                                                          fake_server, mlflow_store):
    import mlflow

    monkeypatch.setenv("API_ENDPOINT_KEY", SECRET)
    rows = make_rows(read_rows(real_rows_path), 4, "ml")
    rows[3] = {**mark_failing(rows[3]), "source_id": rows[3]["source_id"]}
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    # The key is really used: it goes to the endpoint as the bearer token.
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, api_key_env="API_ENDPOINT_KEY")
    options = run_options(data, settings, track=True, score=True, comparison="lexical",
                          accept_if_better=False)
    summary = run_batch(options)
    assert summary.done == 4

    (run,) = tracking.search_runs(tracking.EXPERIMENT_RUN)
    assert run["run_name"] == summary.run and run["status"] == "FINISHED"
    params = run["params"]
    assert params["configs"] == CONFIG and params["splits"] == "train" and params["n"] == "4"
    assert params["seed"] == "0" and params["modes"] == "A,B"
    assert params["models"] == "fake=openai/fake"
    assert params["program_A"].startswith("zsA-") and params["program_B"].startswith("zsB-")
    assert params["accept_if_better"] == "False" and params["accept_margin"] == ""
    metrics = run["metrics"]
    assert metrics["n_aligned"] + metrics["n_failed"] == 4 and metrics["n_failed"] == 1
    assert metrics["input_tokens"] > 0 and metrics["conversations_per_minute"] > 0
    # Before/after means over the aligned rows, each with its interval, overall and per group.
    for suffix in ("", "/mode_A", "/model_fake", f"/config_{CONFIG}"):
        for side in ("before", "after", "difference"):
            low, mean, high = (metrics[f"score_{side}{end}{suffix}"] for end in ("_low", "", "_high"))
            assert low <= mean <= high, (side, suffix)
    assert metrics["n_scored"] == metrics["n_aligned"] == 3
    assert metrics["n_failed/model_fake"] == 1 and metrics["n_aligned/model_fake"] == 3
    assert metrics["score_difference"] == pytest.approx(metrics["score_after"] - metrics["score_before"],
                                                        abs=1e-3)
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(run["run_id"])}
    assert {"summary.json", "manifest.json", "failures.jsonl", "tables", "plots"} <= artifacts
    assert run["tags"]["argalign.complete"] == "true"
    # The per-row table, the figures, the input dataset and the sample as an evaluation dataset.
    assert {a.path for a in client.list_artifacts(run["run_id"], "plots")} == {
        "plots/scores_by_mode.png", "plots/scores_by_model.png"}
    table = mlflow.load_table("tables/rows.json", run_ids=[run["run_id"]])
    assert sorted(table["id"]) == sorted(r["source_id"] for r in rows)
    assert set(table["outcome"]) == {"aligned", "failed"}
    aligned = table[table["outcome"] == "aligned"]
    assert aligned["score_after"].notna().all() and aligned["score_before"].notna().all()
    inputs = {i.dataset.name: i for i in mlflow.get_run(run["run_id"]).inputs.dataset_inputs}
    raw = inputs["data/raw"]
    assert raw.dataset.source_type == "local" and raw.dataset.digest
    assert inputs[f"{summary.run} sample"].dataset.source_type == "mlflow_evaluation_dataset"
    # Every example traced (4 < the default sample), with the metric's feedback on the scored.
    traces = mlflow.search_traces(run_id=run["run_id"], return_type="list")
    assert len(traces) == 4
    feedback = {t.info.request_metadata.get("mlflow.sourceRun") for t in traces}
    assert feedback == {run["run_id"]}
    scored = [t for t in traces if any(a.name == "mutual_predictability" for a in t.info.assessments)]
    assert len(scored) == 3  # the failed example has no scores
    spans = traces[0].data.spans
    assert spans[0].name.startswith("align ") and any(s.name.startswith("lm call") for s in spans)

    # A resume is a new batch, hence a new parent run.
    run_batch(options)
    assert len(tracking.search_runs(tracking.EXPERIMENT_RUN)) == 2

    leaks = _files_containing(tmp_path, SECRET.encode())
    assert leaks == [], f"the secret leaked into {leaks}"
    assert fake_server.stats.total > 0
