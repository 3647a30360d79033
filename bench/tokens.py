"""LM output tokens per conversation, Mode A and B, against the conversation's size and an echo.

On the six real rows (read at run time from shared/data; their text is never copied into the
project), each row is aligned in Mode A and in Mode B by a real local model (zero-shot programs,
``align_example`` as the runner calls it). For each row: its size (characters and tokens of its
JSON), the output tokens of each mode (the ``usage`` of every call, as the result records count
them), and the echo baseline: a prompt that returns the whole conversation as JSON, as the
original pipeline did, whose output is at least the conversation's JSON, i.e. its token count.
Tokens are counted by the model server's own ``/tokenize`` endpoint (llama.cpp).

    python bench/tokens.py                              # qwen2.5-coder-1.5b, 6 rows x 2 modes: ~20-40 min
    python bench/tokens.py --model smollm2-135m --rows 2   # quick
    nohup python bench/tokens.py > bench/results/tokens.log 2>&1 &   # and poll the log

Writes bench/results/tokens.json (and tokens.partial.jsonl, one line per alignment, as it goes).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import REAL_ROWS, RESULTS_DIR, read_jsonl, table, write_results

from argalign.modes import MODES

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def tokenize(base_url: str, text: str) -> int:
    """Token count of ``text`` by the model's own tokenizer (llama.cpp ``POST /tokenize``)."""
    request = urllib.request.Request(base_url + "/tokenize", data=json.dumps({"content": text}).encode(),
                                     headers={"Content-Type": "application/json"})
    with _opener.open(request, timeout=600) as resp:
        return len(json.loads(resp.read())["tokens"])


def conversation_size(row: dict[str, Any], base_url: str) -> dict[str, int]:
    text = json.dumps(row, ensure_ascii=False)
    messages = row.get("messages") or []
    prose = sum(len(m.get("content") or "") + len(m.get("thinking") or "") for m in messages)
    tokens = tokenize(base_url, text)
    return {"json_chars": len(text), "text_chars": prose, "json_tokens": tokens,
            "messages": len(messages), "echo_output_tokens": tokens}


def align_one(example: Any, mode: str, handle: Any, model: str, local: threading.local) -> dict[str, Any]:
    from argalign.programs.align import align_example
    from argalign.programs.store import load_program

    if not hasattr(local, "lm"):
        local.lm = handle.lm.copy()  # per-thread history: align_example counts tokens from it
    program, program_id = load_program(mode)
    started = time.monotonic()
    record = align_example(example, program, model=model, lm=local.lm, adapter=handle.adapter,
                           program_id=program_id)
    return {"row": example.index, "id": example.id, "mode": mode, "outcome": record.outcome.value,
            "codes": record.codes, "calls": record.calls, "attempts": record.attempts,
            "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
            "wall_s": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2.5-coder-1.5b",
                   help="a model of the settings (default %(default)s; smollm2-135m for a quick run)")
    p.add_argument("--settings", default=None, help="settings YAML (default: the packaged one)")
    p.add_argument("--rows", type=int, default=6, help="first K real rows (default %(default)s)")
    p.add_argument("--modes", nargs="+", default=list(MODES))
    p.add_argument("--input", default=str(REAL_ROWS), help="rows JSONL (default: the six real rows)")
    p.add_argument("--workers", type=int, default=2,
                   help="alignments at once (default %(default)s, the server's n_parallel slots)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of the local server (default: the settings'; 1 helps much on a "
                        "machine shared with other llama.cpp processes, where spinning threads stall)")
    p.add_argument("--name", default="tokens", help="results file name (default %(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "LiteLLM", "urllib3", "dspy"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from argalign.core.schema import Example
    from argalign.models.config import load_settings
    from argalign.models.lm import open_models

    rows = read_jsonl(Path(args.input))[: args.rows]
    examples = [Example(str(row.get("example_id") or row.get("source_id") or f"real/{k}"), "real", "train",
                        k, row) for k, row in enumerate(rows)]
    settings = load_settings(args.settings)
    if args.threads is not None and settings.get(args.model).local is not None:
        cfg = settings.get(args.model)
        cfg = cfg.model_copy(update={"local": cfg.local.model_copy(update={"threads": args.threads})})
        settings = settings.model_copy(update={"models": {**settings.models, args.model: cfg}})
    model_string = settings.get(args.model).model
    partial = RESULTS_DIR / f"{args.name}.partial.jsonl"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    partial.write_text("")
    started = time.monotonic()
    with open_models(settings, [args.model]) as handles:
        handle = handles[args.model]
        base_url = str(handle.lm.kwargs["api_base"]).rsplit("/v1", 1)[0]
        sizes = [conversation_size(row, base_url) for row in rows]
        local = threading.local()
        # Smallest conversations first, so that an interrupted run still has whole rows.
        order = sorted(range(len(examples)), key=lambda k: sizes[k]["json_tokens"])
        jobs = [(examples[k], mode) for k in order for mode in args.modes]
        runs: list[dict[str, Any]] = []
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [pool.submit(align_one, example, mode, handle, args.model, local)
                       for example, mode in jobs]
            for future in futures:
                run = future.result()
                runs.append(run)
                with partial.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(run) + "\n")
                logging.info("row %d mode %s: %s, %d calls, %d output tokens, %.0f s", run["row"],
                             run["mode"], run["outcome"], run["calls"], run["output_tokens"], run["wall_s"])

    per_row = []
    for k, size in enumerate(sizes):
        if not any(r["row"] == k for r in runs):
            continue
        line: dict[str, Any] = {"row": k, **size}
        for run in (r for r in runs if r["row"] == k):
            m = run["mode"]
            line[f"{m}_out"] = run["output_tokens"]
            line[f"{m}_calls"] = run["calls"]
            line[f"{m}_outcome"] = run["outcome"]
            line[f"{m}_vs_echo"] = round(run["output_tokens"] / size["echo_output_tokens"], 3)
            line[f"{m}_per_kchar"] = round(1000 * run["output_tokens"] / size["json_chars"], 1)
        per_row.append(line)
    mean: dict[str, Any] = {"row": "mean"}
    for key in per_row[0]:
        values = [r[key] for r in per_row if isinstance(r.get(key), (int, float)) and key != "row"]
        if values:
            mean[key] = round(statistics.mean(values), 3)
    columns = ["row", "json_chars", "json_tokens", "echo_output_tokens",
               *[f"{m}_{k}" for m in args.modes for k in ("out", "calls", "outcome", "vs_echo")]]
    print(f"model {args.model} ({model_string}); output tokens per conversation")
    print(table([*per_row, mean], columns))
    path = write_results(args.name, {
        "command": "python bench/tokens.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model, "model_string": model_string, "rows": len(rows), "modes": args.modes,
        "threads": args.threads,
        "wall_s": round(time.monotonic() - started, 1), "per_row": per_row, "mean": mean, "runs": runs})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
