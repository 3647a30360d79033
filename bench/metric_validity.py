"""Does the metric measure mutual predictability? Four checks, each on pairs of conversations.

For every pair, one side should score higher than the other:

(a) matched vs mismatched: a conversation whose request names what its response delivers,
    and the same conversation with the instructions of a row of another task (source text
    and response kept);
(b) explicit vs vague: a conversation with an explicit request for its task (the
    instructions of another row of the same task) and with a vague one ("What do you make of
    this text:");
(c) fitting vs foreign opening: a conversation as it is, and with the opening of its first
    thinking (prose and plan) taken from a row of another task;
(d) honest vs quoting: the explicit request of (b), and the same request followed by a span
    copied from the answer, scored as Mode A rewrites of the original (the quality check must
    flag the quote; the ungated scores are reported too);
(e) method named vs not: a request (the row's own, or another row's of the same task) with a
    sentence asking for the analysis its response's plan carries out, in words, and the same
    request without it (response kept);
(f) fitting vs generic opening: the first thinking with an opening that says why the request
    calls for the plan's analysis, and with a generic one ("This requires a complex analysis.
    Let me draw up a plan."), plan and the rest kept;
(g) original vs echo: the conversation as it is, and with the request copied, the user's
    imperatives (label words and all) or a tool call written as text added to its first
    thinking's opening, scored as Mode B rewrites (gated; the ungated scores are reported too).

Rows: the bundled sample (every config and split) and the six real rows in ../shared/data/
(used when present). Per check and comparison: win rate (ties count half) and AUC, with
bootstrap 95% intervals over pairs. Also: the same conversations scored twice with a fresh
judge (repeatability), every yes/no verdict flipped (independence), and the cost per
conversation.

    python bench/metric_validity.py                      # default judge model, all checks
    python bench/metric_validity.py --pairs 12 --comparisons structural lexical
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import dspy
from _common import REAL_ROWS, read_jsonl, sample_rows, table, write_results
from tqdm import tqdm

from argalign.core.deliverables import asked, method_words, requested
from argalign.core.schema import split_source
from argalign.core.stats import bootstrap, paired_auc, win_rate
from argalign.core.thinking import split_thinking
from argalign.models.config import load_settings
from argalign.models.lm import open_models, usage_from_history
from argalign.scoring.checks import instructions
from argalign.scoring.comparison import instructions_of, turn_views
from argalign.scoring.comparison_hybrid import HybridComparison
from argalign.scoring.comparison_judge import JudgeComparison
from argalign.scoring.judge import Judge
from argalign.scoring.metrics import COMPARISONS, MutualPredictability, score_aligned

CHECKS = {
    "a": "matched vs mismatched instructions",
    "b": "explicit vs vague request",
    "c": "fitting vs foreign thinking opening",
    "d": "honest vs answer-quoting request (gated)",
    "e": "request naming the plan's method vs without",
    "f": "opening tying request to method vs generic",
    "g": "original vs thinking echoing request/labels/tool call (gated)",
}
# Ways a request asks for a plan's analysis, and ways an opening ties it to the request: several
# phrasings, so that the check does not measure one template.
ASK_METHOD = ["First {methods}.", "Before you answer, {methods}.",
              "Work through a full analysis: {methods}.", "Please {methods}; then do what follows."]
TIE_METHOD = ["To settle what is asked I cannot just read the text: I need to {methods} first.",
              "What the request asks turns on the argument's structure, so I will {methods}.",
              "I can only answer this reliably after I {methods}; the plan below does that."]
GENERIC = ["This requires a complex analysis. Let me draw up a plan.",
           "Let's break this down into smaller steps:",
           "Hm, this requires a complex argumentative analysis. Better to set up a plan before "
           "I start."]
VAGUE = ["What do you make of this text:", "Have a look at this:", "Thoughts on the following?",
         "Here is something for you:"]


# --- building pairs -------------------------------------------------------------------------------

def user_index(row: dict) -> int:
    return next(i for i, m in enumerate(row["messages"]) if m["role"] == "user")


def task_of(row: dict) -> str | None:
    return turn_views(row)[0].delivered.task


def source_parts(row: dict) -> tuple[str, str, str] | None:
    return split_source(row["messages"][user_index(row)]["content"] or "")


def is_explicit(row: dict) -> bool:
    """The first request names the task its response delivers."""
    task = task_of(row)
    return task is not None and task in asked(instructions(row["messages"][user_index(row)]
                                                            ["content"]))


def with_instructions(row: dict, donor_instructions: str) -> dict:
    """``row`` with the instructions of its first request replaced; its source text kept."""
    before, source, after = source_parts(row)
    new = copy.deepcopy(row)
    new["messages"][user_index(row)]["content"] = f"{donor_instructions.rstrip()}\n{source}"
    return new


def lead_instructions(row: dict) -> str:
    """A donor's instructions as one block placed before a text: its intro and any trailing
    instruction, the source text left out."""
    before, _, after = source_parts(row)
    return (before.rstrip() + ("\n\n" + after.strip() if after.strip() else "")).strip() + "\n"


def with_opening(row: dict, donor: dict) -> dict | None:
    new = copy.deepcopy(row)
    i = next((k for k, m in enumerate(row["messages"]) if m.get("thinking")), None)
    j = next((k for k, m in enumerate(donor["messages"]) if m.get("thinking")), None)
    if i is None or j is None:
        return None
    mine, theirs = split_thinking(row["messages"][i]["thinking"]), split_thinking(
        donor["messages"][j]["thinking"])
    if not mine.middle or not theirs.opening:
        return None
    new["messages"][i]["thinking"] = mine.join(opening=theirs.opening)
    return new


def quoting(row: dict, words: int = 30) -> str | None:
    """A span of the answer of ``words`` words that the source text does not contain."""
    answer = next(m["content"] for m in reversed(row["messages"])
                  if m["role"] == "assistant" and m["content"])
    source = " ".join(re.findall(r"\w+", source_parts(row)[1].lower()))
    tokens = [w for w in re.split(r"\s+", answer) if w]
    for start in range(0, len(tokens) - words + 1, 5):
        span = " ".join(tokens[start:start + words])
        if " ".join(re.findall(r"\w+", span.lower())) not in source:
            return span
    return None


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def unexpected(row: dict) -> frozenset[str]:
    """Major methods of the first turn's plan that its request leaves unexpected."""
    view = turn_views(row)[0]
    return view.delivered.major_methods - requested(instructions_of(view.request))


