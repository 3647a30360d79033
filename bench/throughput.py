"""Runner throughput against a fake endpoint with a fixed latency, at several concurrencies.

N conversations (the bundled sample rows repeated with distinct ids, prepared into a temporary
data directory) are aligned by the real runner (``run_batch``, as ``argalign run --no-track``),
Mode A and B mixed, once per concurrency, each a fresh run. The fake endpoint runs in its own
process (so its work does not share the runner's GIL) and answers every call after
``--latency`` seconds. Ideal throughput is ``concurrency / (latency x calls per conversation)``;
calls per conversation come from the result records and are checked against the server's count.

    python bench/throughput.py                       # N=200, latency 0.2 s, concurrency 1 4 16 64
    python bench/throughput.py --n 60 --concurrency 4 16 --latency 0.1   # quick
    python bench/throughput.py --concurrency 16 --profile                 # where worker time goes

CPU per LM call is the process's CPU time (every thread, and worker processes) over the run
divided by the calls the server counted, in a warm process (:func:`warm_up` imports what a run
imports lazily before the clock starts; the first figure of a cold process also paid ~3 ms a
call of imports). It hardly depends on the load of the machine, unlike conv/s.

Where the time goes: ``py-spy record --gil -f raw -o prof.txt -- python bench/throughput.py
--n 400 --concurrency 16`` then ``python bench/profile_split.py prof.txt`` (the worker threads'
samples split into argalign, DSPy, its HTTP client, pydantic, JSON). Before issue 15 half of a
call's CPU was two DSPy lookups recomputed per call (a model-catalog scan for a model name the
catalog does not know, three times per call, and a pydantic TypeAdapter per input field), now
memoized by :mod:`argalign.models.dspy_patches`.

Writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import collections
import heapq
import itertools
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    FakeServerProcess,
    cpu_share,
    prepare_data,
    result_records,
    table,
    write_results,
    write_settings,
)


def warm_up() -> None:
    """Import what a run imports lazily, so the CPU measured is the runner's, not the imports'."""
    import tqdm  # noqa: F401

    import argalign.core.redact  # noqa: F401
    import argalign.models.lm  # noqa: F401
    import argalign.programs.accept  # noqa: F401
    import argalign.programs.align  # noqa: F401
    import argalign.scoring.metrics  # noqa: F401
    import argalign.stages.run.runner  # noqa: F401


def run_once(data: Path, settings: Path, name: str, workers: int = 1) -> dict[str, Any]:
    from argalign.stages.run.runner import RunOptions, run_batch

    started = time.monotonic()
    # workers only when asked for, so the script also measures code from before --workers
    more = {"workers": workers} if workers != 1 else {}
    summary = run_batch(RunOptions(data=data, settings=str(settings), score=False, track=False,
                                   progress=False, run_name=name, **more))
    return {"summary": summary.as_dict(), "wall_s": time.monotonic() - started}


class StackSampler:
    """Samples where the runner's worker threads are, every ``interval`` seconds.

    Counts, per sample, the innermost frame of each ``align-*`` thread and the innermost frame
    in argalign code; a poor man's py-spy that needs no privileges.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.leaf: collections.Counter = collections.Counter()
        self.ours: collections.Counter = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        names = {}
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if not names.get(ident, "").startswith("align-"):
                    continue
                self.samples += 1
                self.leaf[_where(frame)] += 1
                f = frame
                while f is not None and "argalign" not in f.f_code.co_filename:
                    f = f.f_back
                if f is not None:
                    self.ours[_where(f)] += 1

    def report(self, top: int = 12) -> dict[str, Any]:
        def share(counter: collections.Counter) -> list[tuple[str, float]]:
            return [(k, round(v / max(self.samples, 1), 3)) for k, v in counter.most_common(top)]

        return {"samples": self.samples, "leaf": share(self.leaf), "argalign": share(self.ours)}


def cpu_seconds(after: os.times_result, before: os.times_result) -> float:
    return sum(getattr(after, k) - getattr(before, k)
               for k in ("user", "system", "children_user", "children_system"))


def makespan(calls_in_order: list[int], workers: int, latency: float) -> float:
    """Elapsed time of a zero-overhead runner: each worker takes the next conversation."""
    free = [0.0] * workers
    heapq.heapify(free)
    for calls in calls_in_order:
        heapq.heappush(free, heapq.heappop(free) + calls * latency)
    return max(free)


