"""Bad samples are recorded with a reason and the run goes on; --max-errors stops it cleanly;
transient HTTP faults are retried; per-model concurrency and rpm limits hold."""

from __future__ import annotations

import pytest

from argalign.core.errors import RunError
from argalign.stages.run.runner import run_batch
from support import (
    CONFIG,
    make_rows,
    mark_failing,
    read_rows,
    results,
    run_options,
    write_raw,
    write_settings,
)


def _rows(real_rows_path, count=6, failing=()):
    rows = make_rows(read_rows(real_rows_path), count, "f")
    for k in failing:
        rows[k] = {**mark_failing(rows[k]), "source_id": rows[k]["source_id"]}
    return rows


def test_failing_and_malformed_samples_are_recorded(tmp_path, real_rows_path, fake_server):
    rows = _rows(real_rows_path, 6, failing=(2,))
    broken = {"source_id": "broken-1", "messages": []}
    rows.append(broken)
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)

    summary = run_batch(run_options(data, settings, accept_if_better=False))
    assert summary.done == summary.total == 7
    records = {r["id"]: r for r in results(data / "runs" / "run-AB-fake-s0")}
    assert sorted(records) == sorted(r["source_id"] for r in rows)  # each id exactly once
    failing = records["f-002"]
    assert failing["outcome"] == "failed" and failing["codes"] == ["FIELD_TOO_LONG"]
    assert "characters" in failing["reason"] and failing["row"] is None
    assert records["broken-1"]["outcome"] == "rejected"
    assert records["broken-1"]["codes"] == ["EMPTY_MESSAGES"]
    for record in records.values():
        assert record["outcome"] in ("aligned", "unchanged", "failed", "rejected")
        if record["outcome"] != "aligned":
            assert record["reason"]
        for key in ("source_id", "config", "split", "mode", "model", "program", "attempts",
                    "input_tokens", "output_tokens", "latency_s", "codes", "model_string"):
            assert key in record
    assert summary.outcomes == {"aligned": 5, "unchanged": 0, "failed": 1, "rejected": 1,
                                   "not_improved": 0}
    failures = (data / "runs" / "run-AB-fake-s0" / "failures.jsonl").read_text()
    assert "f-002" in failures and "broken-1" in failures


def test_max_errors_stops_cleanly_and_the_run_resumes(tmp_path, real_rows_path, fake_server):
    rows = _rows(real_rows_path, 8, failing=(1, 3, 5))
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=1)
    with pytest.raises(RunError, match=r"stopped after 2 failed examples \(--max-errors 1\)"):
        run_batch(run_options(data, settings, modes=("A",), max_errors=1))
    kept = results(data / "runs" / "run-A-fake-s0")
    assert [r["id"] for r in kept] == ["f-000", "f-001", "f-002", "f-003"]  # raw order, 1 thread
    summary = run_batch(run_options(data, settings, modes=("A",)))
    assert summary.done == 8 and summary.outcomes["failed"] == 3
    ids = [r["id"] for r in results(data / "runs" / "run-A-fake-s0")]
    assert sorted(ids) == sorted(r["source_id"] for r in rows)


@pytest.mark.parametrize("fault", ["429", "500", "hang"])
def test_transient_faults_are_retried(tmp_path, real_rows_path, fake_server, fault):
    fake_server.configure(fault=fault, fail_first_n=1, retry_after_s=0.3, hang_s=5)
    row = make_rows(read_rows(real_rows_path)[1:2], 1, "t")  # Mode B: one LM call
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): row})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, timeout_s=0.5, num_retries=2)
    summary = run_batch(run_options(data, settings, modes=("B",), score=False))
    assert summary.outcomes["aligned"] == 1
    assert list(fake_server.stats.attempts.values()) == [2]  # failed once, retried once
    if fault == "429":
        assert min(fake_server.stats.retry_gaps(429)) >= 0.25  # Retry-After honoured


def test_concurrency_limit_per_model(tmp_path, real_rows_path, fake_server):
    fake_server.configure(latency_s=0.05)
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): _rows(real_rows_path, 8)})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=3)
    run_batch(run_options(data, settings, modes=("A",)))
    assert fake_server.stats.max_in_flight == 3


