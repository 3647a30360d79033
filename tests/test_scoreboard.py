"""scoreboard: before/after means over aligned rows, per group, with intervals and outcome counts."""

from __future__ import annotations

import pytest

from argalign.core.stats import Estimate
from argalign.scoring.scoreboard import Scoreboard, interval, pair


def _scores(before: float, after: float, **parts: tuple[float, float]) -> dict:
    return {"baseline": {"score": before, **{k: v[0] for k, v in parts.items()}},
            "aligned": {"score": after, **{k: v[1] for k, v in parts.items()}},
            "usage": {"calls": 6}}


def _board() -> Scoreboard:
    board = Scoreboard()
    rows = [("c1", "A", "m1", "aligned", _scores(0.2, 0.6, forward=(0.1, 0.5))),
            ("c1", "A", "m1", "aligned", _scores(0.4, 0.6, forward=(0.3, 0.3))),
            ("c2", "B", "m1", "aligned", _scores(0.5, 0.4, forward=(0.5, 0.4))),
            ("c2", "B", "m2", "unchanged", _scores(0.5, 0.0)),  # scored, but gated to 0
            ("c2", "A", "m2", "failed", None),
            ("c1", None, None, "missing", None)]
    for config, mode, model, outcome, scores in rows:
        board.add(config=config, mode=mode, model=model, outcome=outcome, scores=scores)
    return board


def test_means_are_over_aligned_rows_only_and_the_rest_are_counted():
    table = _board().as_dict()
    assert table["over"] == "aligned"
    everything = table["all"]
    assert everything["outcomes"] == {"aligned": 3, "unchanged": 1, "failed": 1, "rejected": 0,
                                      "not_improved": 0, "missing": 1}
    assert everything["scored"] == 3
    score = everything["score"]
    assert score["before"]["mean"] == pytest.approx((0.2 + 0.4 + 0.5) / 3, abs=1e-4)
    assert score["after"]["mean"] == pytest.approx((0.6 + 0.6 + 0.4) / 3, abs=1e-4)
    assert score["difference"]["mean"] == pytest.approx((0.4 + 0.2 - 0.1) / 3, abs=1e-4)
    for side in ("before", "after", "difference"):
        assert score[side]["low"] <= score[side]["mean"] <= score[side]["high"]
        assert score[side]["n"] == 3
    assert everything["forward"]["difference"]["mean"] == pytest.approx((0.4 + 0 - 0.1) / 3, abs=1e-4)


def test_groups_per_config_mode_and_model():
    table = _board().as_dict()
    assert set(table["by_config"]) == {"c1", "c2"}
    assert set(table["by_mode"]) == {"A", "B"}  # the missing row has no mode
    assert set(table["by_model"]) == {"m1", "m2"}
    m2 = table["by_model"]["m2"]
    assert m2["scored"] == 0 and "score" not in m2
    assert m2["outcomes"]["unchanged"] == 1 and m2["outcomes"]["failed"] == 1
    b = table["by_mode"]["B"]["score"]
    assert (b["before"]["mean"], b["after"]["mean"], b["difference"]["mean"]) == (0.5, 0.4, -0.1)
    assert table["by_config"]["c1"]["outcomes"]["missing"] == 1
    # Parts other than the score are estimated for all rows only.
    assert "forward" not in table["by_config"]["c1"]


def test_display_rows_format_intervals_and_dashes():
    rows = {(r.kind, r.name): r for r in _board().rows()}
    assert list(rows)[0] == ("all", "all")
    assert rows[("model", "m2")].after == "–" and rows[("model", "m2")].scored == 0
    assert rows[("mode", "B")].difference.startswith("-0.100 [")
    assert interval(Estimate(0.05, 0.01, 0.09, 4), signed=True) == "+0.050 [+0.010, +0.090]"


@pytest.mark.parametrize(("scores", "expected"), [
    ({"baseline": {"score": 0.1}, "aligned": {"score": 0.3}}, (0.1, 0.3)),
    ({"baseline": {"score": 0.1}}, None),
    ({"error": "JudgeError: no logprobs"}, None),
    ({"baseline": {"score": True}, "aligned": {"score": 0.3}}, None),
    (None, None),
])
def test_pair_reads_both_sides_or_nothing(scores, expected):
    assert pair(scores) == expected
