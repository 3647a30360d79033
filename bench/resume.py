"""Re-running a finished run: LM calls (target 0) and wall time per 1k rows.

N conversations (the bundled sample rows repeated with distinct ids) are prepared and aligned
once by the real runner against a fake endpoint (no latency, in its own process); then the same
command is run again, in process (``run_batch``) and as ``argalign run`` in a subprocess (with
interpreter start and imports). The endpoint's request count before and after each re-run gives
the LM calls a re-run makes.

    python bench/resume.py                     # 1000 and 2000 rows
    python bench/resume.py --sizes 500         # quick

Writes bench/results/resume.json.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import FakeServerProcess, measure, prepare_data, table, write_results, write_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    p.add_argument("--concurrency", type=int, default=16, help="for the first run (default %(default)s)")
    p.add_argument("--name", default="resume", help="results file name (default %(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from argalign.stages.run.runner import RunOptions, run_batch

    rows: list[dict[str, Any]] = []
    with FakeServerProcess("--output-words", "12") as server:
        for n in args.sizes:
            with tempfile.TemporaryDirectory(prefix="argalign-resume-") as tmp:
                tmp = Path(tmp)
                data = prepare_data(tmp / "data", n)
                settings = write_settings(tmp / "settings.yaml", server.url, concurrency=args.concurrency)
                options = RunOptions(data=data, config=str(settings), track=False, progress=False)
                started, calls_start = time.monotonic(), server.stats()["total"]
                first = run_batch(options).as_dict()
                first_s = time.monotonic() - started
                calls_before = server.stats()["total"]

                started = time.monotonic()
                again = run_batch(options).as_dict()
                rerun_s = time.monotonic() - started
                calls_in_process = server.stats()["total"] - calls_before

                command = ["run", "--data", str(data), "--settings", str(settings), "--no-track",
                           "--no-progress"]
                before = server.stats()["total"]
                cli = measure("argalign.cli", *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                calls_cli = server.stats()["total"] - before
                if cli["returncode"] != 0:
                    raise SystemExit(f"argalign run exited {cli['returncode']}")
                helped = measure("argalign.cli", "--help", stdout=subprocess.DEVNULL)
                rows.append({
                    "rows": n, "first_run_s": round(first_s, 2),
                    "first_run_calls": calls_before - calls_start,
                    "done": again["done"], "rerun_conversations": again["session"]["conversations"],
                    "rerun_calls": calls_in_process, "rerun_s": round(rerun_s, 3),
                    "rerun_s_per_1k": round(1000 * rerun_s / n, 3),
                    "cli_rerun_calls": calls_cli, "cli_rerun_s": cli["wall_s"],
                    "cli_rerun_s_per_1k": round(1000 * cli["wall_s"] / n, 3),
                    "cli_peak_rss_mib": cli["peak_rss_mib"], "cli_help_s": helped["wall_s"],
                    "cli_help_peak_rss_mib": helped["peak_rss_mib"],
                    "first_outcomes": first["outcomes"],
                })
                print(rows[-1], file=sys.stderr, flush=True)

    print("re-running a finished run (fake endpoint; --no-track)")
    print(table(rows, ["rows", "first_run_calls", "rerun_calls", "cli_rerun_calls", "rerun_s",
                       "rerun_s_per_1k", "cli_rerun_s", "cli_rerun_s_per_1k", "cli_help_s",
                       "cli_peak_rss_mib", "cli_help_peak_rss_mib"]))
    print("rerun_s: run_batch in process (plan: index the raw file, hash it, read the results; "
          "summary); cli_rerun_s: `argalign run` in a subprocess, with interpreter start and imports "
          "(cli_help_s: `argalign --help` alone)")
    path = write_results(args.name, {
        "command": "python bench/resume.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
