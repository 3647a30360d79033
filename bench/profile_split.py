"""Split a py-spy profile of the runner's workers into argalign, DSPy, HTTP client, pydantic, JSON.

    py-spy record --gil -r 400 -f raw -o prof.txt -- python bench/throughput.py --n 400 --concurrency 16
    python bench/profile_split.py prof.txt

``--gil`` keeps only samples of the thread holding the GIL, i.e. Python CPU time. Each sample
of a worker (a stack through ``argalign.stages.run.runner``'s worker) is charged to the innermost
frame that belongs to a known part; a standard-library frame (``copy``, ``re``, ...) is charged
to its caller's part, except JSON, HTTP and locks, which are parts of their own.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

# (substring of a frame's file, part); the first match wins, so DSPy's vendored client and the
# JSON parsers come before DSPy and the standard library.
PARTS = [
    ("argalign/", "argalign"),
    ("dspy/_vendor/lm15", "HTTP client (lm15, DSPy's)"),
    ("dspy/", "DSPy"),
    ("litellm/", "HTTP client (LiteLLM)"),
    ("httpx", "HTTP client (LiteLLM)"),
    ("httpcore", "HTTP client (LiteLLM)"),
    ("pydantic", "pydantic"),
    ("json_repair", "JSON"),
    ("orjson", "JSON"),
    ("json/", "JSON"),
    ("http/client", "HTTP client (LiteLLM)"),
    ("socket.py", "socket"),
    ("ssl.py", "socket"),
    ("threading.py", "locks, threads"),
    ("queue.py", "locks, threads"),
    ("multiprocessing/", "locks, threads"),
    ("logging/", "logging"),
]
WORKER = ("_Batch.worker", "worker_main")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*):(?P<line>\d+)\)$")


def part_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        where = match.group("file") if match else frame
        for needle, part in PARTS:
            if needle in where:
                return part
    return "other"


def split(lines: list[str]) -> tuple[int, collections.Counter]:
    parts: collections.Counter = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit() or not any(w in stack for w in WORKER):
            continue
        parts[part_of(stack.split(";"))] += int(count)
        total += int(count)
    return total, parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", help="py-spy raw output (-f raw)")
    p.add_argument("--cpu-ms-per-call", type=float, default=None,
                   help="the benchmark's CPU per LM call, to print each part in ms")
    args = p.parse_args(argv)
    with open(args.profile, encoding="utf-8") as fh:
        total, parts = split(fh.readlines())
    if not total:
        print("no worker samples in the profile", file=sys.stderr)
        return 1
    print(f"{total} worker samples")
    for part, n in parts.most_common():
        ms = f"  ~{args.cpu_ms_per_call * n / total:.2f} ms/call" if args.cpu_ms_per_call else ""
        print(f"{n / total:7.1%}  {part}{ms}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
