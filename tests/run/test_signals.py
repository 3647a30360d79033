"""SIGTERM ends a run like Ctrl-C (a message, exit 143, the MLflow run KILLED); a resume after
``kill -9`` marks the run the dead process left RUNNING as KILLED and links the new run to it."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from argalign import tracking
from argalign.core.lock import lock_path
from argalign.stages.run.runner import run_batch
from support import (
    CONFIG,
    complete_lines,
    make_rows,
    read_rows,
    run_options,
    subprocess_env,
    write_raw,
    write_settings,
)


def _runs() -> dict[str, dict]:
    return {r["run_id"]: r for r in tracking.search_runs(tracking.EXPERIMENT_RUN)}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_run_leaves_no_mlflow_run_running_and_its_resume_is_linked(
        tmp_path, real_rows_path, fake_server, mlflow_store, sig):
    import sys

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      10, "sg")})
    fake_server.configure(latency_s=0.2)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=1)
    run_dir = data / "runs" / "run-A-fake-s0"
    command = [sys.executable, "-m", "argalign.cli", "run", "--data", str(data), "--settings",
               str(settings), "--no-progress", "--modes", "A", "--no-score"]
    log = tmp_path / "run.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 120
        while complete_lines(run_dir) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    (old,) = _runs().values()
    if sig == signal.SIGTERM:
        assert code == 143
        assert "terminated" in log.read_text() and "Traceback" not in log.read_text()
        assert old["status"] == "KILLED"  # not left RUNNING
        assert not lock_path(data).exists()
    else:
        assert old["status"] == "RUNNING"  # nothing runs in a process killed with -9

    fake_server.configure(latency_s=0.0)
    summary = run_batch(run_options(data, settings, modes=("A",), score=False, track=True))
    assert summary.done == summary.total == 10
    runs = _runs()
    assert runs[old["run_id"]]["status"] == "KILLED"
    (new,) = (r for run_id, r in runs.items() if run_id != old["run_id"])
    assert new["status"] == "FINISHED"
    assert new["tags"]["argalign.resumed_from"] == old["run_id"]
