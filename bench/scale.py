"""Wall time and peak memory of ``prepare``, ``merge`` and ``clean`` on large generated splits.

A split of N rows of ~15 kB is synthesized into a temporary directory as a JSONL source: each
row has the shape of one of the six real rows (its roles, which fields are null, the relative
length of every content and thinking) with generated words in place of their text (nothing
of the real text is kept) and lengths scaled to ``--row-kb``. Then, each in its own
subprocess (``python -m argalign.cli ...``) so that its peak RSS (``wait4``) is its own:

1. ``prepare --source <split>.jsonl`` (all rows);
2. ``merge`` of a run whose result files are faked (every row "aligned" in Mode A or B, its
   assistant thinking edited as the runner would), written here beforehand;
3. ``clean`` of the merged split (the invariant checker on every row);
4. ``publish --dry-run`` of the cleaned split (parquet written in batches, the card, and the
   folder loaded back with ``datasets``).

Sizes grow (5k, 10k, 20k, 40k rows by default) to show how time and memory grow with rows;
the baseline is ``argalign --help`` (the same imports, no work).

    python bench/scale.py                          # 5k 10k 20k 40k rows of ~15 kB: ~5-10 min, ~2.5 GB disk
    python bench/scale.py --sizes 2000 4000 --row-kb 15   # quick

Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CONFIG, REAL_ROWS, measure, read_jsonl, table, write_results

WORDS = (
    "argument", "premise", "conclusion", "therefore", "because", "claim", "support", "evidence",
    "reason", "infer", "assume", "valid", "sound", "text", "author", "position", "objection",
    "reply", "case", "example", "rule", "general", "specific", "hence", "thus", "follows", "shows",
    "suggests", "implies", "denies", "accepts", "rejects", "holds", "every", "some", "none", "most",
    "few", "many", "all", "member", "club", "team", "city", "river", "season", "player", "friend",
    "rival", "cousin", "neighbor", "student", "teacher", "product", "brand", "ingredient",
    "customer", "buyer", "seller", "fan",
)
INTRO = "Please analyse the argument in the following text:"


def _paragraphs(rng: random.Random, count: int, words: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(count)]


class RowMaker:
    """Rows with the shapes of the real rows, generated text, ~``row_kb`` kB of JSON each."""

    def __init__(self, shapes: list[dict[str, Any]], row_kb: float, seed: int = 0):
        self.rng = random.Random(seed)
        self.pool = _paragraphs(self.rng, 400, 60)  # ~400 chars each, reused in random order
        mean = sum(len(json.dumps(s)) for s in shapes) / len(shapes)
        scale = row_kb * 1000 / mean
        # Per message: role, name, which fields are null, and the scaled lengths of its text.
        self.shapes = [[{"role": m["role"], "name": m.get("name"),
                         "content": None if m.get("content") is None else int(len(m["content"]) * scale),
                         "thinking": None if m.get("thinking") is None else int(len(m["thinking"]) * scale),
                         "tools": None if m.get("tools") is None else "[]",
                         "tool_calls": None if m.get("tool_calls") is None else
                         json.dumps([{"type": "function", "function": {"name": "check", "arguments": "{}"}}])}
                        for m in shape["messages"]] for shape in shapes]

    def _text(self, chars: int) -> str:
        out, size = [], 0
        while size < chars:
            out.append(self.rng.choice(self.pool))
            size += len(out[-1]) + 1
        return " ".join(out)[: max(chars, 1)]

    def row(self, k: int) -> dict[str, Any]:
        messages = []
        for m in self.shapes[k % len(self.shapes)]:
            message = {"content": None, "name": m["name"], "role": m["role"], "thinking": None,
                       "tool_calls": m["tool_calls"], "tools": m["tools"]}
            if m["content"] is not None:
                text = self._text(m["content"])
                if m["role"] == "user":  # a source text the checker must find verbatim
                    text = f"{INTRO}\n{text}"
                message["content"] = text or "ok"
            if m["thinking"] is not None:
                message["thinking"] = self._text(m["thinking"]) if m["thinking"] else ""
            messages.append(message)
        return {"source_id": f"scale-{k:07d}", "messages": messages}


def write_source(path: Path, maker: RowMaker, n: int) -> int:
    with path.open("w", encoding="utf-8") as fh:
        for k in range(n):
            fh.write(json.dumps(maker.row(k), ensure_ascii=False) + "\n")
    return path.stat().st_size


def write_fake_run(data: Path, run: str = "bench") -> int:
    """A finished run for merge: one "aligned" result per raw row, thinking edited; returns bytes."""
    raw = data / "raw" / CONFIG / "train.jsonl"
    results = data / "runs" / run / "results" / CONFIG / "train"
    results.mkdir(parents=True, exist_ok=True)
    files = {mode: (results / f"{mode}-fake.jsonl").open("w", encoding="utf-8") for mode in "AB"}
    try:
        with raw.open(encoding="utf-8") as fh:
            for k, line in enumerate(fh):
                example = json.loads(line)
                row = example["row"]
                for m in row["messages"]:
                    if m["role"] == "assistant" and m["thinking"]:
                        m["thinking"] = "Aligned opening. " + m["thinking"]
                mode = "AB"[k % 2]
                record = {"id": example["id"], "source_id": example["id"], "config": CONFIG,
                          "split": "train", "index": example["index"], "mode": mode, "model": "fake",
                          "program": f"zs{mode}-bench", "outcome": "aligned", "reason": "", "codes": [],
                          "attempts": 1, "retries": [], "latency_s": 1.0, "calls": 2,
                          "input_tokens": 1000, "output_tokens": 200, "row": row, "run": run,
                          "model_string": "openai/fake"}
                files[mode].write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        for f in files.values():
            f.close()
    manifest = {"run_name": run, "params": {"raw": {f"{CONFIG}/train": "not-checked-by-merge"}}}
    (data / "runs" / run / "manifest.json").write_text(json.dumps(manifest))
    return sum(p.stat().st_size for p in results.iterdir())


def cli(*args: str) -> tuple[str, ...]:
    return ("argalign.cli", *args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000])
    p.add_argument("--row-kb", type=float, default=15.0, help="mean row size in kB (default %(default)s)")
    p.add_argument("--steps", nargs="+", default=["prepare", "merge", "clean", "publish"],
                   choices=["prepare", "merge", "clean", "publish"])
    p.add_argument("--tmp", default=None, help="where to generate (default: the system temp dir)")
    p.add_argument("--name", default="scale", help="results file name (default %(default)s)")
    args = p.parse_args(argv)

    maker = RowMaker(read_jsonl(REAL_ROWS), args.row_kb)
    quiet = {"stdout": __import__("subprocess").DEVNULL}
    baseline = measure(*cli("--help"), **quiet)  # imports and parser, no work
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="argalign-scale-", dir=args.tmp) as tmp:
            tmp = Path(tmp)
            data = tmp / "data"
            started = time.monotonic()
            source_bytes = write_source(tmp / "split.jsonl", maker, n)
            print(f"{n} rows: {source_bytes / 1e6:.0f} MB generated in {time.monotonic() - started:.0f} s",
                  file=sys.stderr, flush=True)
            line: dict[str, Any] = {"rows": n, "source_mb": round(source_bytes / 1e6, 1),
                                    "row_kb": round(source_bytes / n / 1000, 2)}
            if "prepare" in args.steps:
                m = measure(*cli("prepare", "--source", str(tmp / "split.jsonl"), "--configs", CONFIG,
                                "--splits", "train", "--data", str(data)), **quiet)
                line.update({f"prepare_{k}": v for k, v in m.items()})
            if "merge" in args.steps or "clean" in args.steps:
                line["results_mb"] = round(write_fake_run(data) / 1e6, 1)
            if "merge" in args.steps:
                m = measure(*cli("merge", "--data", str(data), "--run-name", "bench"), **quiet)
                line.update({f"merge_{k}": v for k, v in m.items()})
            if "clean" in args.steps:
                m = measure(*cli("clean", "--data", str(data)), **quiet)
                line.update({f"clean_{k}": v for k, v in m.items()})
                kept = json.loads((data / "cleaned" / "summary.json").read_text())["total"]
                line["clean_kept"] = kept["aligned"]
            if "publish" in args.steps:
                m = measure(*cli("publish", "--data", str(data), "--org", "bench", "--repo-name", "scale",
                                 "--configs", CONFIG, "--dry-run", str(tmp / "hub")), **quiet)
                line.update({f"publish_{k}": v for k, v in m.items()})
                line["publish_parquet_mb"] = round(sum(
                    p.stat().st_size for p in (tmp / "hub").rglob("*.parquet")) / 1e6, 1)
            for key in [k for k in line if k.endswith("returncode")]:
                if line[key] != 0:
                    raise SystemExit(f"{key} = {line[key]} at {n} rows: {line}")
            rows.append(line)
            print(json.dumps(line), file=sys.stderr, flush=True)
            shutil.rmtree(tmp / "data", ignore_errors=True)
            shutil.rmtree(tmp / "hub", ignore_errors=True)

    columns = ["rows", "source_mb"]
    for step in args.steps:
        columns += [f"{step}_wall_s", f"{step}_cpu_s", f"{step}_peak_rss_mib"]
    print(f"`argalign --help` (imports only): {baseline['peak_rss_mib']} MiB peak RSS, "
          f"{baseline['wall_s']} s")
    print(table(rows, columns))
    path = write_results(args.name, {
        "command": "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "row_kb_target": args.row_kb, "baseline_help": baseline,
        "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
