"""The acceptance gate: a rewrite is kept only if it scores a margin above the original."""

from __future__ import annotations

import dspy
import pytest

from argalign.core.schema import Example
from argalign.models.config import load_settings
from argalign.models.lm import adapter_for, build_lm
from argalign.modes import make_mode
from argalign.programs.accept import (
    DEFAULT_MARGIN,
    FRESH_TEMPERATURE,
    Acceptance,
    align_accepted,
    fresh_lm,
)
from argalign.scoring.metrics import Score
from argalign.testing.argalign_responder import ArgalignResponder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer
from support import CONFIG, mark_failing, responder, write_settings


class ScriptedScorer:
    """Scores the original ``baseline`` and the rewrites, in order, from a list."""

    def __init__(self, baseline: float, rewrites: list[float], fail: bool = False):
        self.baseline, self.rewrites, self.fail = baseline, list(rewrites), fail
        self.seen: list[dict] = []

    def score(self, row: dict) -> Score:
        if self.fail:
            raise RuntimeError("no logprobs")
        value = self.baseline if not self.seen else self.rewrites[len(self.seen) - 1]
        self.seen.append(row)
        return Score(value, value, value, None, None, f"scored {value}")


def sampling_responder():
    """Answers that differ on every call, as a sampling model's do; counts the calls."""
    calls = {"n": 0}

    def respond(fields, messages):
        calls["n"] += 1
        values = responder(fields, messages)  # unusable answers for a FAILME row
        return {k: f"{v} Draft {calls['n']}." if isinstance(v, str) else v
                for k, v in values.items()}

    return respond, calls


@pytest.fixture
def task(tmp_path):
    respond, calls = sampling_responder()
    with FakeOpenAIServer(FakeConfig(), responder=ArgalignResponder(respond)) as server:
        settings = load_settings(str(write_settings(tmp_path / "s.yaml", server.url)))
        cfg = settings.get("fake")
        yield build_lm(cfg), adapter_for(cfg), calls


def example(row: dict) -> Example:
    return Example(str(row["source_id"]), CONFIG, "train", 0, row)


@pytest.fixture
def row(real_rows):
    return {**real_rows[1], "source_id": "r1"}  # one user turn, one thinking


def accepted(row, task, scorer, retries=2, mode="B", margin=DEFAULT_MARGIN):
    lm, adapter, _ = task
    return align_accepted(example(row), make_mode(mode), acceptance=Acceptance(retries, margin),
                          scorer=scorer, model="fake", lm=lm, adapter=adapter)


def test_the_default_margin_is_well_above_the_metrics_repeatability():
    # The same conversation scored twice with hybrid differed by at most 0.0007.
    assert Acceptance().margin == DEFAULT_MARGIN == 0.01


