"""Before/after tables: what scoring a run says, per config, mode and model, with intervals.

Input: one entry per example (its config, mode, model, outcome and the ``scores`` a result
record carries: ``{"baseline": components, "aligned": components}``). Output, per group (all
rows, and each config, mode and model): the count of every outcome and, over the rows that
ended ``aligned`` and were scored, the mean metric of the original (*before*) and of the
aligned row (*after*) and their difference (*after - before*), each with a 95% bootstrap
interval over conversations (:mod:`argalign.core.stats`).

Only ``aligned`` rows enter the means (:func:`counted`): an unchanged, failed, rejected or
not_improved row has no rewrite kept to compare (the gated metric scores it 0), and mixing
those zeros in would measure the failure rate, not the rewrites. Their counts stand beside the
means instead. This is the one definition of a mean score before/after and of the gain
(after - before) wherever argalign reports one: the run summary, its MLflow metrics, the
scorer that ``mlflow.genai.evaluate`` aggregates (:mod:`argalign.tracking.genai`), the dataset
card and the HTML report all follow it (:func:`counted`, :func:`compare`). Two other figures
are different things with their own names: a program's *score*
(:func:`argalign.programs.evaluation.summarize`,
what an optimizer maximises, every row counted and a row the gate turns away scoring 0) and
the benchmark's *gain over the original* (``bench/optimize.py``, 0 where the original stays,
so that two programs are compared on the same rows).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from argalign.core.records import OUTCOMES, Outcome
from argalign.core.results import Table
from argalign.core.stats import Estimate, difference_ci, mean_ci

KINDS = ("config", "mode", "model")
# The metric and its parts; the parts are estimated for all rows only (an interval costs time).
PARTS = ("score", "forward", "backward", "coherence")
ALL = "all"


def counted(outcome: Any) -> bool:
    """Whether a row enters the means before/after and the gain: it ended ``aligned``."""
    return str(outcome) == Outcome.ALIGNED.value


def pair(scores: Any, part: str = "score") -> tuple[float, float] | None:
    """``(before, after)`` of one part from a record's ``scores``, or None when either is absent."""
    if not isinstance(scores, Mapping):
        return None
    values = []
    for side in ("baseline", Outcome.ALIGNED.value):
        components = scores.get(side)
        value = components.get(part) if isinstance(components, Mapping) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        values.append(float(value))
    return values[0], values[1]


@dataclass
class Comparison:
    """Before, after and their difference over the same rows."""

    before: Estimate
    after: Estimate
    difference: Estimate

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {"before": self.before.as_dict(), "after": self.after.as_dict(),
                "difference": self.difference.as_dict()}


def compare(pairs: Sequence[tuple[float, float]]) -> Comparison | None:
    """Means before and after and the mean gain (after - before), each with its interval, over
    the ``(before, after)`` pairs of the rows that count (:func:`counted`); None without any.

    The pairs are sorted first: the bootstrap draws by position, so the intervals depend only
    on the scores, not on the order the rows were written in (a run's workers finish in any
    order)."""
    if not pairs:
        return None
    pairs = sorted(pairs)
    return Comparison(mean_ci([b for b, _ in pairs]), mean_ci([a for _, a in pairs]),
                      difference_ci(pairs))


def counted_pairs(entries: Iterable[tuple[Any, Any]], part: str = "score"
                  ) -> list[tuple[float, float]]:
    """``(before, after)`` of each ``(outcome, scores)`` entry that counts and has both scores."""
    return [found for outcome, scores in entries
            if counted(outcome) and (found := pair(scores, part)) is not None]


@dataclass
class Group:
    """One group's outcome counts and its scored aligned rows."""

    outcomes: Counter = field(default_factory=Counter)
    before: dict[str, array] = field(default_factory=dict)
    after: dict[str, array] = field(default_factory=dict)

    def add(self, outcome: str, scores: Any, parts: tuple[str, ...]) -> None:
        self.outcomes[outcome] += 1
        if not counted(outcome):
            return
        for part in parts:
            found = pair(scores, part)
            if found is not None:
                self.before.setdefault(part, array("d")).append(found[0])
                self.after.setdefault(part, array("d")).append(found[1])

    @property
    def scored(self) -> int:
        return len(self.before.get("score", ()))

    def compare(self, part: str = "score") -> Comparison | None:
        return compare(list(zip(self.before.get(part, ()), self.after.get(part, ()))))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcomes": {o: self.outcomes[o] for o in _outcome_names(self.outcomes)},
                               "scored": self.scored}
        for part in self.before:
            comparison = self.compare(part)
            if comparison is not None:
                out[part] = comparison.as_dict()
        return out


