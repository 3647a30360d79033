"""Helpers shared by the benchmarks: data, settings, a fake endpoint process, measurements.

Not a benchmark itself. Each benchmark writes ``bench/results/<name>.json`` through
:func:`write_results` and prints a short table through :func:`table`.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from argalign.stages.prepare import CONFIGS, SPLITS, sample_dir

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
# The six real rows beside the clone, or the file named in ARGALIGN_REAL_ROWS (as for the tests).
REAL_ROWS = Path(os.environ.get("ARGALIGN_REAL_ROWS")
                 or BENCH_DIR.parents[1] / "shared" / "data" / "argunauts-real-6.jsonl")
CONFIG = CONFIGS[0]
# Plain urllib with proxies off, as local_llm does: 127.0.0.1 traffic never goes to a proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def read_jsonl(path: Path) -> list[Any]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sample_rows() -> list[dict[str, Any]]:
    """Every row of the bundled sample (all configs and splits), in a fixed order."""
    rows = []
    for config in CONFIGS:
        for split in SPLITS:
            rows.extend(read_jsonl(sample_dir() / config / f"{split}.jsonl"))
    return rows


def write_source(path: Path, rows: Sequence[dict[str, Any]], n: int, prefix: str = "bench") -> Path:
    """A JSONL source of ``n`` rows: ``rows`` in turn, each with its own ``source_id``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for k in range(n):
            row = copy.deepcopy(rows[k % len(rows)])
            row["source_id"] = f"{prefix}-{k:06d}"
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def prepare_data(data: Path, n: int, rows: Sequence[dict[str, Any]] | None = None) -> Path:
    """``argalign prepare`` of ``n`` distinct conversations into ``data/raw/<CONFIG>/train``."""
    from argalign.stages.prepare import prepare

    source = write_source(data / "source.jsonl", rows or sample_rows(), n)
    prepare(source=str(source), configs=[CONFIG], splits=["train"], n=None, seed=0, data=data)
    return data


def write_settings(path: Path, url: str, **overrides: Any) -> Path:
    """A settings YAML with one model, ``fake``, at ``url`` (JSON is valid YAML)."""
    model = {"model": "openai/fake", "api_base": url, "structured_output": "none", "cache": False,
             "timeout_s": 30, "num_retries": 2, "concurrency": 4, "max_tokens": 1024, **overrides}
    settings = {"default_model": "fake", "default_judge": "fake", "models": {"fake": model}}
    path.write_text(json.dumps(settings, indent=2), "utf-8")
    return path


RESPONDER = "argalign.testing.argalign_responder:ArgalignResponder"


class FakeServerProcess:
    """``python -m argalign.testing.fake_openai`` in its own process (its own GIL), answering
    argalign's prompts as :class:`argalign.testing.argalign_responder.ArgalignResponder` does."""

    def __init__(self, *args: str):
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> FakeServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "argalign.testing.fake_openai", "--port", "0", "--responder",
             RESPONDER, *self.args],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server did not start")
        self.url = json.loads(line)["url"]
        return self

    def stats(self) -> dict[str, Any]:
        base = self.url.rsplit("/v1", 1)[0]
        with _opener.open(base + "/stats", timeout=30) as resp:
            return json.loads(resp.read())

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# Runs a module as ``python -m`` would and writes its VmHWM (peak RSS of its own memory, reset at
# exec) to the file named by $ARGALIGN_BENCH_HWM at exit. ru_maxrss from wait4 is no good here:
# Linux carries the parent's RSS at fork/vfork into the child's maxrss, so a big benchmark
# process would inflate every child it measures.
_HWM_WRAPPER = """
import atexit, os, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["ARGALIGN_BENCH_HWM"], "w") as out:
        out.write(kib)

atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def measure(module: str, *args: str, **popen: Any) -> dict[str, Any]:
    """Run ``python -m module args``: wall time, CPU time, exit code and peak RSS (VmHWM)."""
    with tempfile.NamedTemporaryFile(prefix="argalign-hwm-", delete=False) as hwm:
        pass
    env = {**popen.pop("env", os.environ), "ARGALIGN_BENCH_HWM": hwm.name}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _HWM_WRAPPER, module, *args], env=env, **popen)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    try:
        peak_kib = int(Path(hwm.name).read_text() or 0)
    finally:
        os.unlink(hwm.name)
    return {"wall_s": round(wall, 3), "returncode": proc.returncode,
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}


def self_peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_share(seconds: float = 1.0) -> float:
    """CPU time a busy loop gets per second of wall time: 1.0 on an idle core, less when shared."""
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < seconds:
        sum(range(1000))
    return round((time.process_time() - cpu) / (time.monotonic() - wall), 3)


def machine() -> dict[str, Any]:
    """What the figures were measured on; the load average shows a disturbed measurement."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg_1m": round(os.getloadavg()[0], 2), "platform": platform.platform()}


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2,
                               ensure_ascii=False) + "\n", "utf-8")
    return path


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (dicts), one column per key in ``columns``."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def result_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every complete result record of a run."""
    from argalign.core.datadir import RunStore, Subset
    from argalign.stages.run.store import iter_results

    store = RunStore(run_dir.parent.parent, run_dir.name)
    for directory in sorted((run_dir / "results").glob("*/*")):
        for path in store.result_files(Subset(directory.parent.name, directory.name)):
            for _, _, record in iter_results(path):
                yield record