def with_method_sentence(row: dict, template: str) -> dict:
    """``row`` with a first sentence asking for the analysis its plan carries out."""
    new = copy.deepcopy(row)
    user = new["messages"][user_index(row)]
    sentence = template.format(methods=_joined(method_words(turn_views(row)[0].delivered)))
    user["content"] = f"{sentence}\n{user['content']}"
    return new


def with_preamble(row: dict, preamble: str) -> dict | None:
    """``row`` with the prose before the plan of its first thinking replaced."""
    new = copy.deepcopy(row)
    i = next((k for k, m in enumerate(row["messages"]) if m.get("thinking")), None)
    if i is None:
        return None
    parts = split_thinking(row["messages"][i]["thinking"])
    if not parts.plan:
        return None
    new["messages"][i]["thinking"] = parts.join(preamble=preamble)
    return new


def echo_variants(row: dict) -> list[dict]:
    """The row with its first thinking's opening echoing the request, its imperatives and
    label words, or a tool call written as text."""
    view = turn_views(row)[0]
    i = next(k for k, m in enumerate(row["messages"]) if m.get("thinking"))
    preamble = split_thinking(row["messages"][i]["thinking"]).preamble
    words = method_words(view.delivered)
    added = [instructions_of(view.request).strip(),
             f"Please {words[0]}. Consider tone, persuasion and complexity. Reconstruct, "
             f"formalize and map the argument.",
             'Tool call: analyse_argument({"reconstruct": true, "formalize": true})']
    return [v for v in (with_preamble(row, f"{a}\n{preamble}") for a in added) if v is not None]


