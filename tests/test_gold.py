"""The gold demonstrations: each one a training row rewritten by hand, passing every invariant
and check, never a held-out row; their demos are what the program shows the LM."""

from __future__ import annotations

import json

import dspy
import pytest
from tests.support import read_rows

from argalign.core.deliverables import delivered
from argalign.core.records import Outcome
from argalign.core.schema import content_key, parse_conversation
from argalign.core.sources import sample_dir
from argalign.modes import make_mode
from argalign.programs.gold import (
    DEMO_INPUT_CHARS,
    GoldEntry,
    GoldError,
    demo_ids,
    gold_demos,
    gold_path,
    load_gold,
    replay,
    training_row,
)
from argalign.programs.optimizer import with_gold
from argalign.scoring.checks import check_method_named
from argalign.scoring.gate import gate
from argalign.scoring.metrics import make_metric
from argalign.stages.optimize import OptimizeSpec
from argalign.stages.prepare import CONFIGS

ENTRIES = load_gold()


def _sample_rows(split: str) -> list[dict]:
    return [row for config in CONFIGS for row in read_rows(sample_dir() / config / f"{split}.jsonl")]


def _tasks(row: dict) -> set[str | None]:
    """What each turn's answer mainly is."""
    conversation = parse_conversation(row, row["source_id"])
    tasks = set()
    for turn in conversation.turns:
        messages = [conversation.messages[i] for i in turn.assistant_indices]
        answer = next((m.content for m in reversed(messages) if m.content), "")
        tasks.add(delivered(answer, [m.tool_calls for m in messages if m.tool_calls],
                            [m.thinking for m in messages if m.thinking]).task)
    return tasks


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_every_gold_rewrite_is_aligned_by_the_gate_and_better_than_its_original(entry):
    replayed = replay(entry)
    verdict = gate(replayed.original, replayed.row, entry.mode)
    assert verdict.outcome is Outcome.ALIGNED, verdict
    # Only the fields a mode may change differ: what the LM wrote, placed by the module.
    changed = [(i, k) for i, (a, b) in enumerate(zip(replayed.original["messages"],
                                                     replayed.row["messages"]))
               for k in a if a[k] != b[k]]
    assert changed and all(k in {"content", "thinking"} for _, k in changed)
    assert all(replayed.row["messages"][i]["role"] in {"user", "assistant"} for i, _ in changed)
    scorer = make_metric(None, "structural").scorer
    assert scorer.score(replayed.row).score >= scorer.score(replayed.original).score


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_every_gold_opening_names_a_method_the_plan_carries_out(entry):
    replayed = replay(entry)
    for inputs, outputs in replayed.calls.get("rewrite_thinking", []):
        response = delivered(inputs["answer"], thinking=[inputs["plan"]])
        assert not check_method_named(outputs["opening"], response=response, request="")


def test_gold_rows_are_training_rows_and_never_held_out_or_real(real_rows_path):
    held_out = {content_key(r) for split in ("validation", "test") for r in _sample_rows(split)}
    held_out |= {content_key(r) for r in read_rows(real_rows_path)}
    train = {r["source_id"]: r for r in _sample_rows("train")}
    for entry in ENTRIES:
        assert entry.row_id in train
        assert content_key(train[entry.row_id]) not in held_out, entry.id


def test_each_task_kind_of_the_training_rows_has_a_gold_rewrite_in_each_mode():
    kinds = set().union(*(_tasks(row) for row in _sample_rows("train"))) - {None}
    assert {"annotation", "reconstruction", "formalization", "smt", "verdict", "fallacy",
            "rhetoric"} <= kinds
    for mode in ("A", "B"):
        entries = [e for e in ENTRIES if e.mode == mode]
        assert kinds <= {e.kind for e in entries}, mode
        for entry in entries:  # the kind is what a turn of the rewritten row answers
            assert entry.kind in _tasks(training_row(entry.row_id)), entry.id


def test_a_held_out_row_is_refused_as_gold():
    with pytest.raises(GoldError, match="not a training row"):
        training_row("sample/deepa2-aaac01-thinking/test/03")
    with pytest.raises(GoldError, match="not in"):
        training_row("sample/deepa2-aaac01-thinking/train/99")


def _entry(**changes) -> GoldEntry:
    base = next(e for e in ENTRIES if e.id == "B-verdict")
    return GoldEntry(**{**base.__dict__, **changes})


