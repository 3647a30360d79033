"""A run's summary, read back from its result files: counts, tokens, scores, failures.

Input: the canonical result files of a run. Output: ``summary.json`` (counts per outcome,
per subset and per group, tokens, and when scoring was on the before/after table of
:mod:`argalign.scoring.scoreboard` (means over the aligned rows per config, mode and model, with
intervals), and what the acceptance gate turned away and cost when it was on) and
``failures.jsonl`` (every failed, rejected or not_improved example with its codes and reason,
without rows), both written atomically; :func:`metrics_of` flattens a summary for MLflow.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from argalign.core.datadir import RunStore, Subset
from argalign.core.jsonl import write_json_atomic, write_jsonl_atomic
from argalign.core.records import OUTCOMES, Outcome, ResultRecord
from argalign.core.results import StageResult
from argalign.scoring.scoreboard import ALL, KINDS, PARTS, Scoreboard
from argalign.stages.run.assign import safe_name
from argalign.stages.run.store import iter_results


def _counts(counter: Counter) -> dict[str, int]:
    return {outcome: counter[outcome] for outcome in OUTCOMES}


@dataclass
class Session:
    """What this batch did (a resumed run's earlier batches are not in it)."""

    outcomes: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    stopped: str | None = None
    startup_s: float | None = None  # worker processes: until all were ready (in elapsed_s)
    workers: int = 1

    @property
    def conversations(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        """The ``session`` of ``summary.json``: counts, time, throughput and workers."""
        rate = round(60 * self.conversations / self.elapsed_s, 3) if self.elapsed_s else 0.0
        return {"conversations": self.conversations, "outcomes": dict(self.outcomes),
                "elapsed_s": round(self.elapsed_s, 3), "conversations_per_minute": rate,
                "workers": self.workers,
                **({"workers_startup_s": self.startup_s} if self.startup_s is not None else {})}


@dataclass(frozen=True)
class RunSummary(StageResult):
    """What a run holds, read back from its result files (``summary.json``).

    ``outcomes``, ``subsets`` (``{"total", "done", <outcome>: n}`` per ``config/split``) and
    ``groups`` (per ``<mode>-<model>`` file) count the results of the raw ids; ``extra`` the
    results of ids no longer raw. ``acceptance``, ``scoring`` and ``scores`` are there only when
    the gate, the judge or the scores were; ``session`` and ``stopped`` only once the batch that
    wrote them is attached (:meth:`with_session`).
    """

    run: str
    total: int
    done: int
    extra: int
    outcomes: dict[str, int]
    subsets: dict[str, dict[str, int]]
    groups: dict[str, dict[str, int]]
    tokens: dict[str, int]
    latency_s_mean: float
    acceptance: dict[str, Any] | None = None
    scoring: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    session: Session | None = None

    @property
    def stopped(self) -> str | None:
        """Why the batch stopped before every example was done (None: it was not stopped)."""
        return self.session.stopped if self.session is not None else None

    def with_session(self, session: Session) -> RunSummary:
        return dataclasses.replace(self, session=session)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.run, "total": self.total, "done": self.done, "extra": self.extra,
            "outcomes": self.outcomes, "subsets": self.subsets, "groups": self.groups,
            "tokens": self.tokens, "latency_s_mean": self.latency_s_mean}
        out.update({key: value for key, value in (("acceptance", self.acceptance),
                                                   ("scoring", self.scoring),
                                                   ("scores", self.scores)) if value is not None})
        if self.session is not None:
            out.update(session=self.session.as_dict(), stopped=self.session.stopped)
        return out


class _Acceptance:
    """What the acceptance gate cost and how many examples it turned away."""

    def __init__(self) -> None:
        self.rows = self.retried = self.accepted_after_retry = 0
        self.outcomes: Counter = Counter()
        self.extra: Counter = Counter()
        self.judge: Counter = Counter()

    def add(self, record: ResultRecord) -> None:
        gate = record.acceptance or {}
        self.rows += 1
        self.outcomes[record.outcome] += 1
        attempts = int(gate.get("attempts") or 0)
        self.retried += attempts > 1
        self.accepted_after_retry += attempts > 1 and bool(gate.get("accepted"))
        for part, counter in (("extra", self.extra), ("judge", self.judge)):
            counter.update({k: int(v) for k, v in (gate.get(part) or {}).items()})

    def as_dict(self, tokens: Counter) -> dict[str, Any]:
        """Counts, the share that ended not_improved, and the extra cost against the whole run's."""
        def share(part: int, whole: int) -> float:
            return round(part / whole, 4) if whole else 0.0

        not_improved = self.outcomes[Outcome.NOT_IMPROVED]
        return {
            "rows": self.rows, Outcome.NOT_IMPROVED.value: not_improved,
            "not_improved_share": share(not_improved, self.rows),
            "retried": self.retried, "accepted_after_retry": self.accepted_after_retry,
            "extra_task": {"calls": self.extra["calls"], "input": self.extra["input_tokens"],
                           "output": self.extra["output_tokens"]},
            "judge": {"calls": self.judge["calls"], "input": self.judge["input_tokens"],
                      "output": self.judge["output_tokens"]},
            # Task-model calls and output tokens spent on fresh samples, as a share of all.
            "extra_task_call_share": share(self.extra["calls"], tokens["calls"]),
            "extra_output_token_share": share(self.extra["output_tokens"], tokens["output_tokens"]),
        }


def summarize(store: RunStore, subsets: Iterable[Subset], ids: dict[str, set[str]],
              acceptance: dict[str, Any] | None = None
              ) -> tuple[RunSummary, list[dict[str, Any]]]:
    """The summary of the run's results for the raw ids (``{subset key: ids}``), and failures.

    Results for ids no longer in the raw subset (a forced resume on other data) are counted
    as ``extra`` only. ``acceptance`` (the gate's settings, ``{"retries", "margin"}``, when it
    is on) puts ``acceptance`` in the summary even before any example went through the gate.
    """
    outcomes: Counter = Counter()
    by_subset: dict[str, Counter] = {}
    by_group: dict[str, Counter] = defaultdict(Counter)
    tokens: Counter = Counter()
    scoring: Counter = Counter()  # the judge's calls, tokens and seconds (both rows of each example)
    latency = 0.0
    board = Scoreboard()
    failures: list[dict[str, Any]] = []
    gate = _Acceptance()
    extra = 0
    for subset in subsets:
        counter = by_subset.setdefault(subset.key, Counter())
        for path in store.result_files(subset):
            for _, _, line in iter_results(path):
                record = ResultRecord.from_dict(line)
                if record.id not in ids.get(subset.key, ()):
                    extra += 1
                    continue
                outcome = record.outcome
                outcomes[outcome] += 1
                counter[outcome] += 1
                by_group[path.stem][outcome] += 1
                for key in ("calls", "input_tokens", "output_tokens"):
                    tokens[key] += int(getattr(record, key) or 0)
                usage = record.scores.get("usage") if isinstance(record.scores, dict) else None
                if isinstance(usage, dict):
                    scoring["scored_examples"] += 1
                    for key in ("calls", "input_tokens", "output_tokens"):
                        scoring[key] += int(usage.get(key) or 0)
                    scoring["seconds"] += float(usage.get("seconds") or 0.0)
                latency += float(record.latency_s or 0.0)
                if outcome in (Outcome.FAILED, Outcome.REJECTED, Outcome.NOT_IMPROVED):
                    failures.append(record.failure_view())
                if record.acceptance is not None:
                    gate.add(record)
                # Means over aligned rows only: a not_improved rewrite was turned away.
                board.add(config=subset.config, mode=record.mode, model=record.model,
                          outcome=str(outcome), scores=record.scores)
    done = sum(outcomes.values())
    summary = RunSummary(
        run=store.name,
        total=sum(len(v) for v in ids.values()),
        done=done,
        extra=extra,
        outcomes=_counts(outcomes),
        subsets={key: {"total": len(ids.get(key, ())), "done": sum(c.values()), **_counts(c)}
                 for key, c in by_subset.items()},
        groups={name: _counts(c) for name, c in sorted(by_group.items())},
        tokens={"calls": tokens["calls"], "input": tokens["input_tokens"],
                "output": tokens["output_tokens"]},
        latency_s_mean=round(latency / done, 3) if done else 0.0,
        acceptance={**(acceptance or {}), **gate.as_dict(tokens)} if gate.rows or acceptance
        else None,
        scoring={"examples": scoring["scored_examples"], "calls": scoring["calls"],
                 "input": scoring["input_tokens"], "output": scoring["output_tokens"],
                 "seconds": round(scoring["seconds"], 3)} if scoring else None,
        scores=board.as_dict() if board.scored else None,
    )
    return summary, failures


def write_reports(store: RunStore, summary: RunSummary, failures: list[dict[str, Any]]) -> None:
    write_json_atomic(store.summary_path, summary.as_dict())
    write_jsonl_atomic(store.failures_path, failures)


def metrics_of(result: RunSummary) -> dict[str, float]:
    """Flat MLflow metrics: counts, tokens, throughput and mean scores."""
    summary = result.as_dict()
    metrics: dict[str, float] = {"examples": summary["total"], "done": summary["done"]}
    metrics.update({f"n_{outcome}": n for outcome, n in summary["outcomes"].items()})
    for key, value in summary["subsets"].items():
        config, split = key.split("/", 1)
        for outcome in OUTCOMES:
            metrics[f"n_{outcome}/{config}.{split}"] = value[outcome]
    metrics.update({"lm_calls": summary["tokens"]["calls"],
                    "input_tokens": summary["tokens"]["input"],
                    "output_tokens": summary["tokens"]["output"],
                    "latency_s_mean": summary["latency_s_mean"]})
    session = summary.get("session") or {}
    if session:
        metrics["session_conversations"] = session["conversations"]
        metrics["session_failed"] = session["outcomes"].get(Outcome.FAILED, 0)
        metrics["conversations_per_minute"] = session["conversations_per_minute"]
    gate = summary.get("acceptance")
    if gate:
        metrics.update({"acceptance_not_improved_share": gate["not_improved_share"],
                        "acceptance_retried": gate["retried"],
                        "acceptance_extra_task_calls": gate["extra_task"]["calls"],
                        "acceptance_extra_output_tokens": gate["extra_task"]["output"],
                        "acceptance_judge_calls": gate["judge"]["calls"]})
    if summary.get("scoring"):
        metrics.update({f"judge_{key}": summary["scoring"][key]
                        for key in ("calls", "input", "output", "seconds")})
    scores = summary.get("scores") or {}
    if scores:
        metrics.update(_group_metrics(scores.get(ALL) or {}, "", PARTS))
        for kind in KINDS:
            for name, group in (scores.get(f"by_{kind}") or {}).items():
                metrics.update(_group_metrics(group, f"/{kind}_{safe_name(name)}", ("score",)))
    return metrics


def _group_metrics(group: dict[str, Any], suffix: str, parts: tuple[str, ...]) -> dict[str, float]:
    """``score_before``, ``score_before_low``, ``score_before_high``, ... (after, difference
    likewise) and ``n_<outcome>``, each name ending in ``suffix`` (``/mode_A``)."""
    out: dict[str, float] = {}
    if suffix:
        out.update({f"n_{o}{suffix}": n for o, n in (group.get("outcomes") or {}).items()})
    out[f"n_scored{suffix}"] = group.get("scored", 0)
    for part in parts:
        for side, estimate in (group.get(part) or {}).items():
            out[f"{part}_{side}{suffix}"] = estimate["mean"]
            out[f"{part}_{side}_low{suffix}"] = estimate["low"]
            out[f"{part}_{side}_high{suffix}"] = estimate["high"]
    return out