def build_pairs(rows: list[dict], n: int, seed: int) -> dict[str, list[tuple[dict, dict, dict]]]:
    """Per check, up to ``n`` (original, higher, lower) triples, drawn with a fixed seed."""
    rng = random.Random(seed)
    usable = [r for r in rows if source_parts(r) is not None and task_of(r) is not None]
    explicit = [r for r in usable if is_explicit(r)]
    by_task: dict[str, list[dict]] = {}
    for r in explicit:
        by_task.setdefault(task_of(r), []).append(r)
    pairs: dict[str, list[tuple[dict, dict, dict]]] = {k: [] for k in CHECKS}
    for row in rng.sample(explicit, len(explicit)):
        others = [d for d in explicit if task_of(d) != task_of(row)]
        donor = rng.choice(others)
        pairs["a"].append((row, row, with_instructions(row, lead_instructions(donor))))
    for row in rng.sample(usable, len(usable)):
        same = [d for d in by_task.get(task_of(row), []) if d is not row]
        if not same:
            continue
        good = with_instructions(row, lead_instructions(rng.choice(same)))
        vague = with_instructions(row, rng.choice(VAGUE) + "\n")
        pairs["b"].append((row, good, vague))
        span = quoting(row)
        if span is not None:
            # An honest Mode A request names the plan's methods too (METHOD_UNEXPECTED would
            # otherwise reject it); the quoting one is the same request with the quote added.
            honest = with_method_sentence(good, ASK_METHOD[0]) if unexpected(good) else good
            quote = with_instructions(row, lead_instructions(honest).rstrip()
                                      + " Your answer should read: " + span + "\n")
            pairs["d"].append((row, honest, quote))
    for row in rng.sample(usable, len(usable)):
        others = [d for d in usable if task_of(d) != task_of(row)]
        foreign = with_opening(row, rng.choice(others))
        if foreign is not None:
            pairs["c"].append((row, row, foreign))
    planned = [r for r in usable if turn_views(r)[0].delivered.major_methods]
    for row in rng.sample(planned, len(planned)):
        # The row's own request, then requests of other rows of its task, wherever they
        # leave a method of the plan unexpected.
        donors = [row] + rng.sample([d for d in by_task.get(task_of(row), []) if d is not row],
                                    min(2, len(by_task.get(task_of(row), [])) - (row in
                                        by_task.get(task_of(row), []))))
        for donor in donors:
            bare = row if donor is row else with_instructions(row, lead_instructions(donor))
            if unexpected(bare):
                pairs["e"].append((row, with_method_sentence(bare, rng.choice(ASK_METHOD)), bare))
        words = _joined(method_words(turn_views(row)[0].delivered))
        fitting = with_preamble(row, rng.choice(TIE_METHOD).format(methods=words))
        generic = with_preamble(row, rng.choice(GENERIC))
        if fitting is not None and generic is not None:
            pairs["f"].append((row, fitting, generic))
        for echoed in echo_variants(row):
            pairs["g"].append((row, row, echoed))
    for key in ("e", "g"):  # interleave the kinds, so that a cut at n keeps each of them
        rng.shuffle(pairs[key])
    return {k: v[:n] for k, v in pairs.items()}


# --- scoring ---------------------------------------------------------------------------------------

def flip_verdict(row: dict) -> dict | None:
    new = copy.deepcopy(row)
    flipped = False
    for m in new["messages"]:
        if m["role"] == "assistant" and m["content"] and len(m["content"]) < 300:
            swapped = re.sub(r"^(Yes|No)\b", lambda x: "No" if x.group(1) == "Yes" else "Yes",
                             m["content"])
            flipped |= swapped != m["content"]
            m["content"] = swapped
    return new if flipped else None


def run_checks(scorer: MutualPredictability, pairs: dict, progress: tqdm) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for check, triples in pairs.items():
        scored, raw, detail = [], [], []
        for original, higher, lower in triples:
            if check == "d":
                hi = score_aligned(original, higher, "A", scorer)
                lo = score_aligned(original, lower, "A", scorer)
                scored.append((hi.score, lo.score))
                raw.append((scorer.score(higher).score, scorer.score(lower).score))
            elif check == "g":  # the original as it stands, the echo as a Mode B rewrite
                lo = score_aligned(original, lower, "B", scorer)
                scored.append((scorer.score(higher).score, lo.score))
                raw.append((scorer.score(higher).score, scorer.score(lower).score))
            else:
                scored.append((scorer.score(higher).score, scorer.score(lower).score))
            detail.append({"id": str(original.get("source_id", original.get("example_id"))),
                           "higher": round(scored[-1][0], 4), "lower": round(scored[-1][1], 4)})
            progress.update(1)
        out[check] = summarise(scored)
        out[check]["pairs"] = detail
        if raw:
            out[check]["ungated"] = summarise(raw)
    return out


