"""Calibrate the metric against an oracle: pairs labelled "which of the two is better aligned".

A judge's score is a proxy. An oracle file holds pairs of versions of a conversation, each
labelled by a person or a stronger judge (``better``: ``"a"`` or ``"b"``). Scoring both sides
gives, per pair, the score difference d = s_a - s_b. Two things follow:

- **agreement**: the share of pairs in which the higher-scored side is the labelled one (ties
  count half), with its bootstrap interval;
- **a calibration** P(a is better) = sigmoid(k * d), fitted by maximum likelihood with a weak
  ridge (one slope, no intercept: which side is called ``a`` is arbitrary). It turns a difference of scores,
  such as aligned minus original, into the probability that the oracle would prefer the
  first, and its log loss against the labels says how far that probability can be trusted
  (chance is ln 2 = 0.693).

Oracle lines: ``{"id": str, "a": row, "b": row, "better": "a" | "b", "by": str, "why": str}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.errors import ConfigError
from argalign.stats import Estimate, bootstrap, win_rate

MAX_SLOPE = 200.0
PRIOR_SD = 20.0


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
    for lineno, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not JSON ({e.msg})") from e
        if not isinstance(record, dict) or record.get("better") not in ("a", "b") or not all(
                isinstance(record.get(side), dict) for side in ("a", "b")):
            raise ConfigError(f"{where}: an oracle line needs rows 'a' and 'b' and 'better': "
                              f"'a' or 'b'")
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
class Calibration:
    slope: float
    agreement: Estimate
    log_loss: float
    pairs: int

    def p_better(self, difference: float) -> float:
        """P(the oracle prefers the first of two versions) for their score difference."""
        return _sigmoid(self.slope * difference)

    def as_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "agreement": self.agreement.as_dict(3),
                "slope": round(self.slope, 3), "log_loss": round(self.log_loss, 4),
                "log_loss_chance": round(math.log(2), 4)}


def calibrate(pairs: Sequence[OraclePair], score: Callable[[dict[str, Any]], float]
              ) -> tuple[Calibration, list[dict[str, Any]]]:
    """Score both sides of every pair; the calibration and one line per pair."""
    diffs, labels, ordered, lines = [], [], [], []
    for pair in pairs:
        s_a, s_b = score(pair.a), score(pair.b)
        diffs.append(s_a - s_b)
        labels.append(1 if pair.better == "a" else 0)
        better, worse = (s_a, s_b) if pair.better == "a" else (s_b, s_a)
        ordered.append((better, worse))
        lines.append({"id": pair.id, "score_a": round(s_a, 4), "score_b": round(s_b, 4),
                      "better": pair.better, "by": pair.by, "agrees": better > worse,
                      "tie": better == worse})
    slope = fit_slope(diffs, labels)
    result = Calibration(slope, bootstrap(ordered, win_rate), log_loss(slope, diffs, labels),
                         len(pairs))
    for line, d in zip(lines, diffs):
        line["p_a_better"] = round(result.p_better(d), 4)
    return result, lines
