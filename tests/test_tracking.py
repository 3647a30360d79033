"""tracking: secrets are scrubbed before anything reaches MLflow; runs read back as dicts."""

from __future__ import annotations

import dspy
import pytest

from argalign import tracking
from argalign.core.redact import REDACTED
from support import KEY, TOKEN


def test_tracking_uri_defaults_to_sqlite_in_the_working_directory(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert tracking.tracking_uri() == "sqlite:////elsewhere/m.db"


def test_dspy_autolog_is_switched_off_after_the_block_even_on_error():
    from mlflow.dspy.callback import MlflowCallback

    def on() -> bool:
        return any(isinstance(c, MlflowCallback) for c in dspy.settings.callbacks)

    assert not on()
    track_usage = dspy.settings.track_usage
    with pytest.raises(RuntimeError), tracking.dspy_autolog() as enabled:
        assert enabled and on()
        raise RuntimeError("the compile failed")
    assert not on()
    assert dspy.settings.track_usage == track_usage


def test_a_run_is_logged_scrubbed_and_read_back(secrets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts in ./mlruns beside a SQLite store
    leaky = tmp_path / "leaky.txt"
    leaky.write_text(f"api_key: {KEY}\n", encoding="utf-8")
    params = {"mode": "A", "models": ["task", "judge"], "note": f"key={KEY}", "budget": None}
    with tracking.start_run(tracking.EXPERIMENT_RUN, "r1", params, {"who": TOKEN}) as run:
        tracking.log_metrics({"score": 0.5, "calls": 3, "skipped": None})
        tracking.log_dict({"rows": [{"feedback": f"saw {KEY}"}]}, "scores.json")
        tracking.log_text(f"token {TOKEN}", "notes.txt")
        tracking.log_file(leaky, "files")
        tracking.set_tags({"partial": "False", "leak": KEY})
    assert leaky.read_text(encoding="utf-8") == f"api_key: {KEY}\n"  # the file is left as is

    (found,) = tracking.search_runs(tracking.EXPERIMENT_RUN)
    assert (found["run_id"], found["run_name"], found["status"]) == (run.info.run_id, "r1",
                                                                      "FINISHED")
    assert found["params"] == {"mode": "A", "models": "task,judge",
                               "note": f"key={REDACTED}", "budget": "None"}
    assert found["metrics"] == {"score": 0.5, "calls": 3.0}
    assert found["tags"] == {"who": REDACTED, "partial": "False", "leak": REDACTED}
    assert tracking.search_runs("no-such-experiment") == []

    scores = tracking.download_artifact(f"runs:/{run.info.run_id}/scores.json", tmp_path / "dl")
    assert scores.read_text(encoding="utf-8").count(REDACTED) == 1
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != leaky]
    assert any(p.name == "mlflow.db" for p in files) and any("mlruns" in p.parts for p in files)
    for path in files:
        for secret in (KEY, TOKEN):
            assert secret.encode() not in path.read_bytes(), f"{secret} found in {path}"