def summarise(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    wins = bootstrap(pairs, win_rate)
    area = bootstrap(pairs, paired_auc)
    return {"n": len(pairs), "win_rate": wins.as_dict(3), "auc": area.as_dict(3),
            "mean_higher": round(sum(a for a, _ in pairs) / len(pairs), 4),
            "mean_lower": round(sum(b for _, b in pairs) / len(pairs), 4)}


class CreditJudge(JudgeComparison):
    """A variant of the judge formula, measured here: a reading earns full credit for what the
    response delivers and half for what its reasoning produces on the way (so a request that
    names the method too is not penalised), and two readings agree by their overlap
    (sum of minima) rather than by the probability that two draws coincide."""

    def forward_value(self, p_request, task, what, p_method=None):
        return _credit(p_request, task, what)

    def backward_value(self, p_response, p_request):
        return sum(min(p, p_request.get(k, 0.0)) for k, p in p_response.items())

    def leads_value(self, p_thinking, task, what):
        return _credit(p_thinking, task, what)

    def follows_value(self, p_thinking, p_request):
        return self.backward_value(p_thinking, p_request)


def _credit(p: dict[str, float], task: str, what) -> float:
    full = what.deliverables | {task}
    return sum(q * (1.0 if k in full else 0.5 if k in what.everything else 0.0)
               for k, q in p.items())


# Judge variants: (formula, calibrated). All share one reading cache, so the readings are paid
# for once; "judge" is the product's default.
VARIANTS = {
    "judge": (JudgeComparison, True),
    "judge-uncalibrated": (JudgeComparison, False),
    "hybrid": (HybridComparison, True),
    "hybrid-uncalibrated": (HybridComparison, False),
    "judge-credit": (CreditJudge, True),
    "judge-credit-uncalibrated": (CreditJudge, False),
}


KEEP_ALL = 1 << 30  # readings kept in memory: every one of a run


def make_scorer(name: str, lm, shared: Judge | None) -> MutualPredictability:
    if name not in VARIANTS:
        return MutualPredictability(name)
    kind, calibrated = VARIANTS[name]
    judge = Judge(lm, calibrate=calibrated, cache_size=KEEP_ALL)
    if shared is not None:  # the same raw readings (calibration is applied after the cache)
        judge._cache, judge._lock = shared._cache, shared._lock
    return MutualPredictability(kind(judge))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=30, help="pairs per check (at most)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="judge model (default: the settings' judge)")
    parser.add_argument("--settings", default=None, help="model settings YAML")
    parser.add_argument("--api-base", default=None,
                        help="use an already running server for the judge model")
    names = [*VARIANTS, *(c for c in COMPARISONS if c not in VARIANTS)]
    parser.add_argument("--comparisons", nargs="+", default=names, choices=names)
    parser.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS),
                        help="which checks to run (default: all)")
    parser.add_argument("--repeat", type=int, default=6,
                        help="conversations scored twice for repeatability")
    parser.add_argument("--readings", default=None,
                        help="JSON file of the judge's raw readings: loaded if it exists, saved "
                             "at the end (readings at temperature 0 are deterministic, so a "
                             "second run of other variants costs no LM call)")
    args = parser.parse_args(argv)

    rows = sample_rows()
    real = read_jsonl(REAL_ROWS) if REAL_ROWS.exists() else []
    pairs = {k: v for k, v in build_pairs(real + rows, args.pairs, args.seed).items()
             if k in args.checks}
    print(f"rows: {len(rows)} sample + {len(real)} real; pairs: "
          + ", ".join(f"({k}) {len(v)}" for k, v in pairs.items()), file=sys.stderr)

    settings = load_settings(args.settings)
    needs_lm = any(c in VARIANTS for c in args.comparisons)
    name = settings.judge(args.model) if needs_lm else args.model or settings.default_judge
    results: dict[str, Any] = {"judge_model": name, "pairs": {k: len(v) for k, v in pairs.items()},
                               "real_rows": len(real), "comparisons": {}}
    with _judge_lm(settings, name, args.api_base, needs_lm) as lm:
        shared = Judge(lm, cache_size=KEEP_ALL) if needs_lm else None
        if shared is not None and args.readings and Path(args.readings).exists():
            for key, probs, mass in json.loads(Path(args.readings).read_text("utf-8")):
                shared._cache[tuple(key)] = (tuple(probs), mass)
        for comparison in args.comparisons:
            scorer = make_scorer(comparison, lm, shared)
            start, first = time.monotonic(), len(lm.history) if lm is not None else 0
            total = sum(len(v) for v in pairs.values())
            with tqdm(total=total, desc=comparison, file=sys.stderr) as progress:
                figures = run_checks(scorer, pairs, progress)
            seconds = time.monotonic() - start
            usage = usage_from_history(lm, first) if lm is not None and scorer.calls_per_turn \
                else {"calls": 0, "input_tokens": 0, "output_tokens": 0}
            conversations = len({id(x) for v in pairs.values() for t in v for x in t[1:]})
            figures["cost"] = {"seconds": round(seconds, 1), **usage,
                               "conversations": conversations,
                               "seconds_per_conversation": round(seconds / conversations, 2),
                               "calls_per_conversation": round(usage["calls"] / conversations, 2)}
            figures["repeatability"] = repeatability(comparison, lm, rows, args)
            figures["yes_no"] = yes_no(scorer, real + rows)
            results["comparisons"][comparison] = figures
        if shared is not None and args.readings:
            Path(args.readings).write_text(json.dumps(
                [[list(k), list(v[0]), v[1]] for k, v in shared._cache.items()]), "utf-8")

    header = ["comparison", "check", "n", "win rate [95% CI]", "AUC [95% CI]", "higher", "lower"]
    lines: list[list[Any]] = []
    for comparison, figures in results["comparisons"].items():
        for check in pairs:
            f = figures[check]
            lines.append([comparison, f"({check}) {CHECKS[check]}", f["n"], _ci(f["win_rate"]),
                          _ci(f["auc"]), f["mean_higher"], f["mean_lower"]])
            if "ungated" in f:
                u = f["ungated"]
                lines.append([comparison, f"({check}) without the quality gate", u["n"],
                              _ci(u["win_rate"]), _ci(u["auc"]), u["mean_higher"],
                              u["mean_lower"]])
    print(table([dict(zip(header, line)) for line in lines], header))
    for comparison, figures in results["comparisons"].items():
        print(f"{comparison}: repeat max |Δ| {figures['repeatability']['max_abs_diff']}, "
              f"yes/no flip max |Δ| {figures['yes_no']['max_abs_diff']} "
              f"({figures['yes_no']['n']} rows), cost {figures['cost']}")
    write_results("metric_validity", results)
    return 0


