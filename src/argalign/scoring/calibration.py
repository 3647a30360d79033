"""Calibrate the metric against an oracle: pairs labelled "which of the two is better aligned".

A judge's score is a proxy. An oracle file holds pairs of versions of a conversation, each
labelled by a person or a stronger judge (``better``: ``"a"`` or ``"b"``, or ``"same"`` when
neither is better). Scoring both sides gives, per pair, the score difference d = s_a - s_b.
On the better/worse pairs (``a`` or ``b``) two things follow:

- **agreement**: the share of pairs in which the higher-scored side is the labelled one (ties
  count half), with its bootstrap interval;
- **a calibration** P(a is better) = sigmoid(k * d), fitted by maximum likelihood with a weak
  ridge (one slope, no intercept: which side is called ``a`` is arbitrary). It turns a difference of scores,
  such as aligned minus original, into the probability that the oracle would prefer the
  first, and its log loss against the labels says how far that probability can be trusted
  (chance is ln 2 = 0.693).

On the ``same`` pairs the metric should not tell the sides apart: :class:`SameStats` holds the
mean of d and of |d| (both near 0 for a metric that reads them alike), and the share of pairs
whose |d| is below the metric's repeatability (a threshold, :data:`REPEATABILITY`).

Oracle lines: ``{"id": str, "a": row, "b": row, "better": "a" | "b" | "same", "by": str,
"why": str}``; the review report's "Download labels" writes this shape.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError
from argalign.core.stats import Estimate, bootstrap, mean_ci, win_rate

MAX_SLOPE = 200.0
PRIOR_SD = 20.0
LABELS = ("a", "b", "same")
REPEATABILITY = 0.01  # a |difference| below this reads as "the metric scores them the same"


@dataclass(frozen=True)
class OraclePair:
    id: str
    a: dict[str, Any]
    b: dict[str, Any]
    better: str
    by: str = ""
    why: str = ""


def read_oracle(path: str | Path) -> list[OraclePair]:
    """Read an oracle file; a bad line is an error that names it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"oracle file not found: {path}")
    pairs = []
    # Lines end at "\n" only: a browser's JSON.stringify leaves U+2028 in strings unescaped,
    # and str.splitlines() would cut a line there.
    for lineno, line in enumerate(path.read_text("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not JSON ({e.msg})") from e
        if not isinstance(record, dict) or record.get("better") not in LABELS or not all(
                isinstance(record.get(side), dict) for side in ("a", "b")):
            found = record.get("better") if isinstance(record, dict) else None
            raise ConfigError(f"{where}: an oracle line needs rows 'a' and 'b' and 'better': "
                              f"'a', 'b' or 'same' (found {found!r})")
        pairs.append(OraclePair(str(record.get("id", lineno)), record["a"], record["b"],
                                record["better"], str(record.get("by", "")),
                                str(record.get("why", ""))))
    if not pairs:
        raise ConfigError(f"{path}: no oracle pairs")
    return pairs


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def log_loss(slope: float, diffs: Sequence[float], labels: Sequence[int]) -> float:
    """Mean negative log-likelihood of ``labels`` (1: a is better) under sigmoid(slope * d)."""
    total = 0.0
    for d, y in zip(diffs, labels):
        p = min(max(_sigmoid(slope * d), 1e-12), 1 - 1e-12)
        total -= math.log(p) if y else math.log(1 - p)
    return total / len(diffs)


def fit_slope(diffs: Sequence[float], labels: Sequence[int]) -> float:
    """The slope in [0, MAX_SLOPE] that minimises the log loss plus a weak ridge.

    The ridge is a normal prior on the slope (standard deviation :data:`PRIOR_SD`): when the
    labels are perfectly separated by the scores, the likelihood alone grows without bound and
    every positive difference would read as certainty. The objective is convex.
    """
    n = len(diffs)

    def objective(k: float) -> float:
        return log_loss(k, diffs, labels) + k * k / (2 * n * PRIOR_SD ** 2)

    low, high = 0.0, MAX_SLOPE
    for _ in range(200):  # ternary search on a convex function
        m1, m2 = low + (high - low) / 3, high - (high - low) / 3
        if objective(m1) <= objective(m2):
            high = m2
        else:
            low = m1
    return (low + high) / 2


@dataclass(frozen=True)
class SameStats:
    """How the metric scores the pairs labelled ``same``: a metric that reads them alike gives
    differences near 0."""

    difference: Estimate  # mean of s_a - s_b: a bias towards one side
    abs_difference: Estimate  # mean of |s_a - s_b|: how far apart it puts them
    within: Estimate  # share of pairs with |s_a - s_b| below the threshold
    threshold: float

    @classmethod
    def of(cls, diffs: Sequence[float], threshold: float = REPEATABILITY) -> SameStats:
        return cls(mean_ci(diffs), mean_ci([abs(d) for d in diffs]),
                   mean_ci([1.0 if abs(d) < threshold else 0.0 for d in diffs]), threshold)

    def as_dict(self) -> dict[str, Any]:
        return {"pairs": self.difference.n, "difference": self.difference.as_dict(),
                "abs_difference": self.abs_difference.as_dict(),
                "within_repeatability": self.within.as_dict(3), "repeatability": self.threshold}


@dataclass(frozen=True)
class Calibration:
    """The comparison against the labels: fitted on the better/worse pairs (``slope``,
    ``agreement`` and ``log_loss`` are None when there are none), and how it scores the
    ``same`` pairs (None when there are none)."""

    slope: float | None
    agreement: Estimate | None
    log_loss: float | None
    pairs: int  # labelled a or b
    same: SameStats | None = None

    @property
    def fitted(self) -> bool:
        return self.slope is not None

    def p_better(self, difference: float) -> float:
        """P(the oracle prefers the first of two versions) for their score difference."""
        if self.slope is None:
            raise ValueError("no better/worse pairs: nothing was fitted")
        return _sigmoid(self.slope * difference)

    def as_dict(self) -> dict[str, Any]:
        better_worse = None
        if self.fitted:
            better_worse = {"pairs": self.pairs, "agreement": self.agreement.as_dict(3),
                            "slope": round(self.slope, 3), "log_loss": round(self.log_loss, 4),
                            "log_loss_chance": round(math.log(2), 4)}
        return {"pairs": self.pairs + (self.same.difference.n if self.same else 0),
                "better_worse": better_worse,
                "same": self.same.as_dict() if self.same else None}

    def describe(self) -> str:
        """One line for a person: agreement on the better/worse pairs, scores of the same ones."""
        parts = []
        if self.fitted:
            parts.append(f"agreement on the {_pairs(self.pairs, 'better/worse')} {self.agreement} "
                         f"(log loss {self.log_loss:.3f}, chance 0.693)")
        if self.same:
            s = self.same
            parts.append(f"on the {_pairs(s.difference.n, 'same')}: mean |difference| "
                         f"{s.abs_difference}, mean difference {s.difference}, "
                         f"{s.within.value:.0%} below {s.threshold:g}")
        return "; ".join(parts)


def _pairs(n: int, kind: str) -> str:
    return f"{n} {kind} pair{'' if n == 1 else 's'}"


def calibrate(pairs: Sequence[OraclePair], score: Callable[[dict[str, Any]], float], *,
              repeatability: float = REPEATABILITY
              ) -> tuple[Calibration, list[dict[str, Any]]]:
    """Score both sides of every pair; the calibration and one line per pair.

    The better/worse pairs give the agreement and the fitted slope; the ``same`` pairs give
    :class:`SameStats` (``repeatability`` is its threshold on |s_a - s_b|).
    """
    diffs, labels, ordered, lines, same, every = [], [], [], [], [], []
    for pair in pairs:
        s_a, s_b = score(pair.a), score(pair.b)
        every.append(s_a - s_b)
        line = {"id": pair.id, "score_a": round(s_a, 4), "score_b": round(s_b, 4),
                "better": pair.better, "by": pair.by}
        lines.append(line)
        if pair.better == "same":
            same.append(s_a - s_b)
            line["within_repeatability"] = abs(s_a - s_b) < repeatability
            continue
        diffs.append(s_a - s_b)
        labels.append(1 if pair.better == "a" else 0)
        better, worse = (s_a, s_b) if pair.better == "a" else (s_b, s_a)
        ordered.append((better, worse))
        line.update(agrees=better > worse, tie=better == worse)
    slope = fit_slope(diffs, labels) if diffs else None
    result = Calibration(
        slope, bootstrap(ordered, win_rate) if ordered else None,
        log_loss(slope, diffs, labels) if diffs else None, len(diffs),
        SameStats.of(same, repeatability) if same else None)
    if result.fitted:
        for line, d in zip(lines, every):
            line["p_a_better"] = round(result.p_better(d), 4)
    return result, lines