def test_a_rewrite_better_by_the_margin_is_kept_at_once(row, task):
    record = accepted(row, task, ScriptedScorer(0.5, [0.52]))
    assert record.outcome == "aligned" and record.row is not None
    gate = record.acceptance
    assert (gate["attempts"], gate["accepted"], gate["scores"]) == (1, True, [0.52])
    assert gate["margin"] == DEFAULT_MARGIN
    assert gate["extra"] == {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    assert record.scores["aligned"]["score"] == 0.52


def test_a_rewrite_better_by_less_than_the_margin_ends_not_improved(row, task):
    record = accepted(row, task, ScriptedScorer(0.5, [0.505] * 3))
    assert record.outcome == "not_improved" and record.row is None
    assert record.acceptance["attempts"] == 3 and record.acceptance["accepted"] is False
    assert "0.500 + 0.01" in record.reason and "0.505" in record.reason


@pytest.mark.parametrize(("before", "after", "margin", "kept"), [
    (0.5, 0.5, 0.0, True),  # margin 0: the old rule, no lower is enough
    (0.5, 0.505, 0.0, True),
    (0.5, 0.505, 0.01, False),
    (0.5, 0.51, 0.01, True),  # exactly the margin, whatever the float error
    (0.02, 0.03, 0.01, True),
    (0.5, 0.499, 0.0, False),
])
def test_keeps_compares_the_gain_with_the_margin(before, after, margin, kept):
    assert Acceptance(margin=margin).keeps(before, after) is kept


def test_margin_zero_keeps_a_small_gain(row, task):
    record = accepted(row, task, ScriptedScorer(0.5, [0.505]), margin=0.0)
    assert record.outcome == "aligned" and record.acceptance["scores"] == [0.505]


def test_a_lower_rewrite_is_sampled_again_and_the_better_one_kept(row, task):
    scorer = ScriptedScorer(0.5, [0.2, 0.7])
    record = accepted(row, task, scorer)
    assert record.outcome == "aligned"
    gate = record.acceptance
    assert (gate["attempts"], gate["accepted"], gate["scores"]) == (2, True, [0.2, 0.7])
    # The row kept is the second sample, the one that scored 0.7.
    assert record.row == scorer.seen[2] != scorer.seen[1]
    assert gate["extra"]["calls"] >= 1 and gate["extra"]["output_tokens"] > 0
    assert record.calls == gate["task"]["calls"] == task[2]["n"]
    assert record.scores["aligned"]["score"] == 0.7


def test_when_every_rewrite_scores_lower_the_example_ends_not_improved(row, task):
    record = accepted(row, task, ScriptedScorer(0.5, [0.3, 0.45, 0.1]), retries=2)
    assert record.outcome == "not_improved" and record.codes == ["NOT_IMPROVED"]
    assert record.row is None
    assert record.scores["baseline"]["score"] == 0.5
    assert record.scores["aligned"]["score"] == 0.45  # the best of the three
    assert "0.500" in record.reason and "0.450" in record.reason
    gate = record.acceptance
    assert (gate["attempts"], gate["accepted"], gate["scores"]) == (3, False, [0.3, 0.45, 0.1])
    assert gate["extra"]["calls"] == record.calls - (record.calls // 3) > 0
    assert record.to_dict()["outcome"] == "not_improved"


def test_zero_retries_decide_on_the_first_rewrite(row, task):
    record = accepted(row, task, ScriptedScorer(0.5, [0.4]), retries=0)
    assert record.outcome == "not_improved" and record.acceptance["attempts"] == 1


def test_a_first_attempt_that_fails_keeps_its_outcome_and_is_not_scored(row, task):
    scorer = ScriptedScorer(0.5, [0.9])
    record = accepted({**mark_failing(row), "source_id": "r1"}, task, scorer)
    assert record.outcome == "failed" and record.codes == ["FIELD_TOO_LONG"]
    assert scorer.seen == [] and record.acceptance is None


def test_a_judge_failure_fails_the_example_so_retry_failed_takes_it_up(row, task):
    record = accepted(row, task, ScriptedScorer(0.5, [0.9], fail=True))
    assert record.outcome == "failed" and record.codes == ["JUDGE_FAILED"]
    assert record.row is None and "no logprobs" in record.reason


def test_a_fresh_sample_copies_the_lm_with_a_new_rollout_above_temperature_zero():
    lm = dspy.LM("openai/x", api_base="http://127.0.0.1:9/v1", api_key="k", temperature=0.0)
    lm.callbacks.append("throttle")
    copy = fresh_lm(lm, 2)
    assert copy.kwargs["rollout_id"] == 2 and copy.kwargs["temperature"] == FRESH_TEMPERATURE
    assert copy.callbacks == ["throttle"] and copy.history is not lm.history
    warm = dspy.LM("openai/x", api_base="http://127.0.0.1:9/v1", api_key="k", temperature=0.7)
    assert fresh_lm(warm, 1).kwargs["temperature"] == 0.7


def test_negative_retries_or_margin_are_refused():
    with pytest.raises(ValueError):
        Acceptance(-1)
    with pytest.raises(ValueError):
        Acceptance(margin=-0.01)