def _outcome_names(counts: Counter) -> list[str]:
    return [*OUTCOMES, *sorted(set(counts) - set(OUTCOMES))]


class Scoreboard:
    """Collects examples; :meth:`as_dict` gives the table (see the module docstring)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Group]] = {ALL: {ALL: Group()},
                                                   **{kind: {} for kind in KINDS}}

    def add(self, *, config: str | None, mode: str | None, model: str | None, outcome: str,
            scores: Any = None) -> None:
        self.groups[ALL][ALL].add(outcome, scores, PARTS)
        for kind, name in (("config", config), ("mode", mode), ("model", model)):
            if name:  # a missing row (no result) has no mode or model
                self.groups[kind].setdefault(str(name), Group()).add(outcome, scores, ("score",))

    def add_record(self, record: Mapping[str, Any], *, config: str | None = None) -> None:
        """Add a result record (or a dict with its fields); ``config`` overrides the record's."""
        self.add(config=config or record.get("config"), mode=record.get("mode"),
                 model=record.get("model"), outcome=str(record.get("outcome")),
                 scores=record.get("scores"))

    @property
    def scored(self) -> int:
        return self.groups[ALL][ALL].scored

    def as_dict(self) -> dict[str, Any]:
        """``{"over": "aligned", "all": group, "by_config": {...}, "by_mode": ..., "by_model": ...}``."""
        return {"over": Outcome.ALIGNED.value, ALL: self.groups[ALL][ALL].as_dict(),
                **{f"by_{kind}": {name: group.as_dict()
                                  for name, group in sorted(self.groups[kind].items())}
                   for kind in KINDS}}

    def rows(self) -> list[TableRow]:
        return rows(self.as_dict())

    def pairs(self, kind: str) -> dict[str, tuple[list[float], list[float]]]:
        """``{name: (scores before, scores after)}`` of the scored aligned rows per mode or model
        (what the plots draw)."""
        return {name: (list(group.before.get("score", ())), list(group.after.get("score", ())))
                for name, group in sorted(self.groups[kind].items()) if group.scored}


@dataclass(frozen=True)
class TableRow:
    """A group as a table shows it: counts and formatted estimates ("–" when nothing scored)."""

    kind: str
    name: str
    outcomes: dict[str, int]
    scored: int
    before: str
    after: str
    difference: str

    @classmethod
    def of(cls, kind: str, name: str, group: Mapping[str, Any]) -> TableRow:
        """From a group of :meth:`Scoreboard.as_dict` (or of a summary.json that holds one)."""
        score = group.get("score")
        cells = (["–"] * 3 if not score else
                 [interval(stored_estimate(score["before"])), interval(stored_estimate(score["after"])),
                  interval(stored_estimate(score["difference"]), signed=True)])
        return cls(kind, name, dict(group.get("outcomes") or {}), int(group.get("scored") or 0),
                   *cells)


def rows(table: Mapping[str, Any]) -> list[TableRow]:
    """One display row per group of a stored table: all rows first, then configs, modes, models."""
    out = [TableRow.of(ALL, ALL, table.get(ALL) or {})]
    for kind in KINDS:
        out += [TableRow.of(kind, name, group)
                for name, group in sorted((table.get(f"by_{kind}") or {}).items())]
    return out


def stored_estimate(stored: Mapping[str, Any]) -> Estimate:
    """An :class:`~argalign.core.stats.Estimate` back from its ``as_dict()``."""
    return Estimate(stored["mean"], stored["low"], stored["high"], stored["n"])


def interval(estimate: Estimate, *, signed: bool = False, digits: int = 3) -> str:
    """``0.412 [0.356, 0.470]``; with ``signed``, ``+0.050 [+0.012, +0.090]``."""
    sign = "+" if signed else ""
    return (f"{estimate.value:{sign}.{digits}f} [{estimate.low:{sign}.{digits}f}, "
            f"{estimate.high:{sign}.{digits}f}]")


def score_table(table: Mapping[str, Any]) -> Table:
    """The table for a terminal (:func:`argalign.core.results.text_table`): one row per group,
    counts and the three estimates."""
    groups = rows(table)
    outcomes = [o for o in OUTCOMES if any(r.outcomes.get(o) for r in groups)]
    header = ["group", *outcomes, "scored", "before", "after", "after - before"]
    return Table(header, [[r.name if r.kind == ALL else f"{r.kind} {r.name}",
                           *(r.outcomes.get(o, 0) for o in outcomes), r.scored, r.before,
                           r.after, r.difference] for r in groups])
