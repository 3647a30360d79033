"""stats: bootstrap intervals, and the vectorised path for large samples agrees with the loop."""

from __future__ import annotations

import random

import pytest

from argalign.core import stats


def test_interval_brackets_the_mean_and_narrows_with_n():
    rng = random.Random(1)
    small = [rng.random() for _ in range(50)]
    large = [rng.random() for _ in range(800)]
    a, b = stats.mean_ci(small), stats.mean_ci(large)
    assert a.low < a.value < a.high and b.low < b.value < b.high
    assert (b.high - b.low) < (a.high - a.low) / 2


def test_one_value_gives_a_degenerate_interval_and_none_is_an_error():
    assert stats.mean_ci([0.3]) == stats.Estimate(0.3, 0.3, 0.3, 1)
    with pytest.raises(ValueError):
        stats.mean_ci([])


def test_large_samples_take_the_vectorised_path_with_the_same_interval(monkeypatch):
    rng = random.Random(2)
    values = [rng.betavariate(2, 5) for _ in range(1500)]
    fast = stats.mean_ci(values)
    assert fast == stats.mean_ci(values)  # seeded: the same interval every time
    monkeypatch.setattr(stats, "FAST_ABOVE", 10 ** 9)
    loop = stats.mean_ci(values, resamples=500)
    assert fast.value == loop.value and fast.n == loop.n == 1500
    # Two bootstraps of the same sample differ only by resampling noise.
    assert abs(fast.low - loop.low) < 0.002 and abs(fast.high - loop.high) < 0.002


def test_difference_is_after_minus_before():
    pairs = [(0.2, 0.5), (0.4, 0.6), (0.1, 0.4)]
    estimate = stats.difference_ci(pairs)
    assert estimate.value == pytest.approx((0.3 + 0.2 + 0.3) / 3)
    assert estimate.low > 0
