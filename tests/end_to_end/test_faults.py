"""Fault injection: with every fault of the fake endpoint, a run completes and loses nothing.

For each fault (deterministic: the first attempt at every prompt fails; and a soak with mixed
random rates and a fixed seed): every raw id has exactly one result with one outcome (and a
reason unless aligned), no aligned row breaks an invariant, retries of a 429 wait for its
Retry-After, and a run killed with SIGKILL mid-way through heavy faults resumes to the same
ids. Invariant checks use :func:`argalign.scoring.invariants.check_row` against the raw rows.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from argalign.core.jsonl import iter_jsonl
from argalign.scoring.invariants import check_row
from argalign.stages.run.runner import run_batch
from argalign.testing.fake_openai import TAMPER_MARKER
from support import (
    CONFIG,
    kill_after,
    make_rows,
    no_worker_left,
    read_rows,
    results,
    run_command,
    run_options,
    subprocess_env,
    write_raw,
    write_settings,
)

RETRY_AFTER = 0.3
# What each fault leaves in a record's ``retries`` when the module (not HTTP) retried it.
MODULE_RETRY_CODES = {"malformed": ("PARSE_ERROR",), "truncated": ("TRUNCATED",),
                      "length": ("TRUNCATED",)}


def unique_rows(real: list[dict[str, Any]], count: int, prefix: str) -> list[dict[str, Any]]:
    """Copies of the real rows whose prompts all differ (the fake endpoint counts attempts and
    retry gaps per prompt, so two copies of one row would look like one conversation)."""
    rows = make_rows(real, count, prefix)
    for row in rows:
        user = next(m for m in row["messages"] if m["role"] == "user")
        user["content"] = f"Case {row['source_id']}. {user['content']}"
    return rows


def _raw(data: Path) -> dict[str, dict[str, Any]]:
    """Raw rows by id, every subset."""
    return {r["id"]: r for path in sorted((data / "raw").glob("*/*.jsonl"))
            for _, r in iter_jsonl(path)}


def assert_complete_and_valid(data: Path, run_name: str) -> list[dict[str, Any]]:
    """One result per raw id, one outcome each, reasons kept, invariants hold; the records."""
    raw = _raw(data)
    records = results(data / "runs" / run_name)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "an id has two results"
    assert set(ids) == set(raw), "results and raw ids differ"
    failures = {r["id"]: r for _, r in iter_jsonl(data / "runs" / run_name / "failures.jsonl")}
    for record in records:
        assert record["outcome"] in ("aligned", "unchanged", "failed", "rejected")
        original = raw[record["id"]]["row"]
        if record["outcome"] == "aligned":
            assert check_row(original, record["row"], record["mode"]) == []
            # What a tampering reply adds besides its fields never reaches a row.
            for before, after in zip(original["messages"], record["row"]["messages"]):
                assert set(after) == set(before)
                if before["role"] != "user":
                    assert after["content"] == before["content"]
        else:
            assert record["reason"] and record["codes"], record
            if record["outcome"] in ("failed", "rejected"):
                assert failures[record["id"]]["reason"] == record["reason"]
    return records


def _settings(tmp_path: Path, url: str, **overrides: Any) -> Path:
    return write_settings(tmp_path / "settings.yaml", url, **{"concurrency": 4, "num_retries": 2,
                                                              "timeout_s": 5, **overrides})


@pytest.fixture
def data(tmp_path, real_rows_path) -> Path:
    real = read_rows(real_rows_path)
    return write_raw(tmp_path / "data", {(CONFIG, "train"): unique_rows(real, 6, "fl"),
                                         (CONFIG, "validation"): unique_rows(real[2:], 2, "fv")})


@pytest.mark.parametrize("fault, workers", [
    *((fault, 1) for fault in ("429", "500", "hang", "malformed", "truncated", "length", "tamper")),
    ("429", 2), ("malformed", 2), ("truncated", 2)])
def test_each_fault_once_per_prompt_is_recovered(tmp_path, data, fake_server, fault, workers):
    fake_server.configure(fault=fault, fail_first_n=1, retry_after_s=RETRY_AFTER, hang_s=5)
    # A hang outlasts the client timeout; everything else answers at once.
    settings = _settings(tmp_path, fake_server.url, timeout_s=1 if fault == "hang" else 5)

    # Scoring off: the fault counts are per alignment prompt (the judge's calls are the same
    # prompt from every worker, which the server would count as retries).
    summary = run_batch(run_options(data, settings, score=False, workers=workers))

    assert summary.done == summary.total == 8
    records = assert_complete_and_valid(data, "run-AB-fake-s0")
    stats = fake_server.stats
    # Every prompt met the fault on its first attempt and was sent again (a hung request is
    # counted only when the server lets it go, after the run).
    # (A tampered reply is well-formed: it is often taken as it is.)
    assert stats.attempts and all(n >= 2 or fault == "tamper" for n in stats.attempts.values())
    assert fault == "hang" or stats.by_fault[fault] == len(stats.attempts)
    # One failure per prompt is always within the attempts allowed: nothing is lost to it.
    assert summary.outcomes["aligned"] == 8, [(r["id"], r["reason"]) for r in records]
    if fault == "429":
        gaps = stats.retry_gaps(429)
        assert len(gaps) == stats.by_status[429]
        assert min(gaps) >= RETRY_AFTER  # the client waited for Retry-After
    if fault in MODULE_RETRY_CODES or fault == "tamper":
        # Answered with HTTP 200, so every request is an LM call the records account for (DSPy's
        # adapter or the module retried it), and a retry by the module says why.
        assert sum(r["calls"] for r in records) == stats.total
        for record in records:
            assert all(r.split(":", 1)[0] in MODULE_RETRY_CODES.get(fault, ())
                       for r in record["retries"]), record["retries"]
    if fault == "tamper":
        tampered = [r for r in records if TAMPER_MARKER in json.dumps(r["row"])]
        assert tampered, "the tampered fields were accepted as text (allowed: thinking, user content)"


@pytest.mark.parametrize("workers", [1, 2])
def test_mixed_random_faults_soak(tmp_path, real_rows_path, fake_server, workers):
    real = read_rows(real_rows_path)
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): unique_rows(real, 12, "soak")})
    fake_server.configure(seed=1234, deterministic_faults=True, retry_after_s=0.2, hang_s=4,
                          rate_429=0.2, rate_500=0.08, rate_hang=0.03, rate_malformed=0.1,
                          rate_truncated=0.08, rate_length=0.06, rate_tamper=0.06)
    settings = _settings(tmp_path, fake_server.url, timeout_s=1, num_retries=3)

    summary = run_batch(run_options(data, settings, score=False, workers=workers))

    assert summary.done == summary.total == 12
    records = assert_complete_and_valid(data, "run-AB-fake-s0")
    stats = fake_server.stats
    assert len(stats.by_fault) >= 4, stats.by_fault  # a real mix was injected
    assert stats.retry_gaps(429) and min(stats.retry_gaps(429)) >= 0.2
    assert sum(r["outcome"] == "aligned" for r in records) >= 10
    # The failures file lists exactly the failed and rejected ids.
    failures = [r["id"] for _, r in iter_jsonl(data / "runs" / "run-AB-fake-s0" / "failures.jsonl")]
    assert sorted(failures) == sorted(r["id"] for r in records if r["outcome"] in ("failed", "rejected"))


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_during_heavy_faults_resumes(tmp_path, real_rows_path, fake_server, workers):
    real = read_rows(real_rows_path)
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): unique_rows(real, 8, "k"),
                                         (CONFIG, "validation"): unique_rows(real, 6, "kv")})
    fake_server.configure(seed=7, deterministic_faults=True, latency_s=0.05, retry_after_s=0.2,
                          rate_429=0.2, rate_500=0.1, rate_malformed=0.15, rate_truncated=0.1,
                          rate_tamper=0.1)
    settings = _settings(tmp_path, fake_server.url, concurrency=2, num_retries=3)
    run_dir = data / "runs" / "run-AB-fake-s5"

    extra = ("--no-score", "--workers", str(workers))
    kill_after(run_command(data, settings, *extra), tmp_path, run_dir, 3)
    assert no_worker_left(tmp_path), "a worker process outlived the killed run"
    partial = results(run_dir)
    assert 3 <= len(partial) < 14 and len({r["id"] for r in partial}) == len(partial)

    finished = subprocess.run(run_command(data, settings, *extra), cwd=tmp_path,
                              env=subprocess_env(tmp_path), capture_output=True, text=True,
                              timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    summary = json.loads(finished.stdout)
    assert summary["done"] == summary["total"] == 14
    assert summary["session"]["conversations"] == 14 - len(partial)
    records = assert_complete_and_valid(data, "run-AB-fake-s5")
    kept = {r["id"]: r for r in records}
    for record in partial:  # what was finished before the kill was kept, not redone
        assert kept[record["id"]] == record
    assert fake_server.stats.by_status.get(429, 0) > 0
    assert min(fake_server.stats.retry_gaps(429)) >= 0.2