@pytest.mark.parametrize("opening, code", [
    ("As an AI language model, I reconstruct the argument in standard form.", "NON_SEQUITUR"),
    ("I have reconstructed the argument in standard form and annotated the text.", "CLAIMS_DONE"),
])
def test_a_gold_output_that_a_check_rejects_is_an_error(opening, code):
    entry = _entry(outputs={"rewrite_thinking": [{"opening": opening}]})
    with pytest.raises(GoldError, match=code):
        replay(entry)


def test_a_gold_entry_must_write_each_call_and_no_more():
    with pytest.raises(GoldError, match="called 1 times, but the gold entry writes 0"):
        replay(_entry(outputs={"rewrite_thinking": []}))
    extra = _entry(outputs={"rewrite_thinking": [{"opening": "Whether (1) is explicit can only "
                                                  "be settled against a reconstruction."}] * 2})
    with pytest.raises(GoldError, match="never asked for"):
        replay(extra)
    with pytest.raises(GoldError, match="has no predictor"):
        replay(_entry(outputs={"rewrite_request": [{"request": "Reconstruct it."}]}))


@pytest.mark.parametrize("line, message", [
    ("{not json", "not a gold entry"),
    (json.dumps({"id": "x", "mode": "A", "kind": "k", "row": "r"}), "not a gold entry"),
    (json.dumps({"id": "x", "mode": "A", "kind": "k", "row": "r", "outputs": {"p": "text"}}),
     "outputs must map"),
])
def test_a_malformed_gold_line_is_an_error_naming_the_line(tmp_path, line, message):
    path = tmp_path / "gold.jsonl"
    path.write_text(gold_path().read_text("utf-8").splitlines()[0] + "\n" + line + "\n", "utf-8")
    with pytest.raises(GoldError, match=rf"gold.jsonl:2: {message}"):
        load_gold(path=path)


def test_gold_demos_hold_every_field_of_their_signature_shortened_and_their_id():
    for mode in ("A", "B"):
        program = make_mode(mode)
        signatures = {name: p.signature for name, p in program.named_predictors()}
        demos = gold_demos(mode)
        assert demos["rewrite_thinking"]
        for name, examples in demos.items():
            fields = set(signatures[name].input_fields) | set(signatures[name].output_fields)
            for demo in examples:
                assert fields <= set(demo.keys())
                assert demo.demo_id.startswith("gold/")
                assert all(len(demo[k]) <= DEMO_INPUT_CHARS + 60 for k in signatures[name].input_fields)
        # Copies: a caller editing a demo does not change the next caller's.
        demos["rewrite_thinking"][0]["opening"] = "changed"
        assert gold_demos(mode)["rewrite_thinking"][0]["opening"] != "changed"


def test_with_gold_gives_each_predictor_k_gold_demos_in_a_seeded_order():
    spec = OptimizeSpec(mode="A", max_demos=2)
    program = make_mode("A")
    first, again, other = (with_gold(program, spec, seed=s) for s in (0, 0, 1))
    ids = demo_ids(first)
    assert ids == demo_ids(again)
    assert ids != demo_ids(other)
    assert {len(v) for v in ids.values()} == {2}
    assert all(i.startswith("gold/A-") for v in ids.values() for i in v)
    assert demo_ids(program) == {"rewrite_request": [], "rewrite_thinking": []}  # untouched
    # A demo is shown to the LM with the signature's fields only: never its id.
    predictor = dict(first.named_predictors())["rewrite_thinking"]
    messages = dspy.ChatAdapter().format(predictor.signature, predictor.demos,
                                         {k: "x" for k in predictor.signature.input_fields})
    text = "\n".join(m["content"] for m in messages)
    assert predictor.demos[0]["opening"] in text and "gold/" not in text


def test_the_metric_feedback_says_whether_a_rewrite_beat_its_original():
    metric = make_metric(None, "structural")
    replayed = replay(next(e for e in ENTRIES if e.id == "A-smt"))
    gold = dspy.Example(row=replayed.original, mode="A")
    feedback = metric(gold, dspy.Prediction(row=replayed.row)).feedback
    assert "The original conversation scores 0.22; this rewrite scores 0.94 (+0.72), better " \
           "than the original." in feedback
    unchanged = metric(gold, dspy.Prediction(row=replayed.original)).feedback
    assert "returned unchanged" in unchanged and "The original conversation scores" not in unchanged
