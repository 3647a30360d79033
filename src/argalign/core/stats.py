"""Means with bootstrap intervals, paired win rates and AUC: what every reported score carries.

A judge's score is a proxy measured on a few conversations; a mean without its interval
invites reading noise as an effect. Everything here resamples conversations (the unit that
varies), with a fixed seed, so a report is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

RESAMPLES = 2000
LEVEL = 0.95
# Above this many values a plain mean is resampled with numpy: the pure-Python loop takes
# ~6 s per interval at 10,000 conversations, and a run summary holds dozens. Smaller samples,
# and every other statistic (win rates, AUC), keep the pure-Python draws.
FAST_ABOVE = 200


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval over conversations."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        return {"mean": round(self.value, digits), "low": round(self.low, digits),
                "high": round(self.high, digits), "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def bootstrap(values: Sequence, statistic: Callable[[Sequence], float] = mean, *,
              resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> Estimate:
    """``statistic(values)`` and its percentile bootstrap interval (resampling ``values``).

    ``values`` may hold pairs or records: ``statistic`` receives a resampled list of them.
    Fewer than two values give a degenerate interval at the value itself.
    """
    values = list(values)
    if not values:
        raise ValueError("no values to estimate from")
    point = statistic(values)
    if len(values) < 2:
        return Estimate(point, point, point, len(values))
    n = len(values)
    if statistic is mean and n > FAST_ABOVE:
        return _bootstrap_mean(values, resamples, level, seed)
    rng = random.Random(seed)
    draws = sorted(statistic([values[rng.randrange(n)] for _ in range(n)])
                   for _ in range(resamples))
    tail = (1 - level) / 2
    low = draws[int(tail * (resamples - 1))]
    high = draws[int(round((1 - tail) * (resamples - 1)))]
    return Estimate(point, low, high, n)


def _bootstrap_mean(values: list[float], resamples: int, level: float, seed: int) -> Estimate:
    """:func:`bootstrap` of a plain mean, vectorised (resampled in chunks to bound memory)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    n = len(data)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    draws = np.concatenate([data[rng.integers(0, n, size=(min(chunk, resamples - start), n))]
                            .mean(axis=1) for start in range(0, resamples, chunk)])
    draws.sort()
    tail = (1 - level) / 2
    low = float(draws[int(tail * (resamples - 1))])
    high = float(draws[int(round((1 - tail) * (resamples - 1)))])
    return Estimate(mean(values), low, high, n)


def mean_ci(values: Sequence[float], **kwargs) -> Estimate:
    return bootstrap(values, mean, **kwargs)


def win_rate(pairs: Sequence[tuple[float, float]]) -> float:
    """Share of (expected-higher, expected-lower) pairs in the expected order; ties count half."""
    return mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])


def auc(higher: Sequence[float], lower: Sequence[float]) -> float:
    """P(a random expected-higher score > a random expected-lower one); ties count half."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in higher for b in lower)
    return wins / (len(higher) * len(lower))


def paired_auc(pairs: Sequence[tuple[float, float]]) -> float:
    return auc([a for a, _ in pairs], [b for _, b in pairs])


def difference_ci(pairs: Sequence[tuple[float, float]], **kwargs) -> Estimate:
    """Mean of ``after - before`` over paired scores, with its bootstrap interval."""
    return bootstrap([b - a for a, b in pairs], mean, **kwargs)