def _where(frame: Any) -> str:
    code = frame.f_code
    path = code.co_filename.split("site-packages/")[-1].split("/src/")[-1]
    return f"{path}:{code.co_name}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="conversations per run (default %(default)s)")
    p.add_argument("--latency", type=float, default=0.2, help="seconds per LM call (default %(default)s)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--workers", type=int, nargs="+", default=[1],
                   help="worker processes (run --workers), each value at each concurrency")
    p.add_argument("--output-words", type=int, default=12,
                   help="words per fake output field (a Mode B clarification must stay under 200 characters)")
    p.add_argument("--model-string", default="openai/fake",
                   help="model string sent to the fake endpoint (default %(default)s); a name in DSPy's "
                        "model catalog, e.g. openai/gpt-4o-mini, skips DSPy's ~1 ms catalog scans per lookup")
    p.add_argument("--profile", action="store_true", help="sample worker stacks during each run")
    p.add_argument("--name", default="throughput", help="results file name (default %(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warm_up()

    rows = []
    profiles = {}
    with tempfile.TemporaryDirectory(prefix="argalign-bench-") as tmp, \
            FakeServerProcess("--latency", str(args.latency), "--output-words",
                              str(args.output_words)) as server:
        data = prepare_data(Path(tmp) / "data", args.n)
        for workers, c in itertools.product(args.workers, args.concurrency):
            settings = write_settings(Path(tmp) / f"settings-c{c}.yaml", server.url, concurrency=c,
                                      num_retries=0, model=args.model_string)
            share = cpu_share()  # how disturbed the machine is right now
            calls_before = server.stats()["total"]
            cpu_before = os.times()
            sampler = StackSampler() if args.profile else None
            if sampler:
                with sampler:
                    ran = run_once(data, settings, f"w{workers}-c{c}", workers)
                profiles[c] = sampler.report()
            else:
                ran = run_once(data, settings, f"w{workers}-c{c}", workers)
            # Every thread of this process, and worker processes once they are reaped.
            cpu_s = cpu_seconds(os.times(), cpu_before)
            stats = server.stats()
            server_calls = stats["total"] - calls_before
            records = list(result_records(data / "runs" / f"w{workers}-c{c}"))
            per_mode: dict[str, list[int]] = collections.defaultdict(list)
            for record in records:
                per_mode[record["mode"]].append(int(record["calls"]))
            conversations = len(records)
            calls = sum(sum(v) for v in per_mode.values())
            calls_per_conv = calls / conversations
            session = ran["summary"]["session"]
            elapsed = session["elapsed_s"]
            measured = conversations / elapsed
            ideal = c / (args.latency * calls_per_conv)
            # The last conversations leave workers idle: the best any runner can do on this work
            # list (raw order, the actual calls of each conversation) with zero overhead.
            in_order = [int(r["calls"]) for r in sorted(records, key=lambda r: r["index"])]
            ideal_tail = conversations / makespan(in_order, c, args.latency)
            rows.append({
                "workers": workers, "concurrency": c, "conversations": conversations,
                "outcomes": ran["summary"]["outcomes"],
                "calls_per_conv": round(calls_per_conv, 3),
                "calls_per_conv_by_mode": {m: round(statistics.mean(v), 3)
                                           for m, v in sorted(per_mode.items())},
                "conversations_by_mode": {m: len(v) for m, v in sorted(per_mode.items())},
                "server_calls": server_calls, "record_calls": calls,
                "max_in_flight": stats["max_in_flight"],
                "elapsed_s": round(elapsed, 3), "wall_s_with_plan": round(ran["wall_s"], 3),
                "conv_per_s": round(measured, 3), "ideal_conv_per_s": round(ideal, 3),
                "ratio": round(measured / ideal, 3),
                # Worker processes first import DSPy and build their programs (once per run).
                "startup_s": session.get("workers_startup_s"),
                "ratio_after_startup": round(
                    conversations / (elapsed - (session.get("workers_startup_s") or 0)) / ideal, 3),
                # The runner's CPU per LM call: at 1 / cpu_ms_per_call calls a second it is CPU-bound.
                "cpu_ms_per_call": round(1000 * cpu_s / max(server_calls, 1), 2),
                "cpu_share_before": share, "loadavg_1m": round(os.getloadavg()[0], 2),
                "ideal_with_tail_conv_per_s": round(ideal_tail, 3),
                "ratio_with_tail": round(measured / ideal_tail, 3),
            })
            print(f"workers {workers}, concurrency {c}: {measured:.2f} conv/s, ideal {ideal:.2f}, "
                  f"ratio {measured / ideal:.3f}", file=sys.stderr, flush=True)

    view = [{**r, "A": r["calls_per_conv_by_mode"].get("A"), "B": r["calls_per_conv_by_mode"].get("B")}
            for r in rows]
    print(f"N={args.n}, latency {args.latency * 1000:.0f} ms per call, modes A+B mixed, "
          f"model string {args.model_string}")
    print(table(view, ["workers", "concurrency", "conversations", "A", "B", "calls_per_conv",
                       "server_calls", "max_in_flight", "cpu_share_before", "loadavg_1m",
                       "cpu_ms_per_call", "elapsed_s", "conv_per_s", "ideal_conv_per_s", "ratio",
                       "startup_s", "ratio_after_startup", "ideal_with_tail_conv_per_s",
                       "ratio_with_tail"]))
    print("ideal = concurrency / (latency x calls per conversation); ideal_with_tail = the same work "
          "list on `concurrency` workers with zero overhead (the last conversations leave workers idle); "
          "cpu_share_before = CPU a busy loop got per wall second just before the run (1.0 = an idle core)")
    for c, prof in profiles.items():
        print(f"\nconcurrency {c}: worker stacks ({prof['samples']} samples), innermost argalign frame:")
        for where, share in prof["argalign"]:
            print(f"  {share:6.1%}  {where}")
        print("  innermost frame:")
        for where, share in prof["leaf"]:
            print(f"  {share:6.1%}  {where}")
    path = write_results(args.name, {
        "command": "python bench/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "n": args.n, "latency_s": args.latency, "model_string": args.model_string, "rows": rows,
        "profiles": {str(c): p for c, p in profiles.items()}})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
