"""What scoring both rows costs per conversation: the judge's calls and prompt tokens.

Runs the default pipeline's run step on the bundled sample (``-n`` conversations per config
and split) with scoring on (the default ``judge`` comparison), against the simulated endpoint
for both the aligning model and the judge: no LM time is spent, and the calls are the calls a
real run makes (the judge's readings are one-token calls, cached per worker). Each prompt the
judge is sent is counted with cl100k_base (:mod:`argalign.core.tokens`; within ~1% of Qwen2.5's
tokenizer on English prose). The alignment's and the judge's prompts are also compared on one
scale, the simulated endpoint's characters / 4.

    python bench/scoring_cost.py -n 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

from _common import FakeServerProcess, result_records, write_results, write_settings

from argalign.core.tokens import load_tokenizer
from argalign.scoring import judge as judge_module
from argalign.stages.prepare import CONFIGS, SPLITS, prepare
from argalign.stages.run.runner import RunOptions, run_batch

PROMPT_TOKENS_PER_SECOND = 75  # the default model's prompt reading on 2 cores (default.yaml)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="conversations per (config, split)")
    args = parser.parse_args()
    prompts: list[str] = []
    lock = threading.Lock()
    ask = judge_module.Judge._ask

    def recording_ask(self, prompt):  # counts the prompts that reach the judge model (not cached)
        before = self.calls
        value = ask(self, prompt)
        if self.calls > before:
            with lock:
                prompts.append(prompt)
        return value

    judge_module.Judge._ask = recording_ask
    with tempfile.TemporaryDirectory() as tmp, FakeServerProcess("--output-words", "12") as fake:
        data = Path(tmp) / "data"
        prepare(source="sample", configs=list(CONFIGS), splits=list(SPLITS), n=args.n, seed=0, data=data)
        settings = write_settings(Path(tmp) / "settings.yaml", fake.url, concurrency=2)
        summary = run_batch(RunOptions(data=data, settings=str(settings), track=False,
                                       progress=False)).as_dict()
        records = list(result_records(data / "runs" / summary["run"]))
    usage = [r["scores"]["usage"] for r in records if "usage" in (r.get("scores") or {})]
    n, tokenizer = len(usage), load_tokenizer()
    judge_tokens = sum(tokenizer.count(p) for p in prompts)
    figures = {
        "conversations": summary["total"], "scored": n, "outcomes": summary["outcomes"],
        "judge_calls_per_conversation": round(sum(u["calls"] for u in usage) / n, 2),
        "judge_prompt_tokens_per_conversation_cl100k": round(judge_tokens / n),
        "judge_prompt_tokens_per_call_cl100k": round(judge_tokens / len(prompts)),
        "judge_seconds_per_conversation_estimate": round(judge_tokens / n / PROMPT_TOKENS_PER_SECOND),
        "judge_prompt_chars4_per_conversation": round(sum(u["input_tokens"] for u in usage) / n),
        "alignment_calls_per_conversation": round(summary["tokens"]["calls"] / summary["total"], 2),
        "alignment_prompt_chars4_per_conversation": round(summary["tokens"]["input"] / summary["total"]),
        "alignment_output_chars4_per_conversation": round(summary["tokens"]["output"] / summary["total"]),
    }
    print(json.dumps(figures, indent=2))
    write_results("scoring_cost", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
