"""Re-run today's quality checks on the rows a finished run aligned, with their score change.

A run records the checks of the code that made it. After a check is added, this shows which of
an old run's ``aligned`` rows it would now reject, next to the metric's after - before for the
row, so a new check can be judged on real output:

    python bench/recheck_run.py data                # every run under data/runs
    python bench/recheck_run.py data --run run-AB-qwen-s0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import result_records

from argalign.core.datadir import DataDir
from argalign.core.jsonl import iter_jsonl
from argalign.scoring.checks import check_quality


def originals(data: Path) -> dict[str, dict]:
    """The prepared rows by example id (``raw/<config>/<split>.jsonl``)."""
    rows: dict[str, dict] = {}
    for _, path in DataDir(data).subset_files("raw"):
        for _, line in iter_jsonl(path):
            rows[str(line["id"])] = line["row"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the data folder of a run (--data)")
    parser.add_argument("--run", default=None, help="one run name (default: every run)")
    args = parser.parse_args(argv)
    raw = originals(args.data)
    runs = sorted(p for p in (args.data / "runs").iterdir() if p.is_dir()
                  and (args.run is None or p.name == args.run))
    if not runs:
        print(f"no run under {args.data / 'runs'}", file=sys.stderr)
        return 2
    for run_dir in runs:
        aligned = caught = 0
        print(f"run {run_dir.name}")
        for record in result_records(run_dir):
            if record.get("outcome") != "aligned":
                continue
            original = raw.get(str(record["id"]))
            if original is None:
                print(f"  {record['id']}: no prepared row with this id", file=sys.stderr)
                continue
            aligned += 1
            found = sorted({f.code for f in check_quality(original, record["row"],
                                                          record["mode"])})
            caught += bool(found)
            scores = record.get("scores") or {}
            change = (f"{scores['aligned']['score'] - scores['baseline']['score']:+.4f}"
                      if "aligned" in scores and "baseline" in scores else "   n/a")
            print(f"  {record['id']:<48} {record['mode']}  after-before {change}  "
                  f"{' '.join(found) or '-'}")
        print(f"  {caught} of {aligned} aligned rows fail a check today")
    return 0


if __name__ == "__main__":
    sys.exit(main())
