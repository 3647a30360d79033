"""The review report at scale: build time, file size, and how fast Chromium shows it.

Writes a synthetic run of N conversations without any LM (raw rows from the bundled sample,
cycled; each "aligned" row has a rewritten request, opening and closing; one in ten failed;
scores drawn at random), then times ``argalign report`` and, when Chromium is installed, a
headless load of the page (first page rendered) and a filtered load (``#outcome=failed``).

    python bench/report_scale.py --rows 10000
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import self_peak_rss_mib, write_results

from argalign.core.schema import Example
from argalign.core.thinking import split_thinking
from argalign.stages.prepare import sample_dir
from argalign.stages.report import build_report

CONFIG, SPLIT, RUN = "deepa2-aaac01-thinking", "train", "run-scale"


def _aligned(row: dict, k: int) -> dict:
    row = copy.deepcopy(row)
    user = next(m for m in row["messages"] if m["role"] == "user")
    first, _, rest = user["content"].partition("\n")
    user["content"] = f"Reconstruct the argument in Argdown, step {k % 7}, with a title.\n{rest}"
    for message in row["messages"]:
        if message["role"] == "assistant" and message["thinking"]:
            parts = split_thinking(message["thinking"])
            message["thinking"] = parts.join(opening=f"I start from the request ({k}).\n{parts.opening}",
                                             closing="That gives the reconstruction the request asks for.")
    return row


def write_run(data: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    pool = [json.loads(line) for path in sorted(sample_dir().glob("*/*.jsonl"))
            for line in path.read_text("utf-8").splitlines() if line.strip()]
    raw = data / "raw" / CONFIG / f"{SPLIT}.jsonl"
    results = data / "runs" / RUN / "results" / CONFIG / SPLIT
    raw.parent.mkdir(parents=True)
    results.mkdir(parents=True)
    ids = []
    with raw.open("w") as fh_raw, (results / "A-fake.jsonl").open("w") as fh_a, \
            (results / "B-fake.jsonl").open("w") as fh_b:
        for k in range(n):
            row = {**pool[k % len(pool)], "source_id": f"scale-{k:05d}"}
            fh_raw.write(json.dumps(Example(row["source_id"], CONFIG, SPLIT, k, row).to_record()) + "\n")
            ids.append(row["source_id"])
            mode = "AB"[k % 2]
            failed = k % 10 == 9
            before, after = rng.random(), rng.random()
            record = {"id": row["source_id"], "config": CONFIG, "split": SPLIT, "index": k, "mode": mode,
                      "model": "fake", "program": f"zs{mode}-0", "outcome": "failed" if failed else "aligned",
                      "reason": "no usable answer" if failed else "", "codes": ["LM_ERROR"] if failed else [],
                      "attempts": 1, "retries": [], "latency_s": 1.0, "calls": 2, "input_tokens": 900,
                      "output_tokens": 150, "row": None if failed else _aligned(row, k)}
            if not failed:
                record["scores"] = {"baseline": {"score": before}, "aligned": {"score": after},
                                    "usage": {"calls": 5, "input_tokens": 3000, "output_tokens": 5,
                                              "seconds": 2.0}}
            (fh_a if mode == "A" else fh_b).write(json.dumps(record) + "\n")
    manifest = {"run_name": RUN, "params": {"raw": {f"{CONFIG}/{SPLIT}": "x"}}}
    (data / "runs" / RUN / "manifest.json").write_text(json.dumps(manifest))
    (data / "raw" / "manifest.json").write_text(json.dumps({"configs": [CONFIG], "splits": [SPLIT]}))


def browse(chromium: str, url: str, profile: Path) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=600)
    return time.monotonic() - started, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_run(data, args.rows)
        started = time.monotonic()
        result = build_report(data)
        build_s = time.monotonic() - started
        figures = {"rows": args.rows, "build_s": round(build_s, 2),
                   "bytes": result["bytes"], "peak_rss_mib": self_peak_rss_mib()}
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            url = Path(result["out"]).resolve().as_uri()
            load_s, dom = browse(chromium, url, Path(tmp) / "profile")
            filter_s, filtered = browse(chromium, url + "#outcome=failed&page=3", Path(tmp) / "profile")
            figures.update(chromium_load_s=round(load_s, 2), chromium_filtered_load_s=round(filter_s, 2),
                           first_page_rows=dom.count("<article"),
                           ready_ms=int(dom.split('data-ready-ms="', 1)[-1].split('"', 1)[0]),
                           filtered_ready_ms=int(filtered.split('data-ready-ms="', 1)[-1].split('"', 1)[0]),
                           filtered_status=filtered.split('id="status">', 1)[-1].split("<", 1)[0])
    print(json.dumps(figures, indent=2))
    write_results("report_scale", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