def _ci(d: dict) -> str:
    return f"{d['mean']:.2f} [{d['low']:.2f}, {d['high']:.2f}]"


def repeatability(comparison: str, lm, rows: list[dict], args) -> dict[str, Any]:
    """The same conversations scored twice, each time by a fresh judge with an empty cache."""
    chosen = rows[: args.repeat]
    first, second = make_scorer(comparison, lm, None), make_scorer(comparison, lm, None)
    diffs = [abs(first.score(r).score - second.score(r).score) for r in chosen]
    return {"n": len(chosen), "max_abs_diff": round(max(diffs), 5) if diffs else None}


def yes_no(scorer: MutualPredictability, rows: list[dict]) -> dict[str, Any]:
    diffs = []
    for row in rows:
        flipped = flip_verdict(row)
        if flipped is not None:
            diffs.append(abs(scorer.score(row).score - scorer.score(flipped).score))
    return {"n": len(diffs), "max_abs_diff": round(max(diffs), 5) if diffs else None}


class _judge_lm:
    """The judge's LM: from a running server (``--api-base``) or started from the settings."""

    def __init__(self, settings, name: str, api_base: str | None, needed: bool):
        self.settings, self.name, self.api_base, self.needed = settings, name, api_base, needed
        self._models = None

    def __enter__(self) -> dspy.BaseLM | None:
        if not self.needed:
            return None
        if self.api_base:
            from argalign.models.lm import build_lm

            return build_lm(self.settings.get(self.name), self.api_base)
        self._models = open_models(self.settings, [self.name])
        return self._models.__enter__()[self.name].lm

    def __exit__(self, *exc: object) -> None:
        if self._models is not None:
            self._models.__exit__(*exc)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
