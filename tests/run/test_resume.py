"""A resumed run equals an uninterrupted one: SIGKILL mid-run, torn lines, nothing twice."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from argalign.stages.merge import merge
from argalign.stages.run.runner import run_batch
from support import (
    CONFIG,
    comparable,
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


@pytest.fixture
def dataset(tmp_path, real_rows_path) -> Path:
    real = read_rows(real_rows_path)
    return write_raw(tmp_path / "template", {
        (CONFIG, "train"): make_rows(real, 8, "tr"),
        (CONFIG, "validation"): make_rows(real, 8, "va"),
    })


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, dataset, fake_server, workers):
    fake_server.configure(latency_s=0.1)
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url, concurrency=2)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    shutil.copytree(dataset, killed)
    shutil.copytree(dataset, clean)
    extra = ("--workers", str(workers))

    run_dir = killed / "runs" / "run-AB-fake-s5"
    # Killed twice: early in the first process, again midway through the restarted one.
    for at_least in (3, 9):
        kill_after(run_command(killed, settings, *extra), tmp_path, run_dir, at_least)
        assert (run_dir / "manifest.json").is_file()
        assert no_worker_left(tmp_path), "a worker process outlived the killed run"
    partial = results(run_dir)
    assert 9 <= len(partial) < 16, "the second kill must land mid-run"
    assert len({r["id"] for r in partial}) == len(partial)

    restarted = subprocess.run(run_command(killed, settings, *extra), cwd=tmp_path,
                               env=subprocess_env(tmp_path), capture_output=True, text=True,
                               timeout=60)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = json.loads(restarted.stdout)
    assert summary["done"] == summary["total"] == 16
    assert summary["session"]["conversations"] == 16 - len(partial)

    uninterrupted = run_batch(run_options(clean, settings, seed=5))
    assert uninterrupted.outcomes == summary["outcomes"]

    resumed_records = results(run_dir)
    assert len(resumed_records) == 16  # no duplicates, no losses
    assert comparable(resumed_records) == comparable(results(clean / "runs" / "run-AB-fake-s5"))
    # The merged files (raw order) agree too.
    for data in (killed, clean):
        merge(data)
    for split in ("train", "validation"):
        a = [json.loads(line) for line in
             (killed / "merged" / CONFIG / f"{split}.jsonl").read_text().splitlines()]
        b = [json.loads(line) for line in
             (clean / "merged" / CONFIG / f"{split}.jsonl").read_text().splitlines()]
        assert [(r["id"], r["outcome"], r["row"]) for r in a] == \
            [(r["id"], r["outcome"], r["row"]) for r in b]


def test_torn_last_line_is_ignored_and_redone(tmp_path, dataset, fake_server):
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url)
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    first = run_batch(run_options(data, settings, modes=("A",), configs=(CONFIG,),
                                  splits=("train",)))
    assert first.done == 8
    run_dir = data / "runs" / "run-A-fake-s0"
    before = comparable(results(run_dir))
    path = run_dir / "results" / CONFIG / "train" / "A-fake.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    torn_id = json.loads(lines[-1])["id"]
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # no newline

    again = run_batch(run_options(data, settings, modes=("A",), configs=(CONFIG,),
                                  splits=("train",)))
    assert again.session.conversations == 1
    after = results(run_dir)
    assert [r["id"] for r in after].count(torn_id) == 1
    assert comparable(after) == before
    assert merge(data).subsets[f"{CONFIG}/train"].merged == 8


def test_a_finished_run_does_nothing_on_restart(tmp_path, dataset, fake_server):
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url)
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    options = run_options(data, settings, modes=("B",), splits=("validation",))
    run_batch(options)
    calls = fake_server.stats.total
    again = run_batch(options)
    assert again.session.conversations == 0 and again.done == 8
    assert fake_server.stats.total == calls  # no LM call at all
