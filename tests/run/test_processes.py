"""run --workers N: the batch in worker processes keeps every promise of the threaded runner.

One outcome per example, the same results as one process, the limits (requests in flight and
per minute, --max-errors) global across processes, one MLflow run with the sampled traces, and
a dead worker stops the run with an error and loses nothing that was written.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest

from argalign.core.errors import ConfigError, RunError
from argalign.stages.run.runner import run_batch
from argalign.stages.run.throttle import Throttle
from support import (
    CONFIG,
    comparable,
    make_rows,
    mark_failing,
    read_rows,
    results,
    run_options,
    write_raw,
    write_settings,
)


def _data(tmp_path, real_rows_path, name: str, count: int, failing=()):
    rows = make_rows(read_rows(real_rows_path), count, "w")
    for k in failing:
        rows[k] = {**mark_failing(rows[k]), "source_id": rows[k]["source_id"]}
    return write_raw(tmp_path / name, {(CONFIG, "train"): rows[: count - 2],
                                       (CONFIG, "validation"): rows[count - 2:]}), rows


def test_workers_give_each_example_one_outcome_and_the_results_of_one_process(
        tmp_path, real_rows_path, fake_server):
    one, rows = _data(tmp_path, real_rows_path, "one", 10, failing=(4,))
    many, _ = _data(tmp_path, real_rows_path, "many", 10, failing=(4,))
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=4)

    single = run_batch(run_options(one, settings, score=False))
    spread = run_batch(run_options(many, settings, score=False, workers=3))

    assert spread.done == spread.total == 10
    assert spread.session.conversations == 10
    records = results(many / "runs" / "run-AB-fake-s0")
    assert sorted(r["id"] for r in records) == sorted(r["source_id"] for r in rows)  # each once
    assert comparable(records) == comparable(results(one / "runs" / "run-AB-fake-s0"))
    assert spread.outcomes == single.outcomes and spread.outcomes["failed"] == 1
    assert all(r["run"] == "run-AB-fake-s0" and r["model_string"] == "openai/fake" for r in records)
    # A finished run does nothing on restart, with workers too.
    again = run_batch(run_options(many, settings, score=False, workers=3))
    assert again.session.conversations == 0 and again.done == 10


def test_workers_score_with_the_judge(tmp_path, real_rows_path, fake_server):
    data, _ = _data(tmp_path, real_rows_path, "data", 4)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    summary = run_batch(run_options(data, settings, comparison="lexical", workers=2))
    records = results(data / "runs" / "run-AB-fake-s0")
    aligned = [r for r in records if r["outcome"] == "aligned"]
    assert summary.done == 4 and aligned
    assert all("baseline" in r["scores"] and "aligned" in r["scores"] for r in aligned)


def test_requests_in_flight_are_limited_across_worker_processes(tmp_path, real_rows_path,
                                                                fake_server):
    fake_server.configure(latency_s=0.2)  # long enough that every thread waits on a call at once
    data, _ = _data(tmp_path, real_rows_path, "data", 12)
    # 3 workers x 2 threads each would send 6 at once without a shared limit.
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=5)
    run_batch(run_options(data, settings, modes=("A",), score=False, workers=3))
    assert fake_server.stats.max_in_flight == 5


def test_requests_per_minute_are_spaced_across_worker_processes(tmp_path, real_rows_path,
                                                                fake_server):
    data, _ = _data(tmp_path, real_rows_path, "data", 12)  # a call or two each
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=4, rpm=1200)
    run_batch(run_options(data, settings, modes=("A",), score=False, workers=2))
    starts = sorted(e.start for e in fake_server.stats.events)
    assert len(starts) >= 10
    # 1200/minute: one request every 0.05 s over the whole run, whichever process sent it
    # (each process alone would allow twice that rate).
    assert (starts[-1] - starts[0]) / (len(starts) - 1) >= 0.045


def _hold_slots(throttle: Throttle, threads: int, calls: int, inside, peak, lock) -> None:
    def call(k: int) -> None:
        for n in range(calls):
            call_id = f"{os.getpid()}-{k}-{n}"
            throttle.on_lm_start(call_id, None, {})
            with lock:
                inside.value += 1
                peak.value = max(peak.value, inside.value)
            time.sleep(0.01)
            with lock:
                inside.value -= 1
            throttle.on_lm_end(call_id, None)

    workers = [threading.Thread(target=call, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_a_shared_throttle_holds_for_threads_of_several_processes():
    context = multiprocessing.get_context("spawn")
    throttle = Throttle(3, context=context)
    inside, peak, lock = context.RawValue("i", 0), context.RawValue("i", 0), context.Lock()
    processes = [context.Process(target=_hold_slots, args=(throttle, 4, 5, inside, peak, lock))
                 for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert peak.value == 3  # 12 threads wanted a slot; never more than 3 at once, and 3 were used


def test_max_errors_stops_every_worker_and_the_run_resumes(tmp_path, real_rows_path, fake_server):
    data, rows = _data(tmp_path, real_rows_path, "data", 12, failing=(1, 2, 3, 5, 7))
    fake_server.configure(latency_s=0.05)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=2)
    with pytest.raises(RunError, match=r"stopped after 2 failed examples \(--max-errors 1\)"):
        run_batch(run_options(data, settings, modes=("A",), max_errors=1, score=False, workers=2))
    kept = results(data / "runs" / "run-A-fake-s0")
    ids = [r["id"] for r in kept]
    assert len(ids) == len(set(ids)) and sum(r["outcome"] == "failed" for r in kept) >= 2
    assert len(kept) < 12  # stopped: the last examples were never started
    summary = run_batch(run_options(data, settings, modes=("A",), score=False, workers=2))
    assert summary.done == 12 and summary.outcomes["failed"] == 5
    assert sorted(r["id"] for r in results(data / "runs" / "run-A-fake-s0")) == \
        sorted(r["source_id"] for r in rows)


def test_a_worker_that_dies_stops_the_run_and_the_rest_is_redone(tmp_path, real_rows_path,
                                                                 fake_server):
    fake_server.configure(latency_s=0.2)
    data, rows = _data(tmp_path, real_rows_path, "data", 16)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url, concurrency=4)
    run_dir = data / "runs" / "run-AB-fake-s0"

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = [p for p in multiprocessing.active_children()
                       if p.name.startswith("argalign-worker-")]
            if workers and len(results(run_dir)) >= 2:
                os.kill(workers[0].pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    with pytest.raises(RunError, match=r"worker process argalign-worker-\d died \(exit code -9\)"):
        run_batch(run_options(data, settings, score=False, workers=2))
    killer.join()
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("argalign-worker-")]
    partial = results(run_dir)
    assert len({r["id"] for r in partial}) == len(partial) < 16

    summary = run_batch(run_options(data, settings, score=False, workers=2))
    assert summary.done == summary.total == 16
    assert summary.session.conversations == 16 - len(partial)
    assert sorted(r["id"] for r in results(run_dir)) == sorted(r["source_id"] for r in rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_one_mlflow_run_with_the_traces_of_the_sample(tmp_path, real_rows_path, fake_server,
                                                      mlflow_store, workers):
    import mlflow

    from argalign import tracking

    data, _ = _data(tmp_path, real_rows_path, "data", 6)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    summary = run_batch(run_options(data, settings, track=True, score=False, trace_sample=3,
                                    workers=workers))
    (run,) = tracking.search_runs(tracking.EXPERIMENT_RUN)
    assert run["run_name"] == summary.run and run["status"] == "FINISHED"
    assert run["metrics"]["n_aligned"] == 6
    traces = mlflow.search_traces(run_id=run["run_id"], return_type="list")
    assert len(traces) == 3
    assert all(len(t.data.spans) >= 2 for t in traces)  # the example and its LM calls


def test_workers_must_be_at_least_one(tmp_path, real_rows_path, fake_server):
    data, _ = _data(tmp_path, real_rows_path, "data", 4)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    with pytest.raises(ConfigError, match="--workers"):
        run_batch(run_options(data, settings, workers=0))


def test_a_worker_whose_run_already_ended_exits_at_once():
    """A worker that starts after its run was killed (it was still importing) has already been
    handed to another parent: it must end at once, not run on under that parent."""
    import subprocess
    import sys

    code = ("import os, sys\n"
            "from argalign.stages.run.processes import _exit_with_parent\n"
            "_exit_with_parent(int(sys.argv[1]))\n"
            "print('running')\n")
    own = subprocess.run([sys.executable, "-c", code, str(os.getpid())], capture_output=True,
                         text=True, timeout=60)
    assert (own.returncode, own.stdout.strip()) == (0, "running")
    gone = subprocess.run([sys.executable, "-c", code, "1"], capture_output=True, text=True,
                          timeout=60)
    assert (gone.returncode, gone.stdout) == (1, "")
