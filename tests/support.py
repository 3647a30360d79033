"""Helpers shared by the tests: raw data made from the real rows, settings for the fake endpoint.

Not a test module; imported as ``from support import ...`` (``tests/`` is on ``sys.path``, see
``pythonpath`` in pyproject.toml). The fixtures that go with these helpers (``real_rows``,
``fake_server``, ``mlflow_store``) are in ``conftest.py``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from argalign.core.deliverables import TASKS
from argalign.core.jsonl import iter_jsonl
from argalign.core.schema import Example
from argalign.scoring.judge import LETTERS, METHOD_OPTIONS, READINGS
from argalign.testing.argalign_responder import default_responder

CONFIG = "deepa2-aaac01-thinking"
# Recognisable fake secrets; the ``secrets`` fixture puts them in the environment.
KEY, TOKEN = "sk-test-SECRET-abc123", "hf_SECRETtoken999"
FAIL_MARKER = "FAILME"


def read_rows(path: Path) -> list[dict[str, Any]]:
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
    # Every prompt shows the first thinking's opening (a kept request may not reach the LM at
    # all, and the line that introduces the text is not shown to it).
    thinking = next(m for m in row["messages"] if m.get("thinking"))
    thinking["thinking"] = f"{FAIL_MARKER} {thinking['thinking']}"
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




def run_options(data: Path, settings: Path, **changes: Any):
    from argalign.stages.run.runner import RunOptions

    return RunOptions(**{"data": data, "settings": str(settings), "track": False, "progress": False,
                         **changes})


def complete_lines(run_dir: Path) -> int:
    """Complete result lines of a run, torn last lines not counted."""
    count = 0
    for path in (run_dir / "results").glob("*/*/*.jsonl"):
        count += path.read_bytes().count(b"\n")
    return count


def run_command(data: Path, settings: Path, *extra: str) -> list[str]:
    """``argalign run`` as a subprocess command line (no MLflow, no progress bar, seed 5)."""
    return [sys.executable, "-m", "argalign.cli", "run", "--data", str(data), "--settings",
            str(settings), "--no-track", "--no-progress", "--seed", "5", *extra]


def kill_after(command: list[str], tmp_path: Path, run_dir: Path, at_least: int) -> None:
    """Start ``argalign run`` and SIGKILL it once ``at_least`` result lines exist."""
    log = tmp_path / "killed-run.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 60
        while complete_lines(run_dir) < at_least and proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before the kill: "
                        f"{log.read_text()[-3000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def no_worker_left(tmp_path: Path, wait_s: float = 5.0) -> bool:
    """True once no worker process of a run started with ``subprocess_env(tmp_path)`` is alive
    (they end when their run's process is killed; found by that environment, in /proc)."""
    marker = f"DSPY_CACHEDIR={tmp_path / 'dspy-cache'}".encode()
    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if b"spawn_main" in (proc / "cmdline").read_bytes() and \
                        marker in (proc / "environ").read_bytes().split(b"\0"):
                    left.append(proc.name)
            except OSError:  # gone meanwhile, or not ours
                continue
        if not left or time.monotonic() > deadline:
            return not left
        time.sleep(0.1)


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """The environment of an ``argalign`` subprocess: this one's, with a private DSPy cache."""
    return {**os.environ, "DSPY_CACHEDIR": str(tmp_path / "dspy-cache"), "PYTHONUNBUFFERED": "1"}


# --- a judge LM with scripted token probabilities --------------------------------------------

LABELS = list(TASKS)


def logprobs_output(probs: dict[str, float], junk: float = 0.0,
                    labels: list[str] | None = None) -> dict:
    """An LM output as DSPy returns it with ``logprobs=True``: letter tokens with logprobs."""
    labels = labels or LABELS
    top = [{"token": f" {LETTERS[labels.index(k)]}" if i % 2 else LETTERS[labels.index(k)],
            "logprob": math.log(p)} for i, (k, p) in enumerate(probs.items()) if p > 0]
    if junk:
        top.append({"token": "The", "logprob": math.log(junk)})
    return {"text": top[0]["token"].strip(), "logprobs": {"content": [{"top_logprobs": top}]}}


class ScriptedJudgeLM:
    """A judge LM: ``answer(kind, text)`` gives the distribution for each task reading, and
    ``method(text)`` for each method reading (default: the same for every text)."""

    model = "scripted-judge"

    def __init__(self, answer, method=None):
        self.answer = answer
        self.method = method or (lambda text: {k: 1 / len(METHOD_OPTIONS) for k in METHOD_OPTIONS})
        self.prompts: list[str] = []
        self.kwargs: list[dict] = []

    def __call__(self, prompt: str, **kwargs):
        self.prompts.append(prompt)
        self.kwargs.append(kwargs)
        kind = next(k for k, (s, _) in READINGS.items() if prompt.startswith(s.instructions))
        text = prompt.split("<<<\n", 1)[1].split("\n>>>", 1)[0]
        if kind == "method":
            return [logprobs_output(self.method(text), labels=list(METHOD_OPTIONS))]
        return [logprobs_output(self.answer(kind, text))]


def peaked(label: str, p: float = 0.8) -> dict[str, float]:
    rest = (1 - p) / (len(LABELS) - 1)
    return {k: p if k == label else rest for k in LABELS}


# A sentence a legitimate rewrite adds to a thinking's opening: the assistant's own voice, and it
# names the analysis a plan carries out (OPENING_SKIPS_METHOD), whichever methods that is.
OWN_METHOD_SENTENCE = ("Before I map the argument, reconstruct it, formalize it, annotate the text "
                       "or write any SMT code, I weigh each premise against the source text.")
