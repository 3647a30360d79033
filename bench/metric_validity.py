"""Does the mutual-predictability metric measure what it claims? Prints and writes figures.

On the bundled sample (validation split), with a real judge model:
1. matched vs mismatched: each conversation scored as it is, and with its request swapped
   for another row's request (a derangement), so the answer no longer fits it;
2. vague vs explicit: each conversation whose request is vague ("Do the usual analysis.")
   scored as it is and with an explicit request (written here, per kind of answer) that asks
   for what the answer does, the source text and the answer unchanged.
Both comparisons are computed from the same judge predictions: ``judge`` (a rating by the
judge, one more call per direction) and ``lexical`` (content-word F1, no call).

    python bench/metric_validity.py --model qwen2.5-coder-1.5b --n 6
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path

import dspy

from argalign.config import load_settings
from argalign.lm import open_models
from argalign.metrics import MutualPredictability, _turn_views, lexical_match
from argalign.prepare import CONFIGS, sample_dir
from argalign.schema import split_source

# Explicit requests for a kind of answer, recognised by how the answer starts.
EXPLICIT = [
    ("```argdown\n<", "Reconstruct the argument as an Argdown argument in standard form: a title "
     "and gist line, numbered premises, the inference steps with the rules used, and the "
     "conclusion."),
    ("```argdown\n[", "Map the argumentation of the text as an Argdown argument map that shows "
     "which claims support which, down to the main conclusion."),
    ("```\n(declare", "Write an SMT-LIB program that checks each inference step of the argument "
     "for deductive validity, with comments naming the predicates."),
    ("<span", "Annotate the text with HTML spans that mark reasons and conjectures, each linked "
     "to the corresponding proposition of the reconstructed argument."),
]


def load_rows(split: str) -> list[dict]:
    rows = []
    for config in CONFIGS:
        path = sample_dir() / config / f"{split}.jsonl"
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def with_request(row: dict, instruction: str) -> dict:
    """The row with its first user message's instructions replaced, source text kept."""
    new = copy.deepcopy(row)
    user = next(m for m in new["messages"] if m["role"] == "user")
    before, source, _after = split_source(user["content"])
    intro = before.rstrip("\n").rsplit("\n", 1)[-1]
    user["content"] = f"{instruction}\n\n{intro}\n{source}"
    return new


def instruction_of(row: dict) -> str:
    user = next(m for m in row["messages"] if m["role"] == "user")
    before, _source, after = split_source(user["content"])
    intro = before.rstrip("\n").rsplit("\n", 1)[-1]
    return (before[: len(before) - len(intro) - 1] + after).strip()


def explicit_for(row: dict) -> str | None:
    answer = next((m["content"] for m in reversed(row["messages"])
                   if m["role"] == "assistant" and m["content"]), "")
    for prefix, request in EXPLICIT:
        if answer.startswith(prefix):
            return request
    return None


def score(judge: MutualPredictability, row: dict) -> dict[str, float]:
    """Forward/backward for the first turn, by both comparisons."""
    request, answer, tools = _turn_views(row)[0]
    turn = judge(request=request, answer=answer, tool_calls=tools)
    actual_answer = answer if tools == "none" else f"{answer}\nTool calls: {tools}"
    lex_f = lexical_match(turn.predicted_answer, actual_answer)
    lex_b = lexical_match(turn.reconstructed_request, request)
    return {"judge": (turn.forward + turn.backward) / 2, "lexical": (lex_f + lex_b) / 2}


def separation(pairs: list[tuple[dict, dict]], key: str) -> dict[str, float]:
    hi = [a[key] for a, _ in pairs]
    lo = [b[key] for _, b in pairs]
    wins = sum(a > b for a, b in zip(hi, lo)) + 0.5 * sum(a == b for a, b in zip(hi, lo))
    return {"mean_expected_higher": round(statistics.mean(hi), 3),
            "mean_expected_lower": round(statistics.mean(lo), 3),
            "delta": round(statistics.mean(hi) - statistics.mean(lo), 3),
            "pairwise_win_rate": round(wins / len(pairs), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="judge model (default: the config's)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--n", type=int, default=6, help="conversations per comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/metric_validity.json")
    args = parser.parse_args()

    rows = load_rows("validation")
    rng = random.Random(args.seed)
    single = [r for r in rows if split_source(
        next(m for m in r["messages"] if m["role"] == "user")["content"])]
    matched = rng.sample(single, args.n)
    shifted = matched[1:] + matched[:1]  # a derangement: every row gets another's request
    vague = [r for r in single if len(instruction_of(r)) < 60 and explicit_for(r)]
    vague = rng.sample(vague, min(args.n, len(vague)))

    settings = load_settings(args.config)
    name = args.model or settings.default_judge
    judge = MutualPredictability("judge")
    started = time.monotonic()
    with open_models(settings, [name]) as handles, dspy.context(
            lm=handles[name].lm, adapter=handles[name].adapter):
        shuffle_pairs = [(score(judge, row), score(judge, with_request(row, instruction_of(other))))
                         for row, other in zip(matched, shifted)]
        print(f"matched/mismatched done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        vague_pairs = [(score(judge, with_request(row, explicit_for(row))), score(judge, row))
                       for row in vague]
    result = {
        "judge_model": name, "n_matched": len(shuffle_pairs), "n_vague": len(vague_pairs),
        "seconds": round(time.monotonic() - started, 1),
        "matched_vs_mismatched": {k: separation(shuffle_pairs, k) for k in ("judge", "lexical")},
        "explicit_vs_vague": {k: separation(vague_pairs, k) for k in ("judge", "lexical")},
        "raw": {"matched_vs_mismatched": shuffle_pairs, "explicit_vs_vague": vague_pairs},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=2))


if __name__ == "__main__":
    main()