def test_requests_per_minute_limit(tmp_path, real_rows_path, fake_server):
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): _rows(real_rows_path, 12)})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=3, rpm=1200)
    # Scoring off: the alignment's requests alone show the spacing (more requests, more jitter).
    run_batch(run_options(data, settings, modes=("A",), score=False))
    starts = sorted(e.start for e in fake_server.stats.events)
    assert len(starts) >= 6
    # 1200/minute: one request every 0.05 s. The client spaces its sends; arrival times at
    # the server jitter under load, so the rate is checked over the whole window.
    assert (starts[-1] - starts[0]) / (len(starts) - 1) >= 0.045
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.01


def test_a_full_disk_stops_the_run_naming_the_results_file(tmp_path, real_rows_path, fake_server,
                                                          monkeypatch, caplog):
    import errno
    import os

    from argalign import cli

    fsync = os.fsync

    def disk_full(fd):  # full once the results are written (the manifest went through)
        if "/results/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(fd)

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): _rows(real_rows_path, 2)})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    monkeypatch.setattr(os, "fsync", disk_full)
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(["run", "--data", str(data), "--settings", str(settings), "--no-track",
                         "--no-progress", "--modes", "A"]) == 1
    assert "No space left on device" in caplog.text and "configuration" not in caplog.text
    assert str(data / "runs" / "run-A-fake-s0" / "results" / CONFIG / "train" / "A-fake.jsonl") \
        in caplog.text


@pytest.mark.parametrize("target", ["existing", "dangling"])
def test_a_symlinked_results_file_is_refused(tmp_path, real_rows_path, fake_server, caplog, target):
    from argalign import cli

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): _rows(real_rows_path, 4)})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=1)
    args = ["run", "--data", str(data), "--settings", str(settings), "--no-track", "--no-progress",
            "--modes", "A"]
    results_file = data / "runs" / "run-A-fake-s0" / "results" / CONFIG / "train" / "A-fake.jsonl"
    outside = tmp_path / "outside.jsonl"
    if target == "existing":
        assert cli.main(args) == 0
        outside.write_bytes(b"")  # the run would align every example again, into this file
        results_file.unlink()
    else:
        results_file.parent.mkdir(parents=True)
    results_file.symlink_to(outside)
    before = outside.read_bytes() if outside.exists() else None
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(args) in (1, 2)
    assert str(results_file) in caplog.text and "symbolic link" in caplog.text
    assert (outside.read_bytes() if outside.exists() else None) == before


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["down", "wrong key"])
def test_a_dead_endpoint_or_a_wrong_key_stops_the_run_early(tmp_path, real_rows_path, fake_server,
                                                             secrets, caplog, endpoint):
    import json

    from argalign import cli
    from support import KEY

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): _rows(real_rows_path, 12)})
    url = f"http://127.0.0.1:{_closed_port()}/v1" if endpoint == "down" else fake_server.url
    fake_server.configure(fault="401", fail_first_n=1000)
    settings = write_settings(tmp_path / "s.yaml", url, concurrency=1,
                              api_key_env="API_ENDPOINT_KEY")
    args = ["run", "--data", str(data), "--settings", str(settings), "--no-track", "--no-progress",
            "--modes", "A"]
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(args) == 1
    run_dir = data / "runs" / "run-A-fake-s0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "the first 5 examples all failed the same way" in summary["stopped"]
    assert summary["stopped"] in caplog.text
    assert ("Connection refused" if endpoint == "down" else "Incorrect API key") in caplog.text
    assert KEY not in caplog.text and KEY not in (run_dir / "summary.json").read_text()
    records = results(run_dir)  # the first 5, and the one in flight when they were counted
    assert len(records) in (5, 6) and {r["outcome"] for r in records} == {"failed"}
    assert (summary["done"], summary["total"]) == (len(records), 12)  # the others stay to do
    # the endpoint is back: the same command resumes with the 7 not tried
    fake_server.configure(fault=None)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=1,
                              api_key_env="API_ENDPOINT_KEY")
    assert cli.main(args) == 0  # endpoints and keys are not run parameters
    assert len(results(run_dir)) == 12


def test_a_batch_whose_every_example_failed_exits_1(tmp_path, real_rows_path, fake_server, caplog):
    from argalign import cli

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): _rows(real_rows_path, 3, (0, 1, 2))})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(["run", "--data", str(data), "--settings", str(settings), "--no-track",
                         "--no-progress", "--modes", "A"]) == 1
    assert "no example was aligned: all 3 examples of this batch failed" in caplog.text
    assert len(results(data / "runs" / "run-A-fake-s0")) == 3  # recorded, as always
