"""Shared helpers of the tests/test_run_*.py files: raw data from the real rows, a fake endpoint.

Not a test module itself; imported as ``from test_run_support import ...`` (pytest puts
``tests/`` on ``sys.path``). A fixture is made available to a module by importing its
``*_fixture`` function.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from argalign.jsonl import iter_jsonl
from argalign.schema import Example
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer, default_responder
from conftest import REAL_ROWS

CONFIG = "deepa2-aaac01-thinking"
# The same file as conftest's ``real_rows_path`` fixture, for module-scoped fixtures.
REAL_ROWS_PATH = REAL_ROWS
FAIL_MARKER = "FAILME"


def real_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def make_rows(real: list[dict[str, Any]], count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` copies of the real rows in turn, each with its own ``source_id``."""
    rows = []
    for k in range(count):
        row = copy.deepcopy(real[k % len(real)])
        row["source_id"] = f"{prefix}-{k:03d}"
        rows.append(row)
    return rows


def mark_failing(row: dict[str, Any]) -> dict[str, Any]:
    """A row whose prompts make :func:`responder` answer with unusable (too long) fields."""
    row = copy.deepcopy(row)
    user = next(m for m in row["messages"] if m["role"] == "user")
    user["content"] = f"{FAIL_MARKER} {user['content']}"
    return row


def write_raw(data: Path, subsets: dict[tuple[str, str], list[Any]]) -> Path:
    """Raw subsets as ``argalign prepare`` writes them, with the raw manifest."""
    for (config, split), rows in subsets.items():
        path = data / "raw" / config / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for index, row in enumerate(rows):
                row_id = row.get("source_id") or f"{config}/{split}/{index}"
                fh.write(json.dumps(Example(row_id, config, split, index, row).to_record()) + "\n")
    configs = sorted({c for c, _ in subsets})
    splits = sorted({s for _, s in subsets})
    (data / "raw" / "manifest.json").write_text(json.dumps({"configs": configs, "splits": splits}))
    return data


def raw_ids(data: Path, config: str, split: str) -> list[str]:
    return [r["id"] for _, r in iter_jsonl(data / "raw" / config / f"{split}.jsonl")]


def responder(fields: dict[str, str], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The default fake answers (short), or 5,000-character fields for a marked row."""
    if any(FAIL_MARKER in str(m.get("content")) for m in messages):
        return {name: "x" * 5000 for name in fields}
    return default_responder(fields, messages, words=12)


def write_settings(path: Path, url: str, *, models: dict[str, dict[str, Any]] | None = None,
                   **overrides: Any) -> Path:
    """A settings YAML whose models all point at the fake server (JSON is valid YAML)."""
    base = {"model": "openai/fake", "api_base": url, "structured_output": "none", "cache": False,
            "timeout_s": 10, "num_retries": 1, "concurrency": 2, "max_tokens": 512}
    models = models or {"fake": {}}
    settings = {"default_model": next(iter(models)), "default_judge": next(iter(models)),
                "models": {name: {**base, **overrides, **extra} for name, extra in models.items()}}
    path.write_text(json.dumps(settings, indent=2), "utf-8")
    return path


@pytest.fixture(name="fake_server")
def fake_server_fixture() -> Iterator[FakeOpenAIServer]:
    """A fake endpoint with short deterministic answers; ``FAILME`` rows get unusable ones."""
    with FakeOpenAIServer(FakeConfig(output_words=12), responder=responder) as server:
        yield server


def results(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete result record of a run (torn lines skipped)."""
    out = []
    for path in sorted((run_dir / "results").glob("*/*/*.jsonl")):
        out.extend(r for _, r in iter_jsonl(path, tolerate_torn=True))
    return out


def comparable(records: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """What must match between runs: id, outcome, group and the aligned row."""
    return sorted((r["id"], r["outcome"], f"{r['mode']}-{r['model']}",
                   json.dumps(r["row"], sort_keys=True)) for r in records)


@pytest.fixture(name="mlflow_template", scope="session")
def mlflow_template_fixture(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables created once (creating them takes seconds)."""
    from argalign import tracking

    where = tmp_path_factory.mktemp("mlflow-template")
    db = where / "mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    try:
        tracking.search_runs("warm-up")
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return db


@pytest.fixture(name="mlflow_store")
def mlflow_store_fixture(tmp_path, monkeypatch, mlflow_template) -> Path:
    """A fresh copy of the template store at the URI conftest set; artifacts under tmp_path."""
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.chdir(tmp_path)
    return db


def run_options(data: Path, settings: Path, **changes: Any):
    from argalign.run.runner import RunOptions

    return RunOptions(**{"data": data, "config": str(settings), "track": False, "progress": False,
                         **changes})

