"""Mode A and Mode B programs: what they may change, what they send, and how they fail.

The LM is faked: ``ScriptedLM`` (DummyLM, answers keyed by the output fields a prompt asks
for, or in order) in-process, and the fake OpenAI server where a fault must come over the wire.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import dspy
import pytest
from dspy.clients.engines.dummy_engine import AsyncDummyEngine, DummyEngine
from dspy.utils import DummyLM
from dspy.utils.exceptions import (
    AdapterParseError,
    LMRateLimitError,
    LMServerError,
    LMTimeoutError,
)

from argalign.core.deliverables import (
    ASK_METHOD,
    MAJOR_METHODS,
    METHODS,
    Delivered,
    ask_briefly,
    ask_for_methods,
    asked,
    requested,
    step_labels,
)
from argalign.core.errors import RowError
from argalign.core.schema import parse_conversation, split_source
from argalign.core.thinking import split_thinking
from argalign.modes import make_mode
from argalign.modes.base import (
    MAX_CLARIFICATION_CHARS,
    AlignmentFailed,
    Request,
    TruncatedOutput,
    TruncationWatch,
    _error_code,
)
from argalign.modes.signatures import RewriteRequest
from argalign.scoring.checks import _delivered as delivered_by
from argalign.scoring.checks import instructions
from argalign.scoring.comparison import instructions_of, turn_views
from argalign.scoring.invariants import check_row
from argalign.testing.argalign_responder import ArgalignResponder, asked_task
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer

SAMPLE = Path(str(importlib.resources.files("argalign") / "data" / "sample"))
ALLOWED_OUTPUTS = {"request", "opening", "closing", "clarification"}

# The JSONAdapter ends each prompt with the output fields it wants, in order.
ASKS_REQUEST = "fields: `request`."
ASKS_THINKING_A = "fields: `opening`."
ASKS_THINKING_B = "fields: `opening`."

# A well-behaved request rewrite: the original instructions (the source-text placeholder taken
# out) after a prefix. It keeps everything the original asks for and adds nothing the answer
# does not do, so the quality checks pass; the checks have their own tests below.
REQUEST_PREFIX = "Please do exactly this: "
_ORIGINAL_REQUEST = re.compile(r"\[\[ ## original_request ## \]\]\n(.*?)(?=\n\n\[\[ ## |\Z)", re.S)


_PLAN = re.compile(r"\[\[ ## plan ## \]\]\n(.*?)(?=\n\n\[\[ ## |\Z)", re.S)
_DELIVERS = re.compile(r"On the way, its reasoning produces: ([^\n]*)")


def echo_request(prompt: str) -> str:
    """The original instructions, what the answer mainly is, and the plan's steps named (so
    its task and methods are expected)."""
    found = _ORIGINAL_REQUEST.search(prompt)
    text = re.sub(r"\[SOURCE TEXT: \d+ characters\]", " ", found.group(1)) if found else ""
    return REQUEST_PREFIX + " ".join(text.split()) + asked_task(prompt) + named_methods(prompt)


def named_methods(prompt: str) -> str:
    """A sentence naming the plan's steps and the methods the response's description lists
    (a shortened plan may miss a step), so the request makes them expectable."""
    plan = _PLAN.search(prompt)
    delivers = _DELIVERS.search(prompt)
    steps = re.findall(r"Step \d+\s*[:.]\s*([^\n]+?)\s*$", plan.group(1), re.M) if plan else []
    labels = step_labels(steps) | asked(delivers.group(1) if delivers else "")
    words = [METHODS[m] for m in METHODS if m in labels]
    return f" On the way, {'; '.join(words)}." if words else ""


NEW_REQUEST = echo_request  # an answer value may be a function of the prompt
NEW_OPENING = "The user asks for an Argdown reconstruction; I plan the steps below."
NEW_CLOSING = "This reconstruction is what I give as my answer."


class _PromptKeepingEngine(DummyEngine):
    """DSPy's dummy engine, keeping the last user message for answers that depend on it."""

    def _complete_messages(self, messages):
        self.owner._prompt = str(messages[-1].get("content", ""))
        return super()._complete_messages(messages)


class ScriptedLM(DummyLM):
    """DummyLM whose answers may also be raw strings, sent as they are (garbage, bad JSON), and
    whose answer values may be functions of the prompt."""

    def __init__(self, answers: list | dict):
        super().__init__(answers, adapter=dspy.JSONAdapter())
        self._prompt = ""
        self._engine_spec = _PromptKeepingEngine(self)
        self._async_engine_spec = AsyncDummyEngine(self._engine_spec)

    def _format_answer_fields(self, values: dict[str, Any] | str) -> str:
        if isinstance(values, str):
            return values
        values = {k: v(self._prompt) if callable(v) else v for k, v in values.items()}
        return super()._format_answer_fields(values)


def rewriting_lm(**extra: Any) -> ScriptedLM:
    """Answers every rewrite with new text; ``extra`` keys are added to every answer."""
    # Both modes' thinking prompts ask for the same field (ASKS_THINKING_A == _B).
    return ScriptedLM({
        ASKS_THINKING_A: {"opening": NEW_OPENING, **extra},
        ASKS_REQUEST: {"request": NEW_REQUEST, **extra},
    })


def run(mode: str, row: dict, lm: dspy.BaseLM, **options: Any) -> dspy.Prediction:
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return make_mode(mode, **options)(row=row)


def prompts(lm: dspy.BaseLM) -> list[str]:
    return ["\n".join(str(m["content"]) for m in entry["messages"]) for entry in lm.history]


# --- rows -----------------------------------------------------------------------------------

def sample_rows() -> list[dict]:
    return [json.loads(line) for path in sorted(SAMPLE.glob("*/*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def kind(row: dict) -> str:
    roles = [m["role"] for m in row["messages"]]
    if "tool" in roles:
        return "tool"
    return "multi-turn" if roles.count("user") > 1 else "single-turn"


def selection() -> list[dict]:
    """Two rows of each kind from each config."""
    chosen: dict[tuple[str, str], list[dict]] = {}
    for row in sample_rows():
        config = row["source_id"].split("/")[1]
        group = chosen.setdefault((config, kind(row)), [])
        if len(group) < 2:
            group.append(row)
    return [row for group in chosen.values() for row in group]


SELECTION = selection()


def read_real(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def vague(row: dict) -> bool:
    """Whether the row's first request names nothing it asks for ("Your turn."), so Mode A has
    the LM write it (a request that already asks for the answer's task is kept)."""
    first = next(m for m in row["messages"] if m["role"] == "user")
    return not asked(instructions(first["content"]))


def tool_row() -> dict:
    return next(row for row in SAMPLE_ROWS if kind(row) == "tool" and vague(row))


def multi_turn_row() -> dict:
    return next(row for row in SAMPLE_ROWS if kind(row) == "multi-turn" and vague(row))


def single_turn_row() -> dict:
    return next(row for row in SAMPLE_ROWS if kind(row) == "single-turn" and vague(row))


SAMPLE_ROWS = sample_rows()


def test_the_selection_covers_every_kind():
    assert {kind(row) for row in SELECTION} == {"single-turn", "multi-turn", "tool"}
    assert len(SELECTION) == 24


# --- what an aligned row keeps and what it changes ---------------------------------------------

def worked(thinking: str | None) -> bool:
    """Whether a thinking has a plan or worked steps (the modules rewrite its opening)."""
    parts = split_thinking(thinking or "")
    return bool(parts.plan or parts.middle)


def assert_aligned(original: dict, aligned: dict, mode: str) -> None:
    assert check_row(original, aligned, mode) == []
    assert {k: v for k, v in aligned.items() if k != "messages"} == {
        k: v for k, v in original.items() if k != "messages"}
    conversation = parse_conversation(original, "row")
    # A first reply with a plan or worked steps gets new first sentences; one of prose only (a
    # short follow-up) is kept.
    first_replies = {i for i in (min(turn.assistant_indices) for turn in conversation.turns)
                     if worked(original["messages"][i]["thinking"])}
    for i, (old, new) in enumerate(zip(original["messages"], aligned["messages"], strict=True)):
        assert new.keys() == old.keys()
        if old["role"] in ("system", "tool"):
            assert new == old
        elif old["role"] == "assistant":
            assert (new["content"], new["tool_calls"], new["tools"], new["name"]) == (
                old["content"], old["tool_calls"], old["tools"], old["name"])
            if old["thinking"] and i in first_replies:
                # New first sentences, then the original thinking from its opening prose on.
                parts = split_thinking(old["thinking"])
                assert new["thinking"].startswith(NEW_OPENING)
                assert new["thinking"].endswith(
                    old["thinking"][old["thinking"].index(parts.preamble.strip()):]
                    if parts.preamble.strip() else old["thinking"])
            elif old["thinking"]:
                assert new["thinking"] == old["thinking"]  # after tool results, or no plan: kept
            else:
                assert new["thinking"] == old["thinking"]  # None stays None, "" stays ""
        else:
            assert new["thinking"] is None and new["tool_calls"] is None
            parts = split_source(old["content"])
            if parts is not None:
                assert parts[1] in new["content"]
    for turn in parse_conversation(original, "row").turns:
        old = original["messages"][turn.user_index]["content"]
        new = aligned["messages"][turn.user_index]["content"]
        if mode == "A":
            # Either the LM wrote the instructions, or the original ones (which already ask for
            # the answer's task) are kept word for word after our sentence asking for the method.
            rest = Request.of(old).rest
            assert REQUEST_PREFIX in new or new == old or (
                rest in new and not new.startswith(rest)
                and requested(new) > requested(rest)), new
        elif new != old:
            # Mode B appends one sentence of ours asking for the plan's methods the request
            # does not name yet, and only that.
            assert new.startswith(old + "\n\n")
            appended = new[len(old) + 2:]
            assert re.fullmatch(r"Please [^\n.]+ before you answer\.", appended), appended
            assert len(appended) <= MAX_CLARIFICATION_CHARS
            response = delivered_by(conversation, turn)
            assert response.expectable & MAJOR_METHODS <= requested(instructions(old)) | requested(appended)
            assert not requested(appended) & requested(instructions(old))
        else:
            response = delivered_by(conversation, turn)
            assert response.expectable & MAJOR_METHODS <= requested(instructions(old))


@pytest.mark.parametrize("mode", ["A", "B"])
def test_real_rows_are_aligned_within_the_invariants(mode, real_rows_path):
    rows = read_real(real_rows_path)
    assert len(rows) == 6
    for row in rows:
        before = copy.deepcopy(row)
        prediction = run(mode, row, rewriting_lm())
        assert row == before  # the original is never modified
        assert_aligned(row, prediction.row, mode)
        assert prediction.retries == []


@pytest.mark.parametrize("mode", ["A", "B"])
@pytest.mark.parametrize("row", SELECTION, ids=lambda row: f"{row['source_id']}-{kind(row)}")
def test_sample_rows_are_aligned_within_the_invariants(mode, row):
    lm = rewriting_lm()
    prediction = run(mode, row, lm)
    assert_aligned(row, prediction.row, mode)
    conversation = parse_conversation(row, "row")
    # One call per turn for its first reply's thinking, if it has a plan (a thinking after tool
    # results, or one without a plan, is kept).
    thinkings = sum(1 for turn in conversation.turns
                    if worked(row["messages"][min(turn.assistant_indices)]["thinking"]))
    requests = sum(REQUEST_PREFIX in (prediction.row["messages"][turn.user_index]["content"] or "")
                   for turn in conversation.turns) if mode == "A" else 0
    assert prediction.calls == len(lm.history) == thinkings + requests
    edited = {(e["message_index"], e["field"]) for e in prediction.edits}
    changed = {(i, key) for i, (old, new) in enumerate(zip(row["messages"], prediction.row["messages"]))
               for key in old if old[key] != new[key]}
    assert edited == changed


def test_a_vague_request_is_rewritten_and_a_specific_one_kept():
    row = multi_turn_row()
    users = [i for i, m in enumerate(row["messages"]) if m["role"] == "user"]
    assert len(users) == 2
    first, second = (row["messages"][i]["content"] for i in users)
    assert not asked(instructions(first)) and asked(second)  # "Do the usual analysis." / a question
    lm = rewriting_lm()
    aligned = run("A", row, lm).row
    # The vague request is the LM's text, the source text kept after it.
    assert REQUEST_PREFIX in aligned["messages"][users[0]]["content"]
    # The second asks for what its answer delivers and its plan needs no more: kept, not sent.
    assert aligned["messages"][users[1]]["content"] == second
    assert sum(ASKS_REQUEST in p for p in prompts(lm)) == 1


@pytest.mark.parametrize("mode", ["A", "B"])
@pytest.mark.parametrize("thinking", [None, ""])
def test_empty_thinking_stays_as_it_was(mode, thinking):
    row = copy.deepcopy(single_turn_row())
    row["messages"][2]["thinking"] = thinking
    lm = rewriting_lm()
    prediction = run(mode, row, lm)
    assert prediction.row["messages"][2] == row["messages"][2]
    assert check_row(row, prediction.row, mode) == []
    assert len(lm.history) == (1 if mode == "A" else 0)  # nothing to ask for an empty thinking


def test_a_tool_round_trip_gets_new_first_sentences_and_keeps_the_thinking_after_it():
    row = tool_row()
    lm = rewriting_lm()
    aligned = run("A", row, lm).row
    first, second = [i for i, m in enumerate(row["messages"]) if m["thinking"]]
    assert aligned["messages"][first]["thinking"] == f"{NEW_OPENING} {row['messages'][first]['thinking']}"
    # After the tool results the reasoning goes on from them: kept, and not sent to the LM.
    assert aligned["messages"][second]["thinking"] == row["messages"][second]["thinking"]
    (prompt,) = (p for p in prompts(lm) if ASKS_THINKING_A in p)
    assert "first reply" in prompt
    assert "Tool call: " in prompt  # what follows the first thinking is the tool call


def test_full_thinking_scope_replaces_the_thinking():
    row = single_turn_row()
    plan = split_thinking(row["messages"][2]["thinking"]).plan
    assert plan
    new_thinking = f"All new reasoning. {plan}\n\nAnd then the answer."
    lm = ScriptedLM({ASKS_REQUEST: {"request": NEW_REQUEST},
                     "fields: `new_thinking`.": {"new_thinking": new_thinking}})
    aligned = run("A", row, lm, thinking="full").row
    assert aligned["messages"][2]["thinking"] == new_thinking
    assert check_row(row, aligned, "A") == []


def test_full_thinking_scope_retries_a_thinking_without_the_plan():
    row = single_turn_row()
    plan = split_thinking(row["messages"][2]["thinking"]).plan
    lm = ScriptedLM([{"request": NEW_REQUEST}, {"new_thinking": "All new reasoning, no plan."},
                     {"new_thinking": f"Now with the plan. {plan}"}])
    prediction = run("A", row, lm, thinking="full")
    assert [r.split(":")[0] for r in prediction.retries] == ["PLAN_DROPPED"]
    assert plan in prediction.row["messages"][2]["thinking"]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="mode"):
        make_mode("C")
    with pytest.raises(ValueError, match="thinking"):
        make_mode("A", thinking="all")


def test_every_mode_has_a_user_change_policy():
    from argalign.core.policies import USER_CHANGE
    from argalign.modes import MODES

    assert set(MODES) == set(USER_CHANGE)


def test_the_modes_of_default_runs_are_registered_ones():
    from argalign.core.defaults import DEFAULT_MODES
    from argalign.modes import MODES

    assert DEFAULT_MODES and set(DEFAULT_MODES) <= set(MODES)


MODE_C = '''"""Mode C: Mode A's free rewrite of the request, under Mode B's bound on the user message."""

from argalign.modes.mode_a import ModeA


class ModeC(ModeA):
    mode = "C"
'''


def test_a_new_mode_is_one_new_module_and_two_registry_lines(monkeypatch, capsys, tmp_path):
    """A Mode C written as a module of its own, as it would sit in ``modes/mode_c.py``: the loop,
    the retries and the CLI take it from the modes' registry, the invariants its policy from the
    policies'."""
    import importlib.util

    from argalign import cli
    from argalign.core.policies import USER_CHANGE, UserChange
    from argalign.modes import MODES
    from argalign.scoring.gate import gate

    (tmp_path / "mode_c.py").write_text(MODE_C, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("mode_c", tmp_path / "mode_c.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(MODES, "C", module.ModeC)  # the line in modes/__init__.py
    monkeypatch.setitem(USER_CHANGE, "C", UserChange.APPEND)  # the line in core/policies.py
    row = single_turn_row()
    aligned = run("C", row, rewriting_lm()).row
    assert REQUEST_PREFIX in aligned["messages"][1]["content"]
    # Mode A's rewrite is within Mode A's policy and breaks Mode C's.
    assert gate(row, aligned, "A", max_user_change=10).outcome == "aligned"
    assert gate(row, aligned, "C", max_user_change=10).codes == ["USER_CONTENT_EDITED"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["align", "--mode", "D", "--in", "x", "--out", "y"])
    assert "invalid choice: 'D'" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["align", "--mode", "C", "--in", "x", "--out", "y"]).mode == "C"


def test_a_malformed_row_is_a_row_error():
    with pytest.raises(RowError) as info:
        run("A", {"messages": []}, rewriting_lm())
    assert info.value.code == "EMPTY_MESSAGES"


# --- what the LM is asked for ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["A", "B"])
def test_the_lm_never_re_emits_source_or_middle(mode, real_data_path):
    row = read_real(real_data_path)[0]
    source = split_source(row["messages"][1]["content"])[1]
    thinking = row["messages"][2]["thinking"]
    middle = split_thinking(thinking).middle
    assert len(source) > 1000 and len(middle) > 30_000
    program = make_mode(mode)
    lm = rewriting_lm()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        program(row=row)
    sent = prompts(lm)
    # The request already asks for the rhetoric profile: Mode A keeps it (no LM call) and puts
    # its sentence asking for the plan's methods before it. The thinking after the tool result
    # is kept: one call, for the first thinking.
    assert len(sent) == 1
    placeholder = f"[SOURCE TEXT: {len(source)} characters]"
    # Mode A's thinking prompts get the new request, which never holds the source; Mode B shows
    # the placeholder.
    assert all(placeholder in prompt for prompt in sent) == (mode == "B")
    for prompt in sent:
        assert source not in prompt
        assert middle not in prompt
        assert len(prompt) < 15_000  # the 40k thinking is not sent
        _, _, wanted = prompt.partition("Your output fields are:")
        outputs = set(re.findall(r"^\d+\. `(\w+)`", wanted.split("All interactions")[0], re.M))
        assert outputs and outputs <= ALLOWED_OUTPUTS
    for _, predictor in program.named_predictors():
        assert set(predictor.signature.output_fields) <= ALLOWED_OUTPUTS
    # What comes back is a few short fields, not the conversation.
    # (The request names the plan's steps: up to a thousand characters.)
    assert all(len(entry["outputs"][0]) < 1500 for entry in lm.history)


# --- bad LM outputs ----------------------------------------------------------------------------

@pytest.mark.parametrize("attempts", [1, 3])
@pytest.mark.parametrize(
    ("garbage", "code"),
    [
        ("Sorry, no JSON today.", "PARSE_ERROR"),
        ("", "PARSE_ERROR"),
        ("[1, 2, 3]", "PARSE_ERROR"),
        ('{"answer": "yes"}', "PARSE_ERROR"),
        ('{"request": ', "EMPTY_FIELD"),  # json_repair reads it as an empty request
    ],
)
def test_garbage_fails_after_every_attempt(garbage, code, attempts):
    lm = ScriptedLM([garbage] * 10)
    with pytest.raises(AlignmentFailed) as info:
        run("A", single_turn_row(), lm, attempts=attempts)
    assert info.value.code == code
    assert info.value.attempts == attempts
    assert info.value.reason.startswith(f"{code}: ")
    assert len(lm.history) == attempts


def _litellm_error(name: str, message: str) -> Exception:
    from litellm import exceptions

    return getattr(exceptions, name)(message=message, model="fake", llm_provider="openai")


# An LM call's error is classified by its type (DSPy's and LiteLLM's typed errors), never by
# its class name: the last one is named like all three and is none of them.
ERRORS = {
    "adapter parse": (lambda: AdapterParseError("JSONAdapter", RewriteRequest, "no JSON"),
                      "PARSE_ERROR"),
    "dspy timeout": (lambda: LMTimeoutError("slow", model="fake"), "TIMEOUT"),
    "litellm timeout": (lambda: _litellm_error("Timeout", "slow"), "TIMEOUT"),
    "socket timeout": (lambda: TimeoutError("timed out"), "TIMEOUT"),
    "dspy rate limit": (lambda: LMRateLimitError("429", model="fake"), "RATE_LIMITED"),
    "litellm rate limit": (lambda: _litellm_error("RateLimitError", "429"), "RATE_LIMITED"),
    "truncated": (lambda: TruncatedOutput("cut off"), "TRUNCATED"),
    "dspy server error": (lambda: LMServerError("500", model="fake"), "LM_ERROR"),
    "unknown": (lambda: RuntimeError("boom"), "LM_ERROR"),
    "only named so": (lambda: type("ParseTimeoutRateLimit", (Exception,), {})(), "LM_ERROR"),
}


@pytest.mark.parametrize(("make", "code"), ERRORS.values(), ids=ERRORS.keys())
def test_lm_errors_are_classified_by_type(make, code):
    assert _error_code(make()) == code


def test_a_retry_samples_again():
    lm = ScriptedLM(["no JSON", {"request": NEW_REQUEST}, "no JSON", "no JSON",
                     {"opening": NEW_OPENING}])
    prediction = run("A", single_turn_row(), lm)
    assert prediction.calls == 5
    assert [r.split(":")[0] for r in prediction.retries] == ["PARSE_ERROR"] * 3
    kwargs = [entry["kwargs"] for entry in lm.history]
    assert kwargs[0] == {} and kwargs[2] == {}
    assert kwargs[1] == kwargs[3] == {"rollout_id": 1, "temperature": 0.9}
    assert kwargs[4] == {"rollout_id": 2, "temperature": 0.9}


@pytest.mark.parametrize("mode", ["A", "B"])
def test_extra_keys_cannot_change_the_answer(mode):
    row = tool_row()
    tamper = {"content": "HACKED answer", "answer": "HACKED answer", "tool_calls": "HACKED",
              "messages": [{"role": "assistant", "content": "HACKED"}], "thinking": "HACKED"}
    prediction = run(mode, row, rewriting_lm(**tamper))
    assert_aligned(row, prediction.row, mode)
    assert "HACKED" not in json.dumps(prediction.row)


@pytest.mark.parametrize(
    ("mode", "bad", "code"),
    [
        ("A", {"closing": NEW_CLOSING}, "PARSE_ERROR"),  # no opening
        ("A", {"opening": "  "}, "EMPTY_FIELD"),
        ("A", {"opening": "x" * 5000}, "FIELD_TOO_LONG"),
        ("B", {"clarification": "Please map it."}, "PARSE_ERROR"),  # no opening
        ("B", {"opening": "x" * 5000}, "FIELD_TOO_LONG"),
    ],
)
def test_an_unusable_thinking_rewrite_is_retried_then_fails(mode, bad, code):
    asks = ASKS_THINKING_A if mode == "A" else ASKS_THINKING_B
    good = {"opening": NEW_OPENING}
    row = single_turn_row()

    lm = ScriptedLM({asks: bad, ASKS_REQUEST: {"request": NEW_REQUEST}})
    with pytest.raises(AlignmentFailed) as info:
        run(mode, row, lm)
    assert info.value.code == code and info.value.attempts == 3

    script = [bad, good] if mode == "B" else [{"request": NEW_REQUEST}, bad, good]
    lm = ScriptedLM(script)
    prediction = run(mode, row, lm)
    assert [r.split(":")[0] for r in prediction.retries] == [code]
    assert_aligned(row, prediction.row, mode)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ({"instructions": NEW_REQUEST}, "PARSE_ERROR"),  # no request field
        ({"request": ""}, "EMPTY_FIELD"),
        ({"request": "x" * 2001}, "FIELD_TOO_LONG"),
    ],
)
def test_an_unusable_request_is_retried_then_fails(bad, code):
    lm = ScriptedLM({ASKS_REQUEST: bad})
    with pytest.raises(AlignmentFailed) as info:
        run("A", single_turn_row(), lm)
    assert info.value.code == code
    assert len(lm.history) == 3


def test_a_request_that_retypes_the_source_is_retried():
    row = single_turn_row()
    source = split_source(row["messages"][1]["content"])[1]
    lm = ScriptedLM([{"request": f"Reconstruct this:\n{source}"}, {"request": NEW_REQUEST},
                     {"opening": NEW_OPENING}])
    prediction = run("A", row, lm)
    assert [r.split(":")[0] for r in prediction.retries] == ["SOURCE_RETYPED"]
    assert prediction.row["messages"][1]["content"].count(source) == 1


def test_the_longest_clarification_stays_within_the_mode_b_bound():
    every = Delivered(task="verdict", features=frozenset(), method=MAJOR_METHODS)
    sentence = ask_briefly(every)
    assert len(sentence) <= MAX_CLARIFICATION_CHARS
    assert requested(sentence) >= MAJOR_METHODS  # each method is asked in words the rules read


# --- truncation over the wire --------------------------------------------------------------------

def fixed_answers(fields: dict[str, str], messages: list[dict]) -> dict[str, Any]:
    prompt = str(messages[-1].get("content", ""))
    values = {"request": echo_request(prompt), "opening": NEW_OPENING}
    return {name: values[name] for name in fields}


@pytest.mark.parametrize("mode", ["A", "B"])
@pytest.mark.parametrize("fault", ["length", "truncated"])
def test_a_truncated_reply_is_a_failure_and_is_retried(mode, fault):
    row = single_turn_row()
    config = FakeConfig(fault=fault, fail_first_n=1)
    with FakeOpenAIServer(config, responder=ArgalignResponder(fixed_answers)) as server:
        lm = dspy.LM("openai/fake", api_base=server.url, api_key="x", cache=False, num_retries=0)
        prediction = run(mode, row, lm)
        calls = 2 if mode == "B" else 4  # each prompt is cut off once, then answered
        assert server.stats.total == prediction.calls == calls
        assert server.stats.by_fault == {fault: calls // 2}
    assert [r.split(":")[0] for r in prediction.retries] == ["TRUNCATED"] * (calls // 2)
    assert_aligned(row, prediction.row, mode)


def test_truncation_on_every_attempt_fails():
    with FakeOpenAIServer(FakeConfig(fault="length", fail_first_n=99),
                          responder=ArgalignResponder(fixed_answers)) as server:
        lm = dspy.LM("openai/fake", api_base=server.url, api_key="x", cache=False, num_retries=0)
        with pytest.raises(AlignmentFailed) as info:
            run("B", single_turn_row(), lm, attempts=2)
        assert server.stats.total == 2
    assert info.value.code == "TRUNCATED"


class Shared:
    """An LM stand-in whose history other threads append to as well."""

    def __init__(self):
        self.history: list[dict] = []

    def record(self, finish_reason: str) -> list[str]:
        outputs = ["{}"]
        self.history.append({"outputs": outputs, "response": {"choices": [
            {"finish_reason": finish_reason}]}})
        return outputs


@pytest.mark.parametrize("mine, others, cut_off", [
    ("length", "stop", True),
    ("stop", "length", False),  # another call's truncation on the same LM is not this one's
    ("stop", None, False),
])
def test_the_watch_reads_the_finish_reason_of_the_call_that_ended(mine, others, cut_off):
    lm, watch = Shared(), TruncationWatch()
    watch.on_lm_start("call", lm, {})
    outputs = lm.record(mine)
    if others is not None:
        lm.record(others)  # another thread's call, recorded before this one's end callback
    watch.on_lm_end("call", outputs)
    assert watch.cut_off is cut_off


def test_the_watch_ignores_calls_that_raised_or_that_it_did_not_see_start():
    lm, watch = Shared(), TruncationWatch()
    outputs = lm.record("length")
    watch.on_lm_end("unseen", outputs)
    watch.on_lm_start("failed", lm, {})
    watch.on_lm_end("failed", None, RuntimeError("boom"))
    assert watch.cut_off is False


# --- quality checks inside the modules ---------------------------------------------------------

def test_the_plan_is_kept_byte_for_byte_and_shown_to_the_lm(real_data_path):
    row = read_real(real_data_path)[2]  # a ten-step plan in the opening
    parts = split_thinking(row["messages"][2]["thinking"])
    assert parts.plan.startswith("Step 1:") and parts.plan.count("Step ") >= 10
    lm = rewriting_lm()
    aligned = run("B", row, lm).row
    # Only the first sentences are new: the opening prose, the plan, the middle and the closing
    # ("No, it is not.") follow as they were.
    original = row["messages"][2]["thinking"]
    assert original.startswith(parts.preamble)
    assert aligned["messages"][2]["thinking"] == f"{NEW_OPENING} {original}"
    thinking_prompt = next(p for p in prompts(lm) if ASKS_THINKING_B in p)
    assert parts.plan in thinking_prompt  # as an input: the LM never writes it back
    assert parts.preamble in thinking_prompt


def test_a_leaked_placeholder_is_retried():
    row = single_turn_row()
    leaky = {"opening": "I annotate [SOURCE TEXT: 587 characters] now."}
    lm = ScriptedLM([{"request": NEW_REQUEST}, leaky,
                     {"opening": NEW_OPENING}])
    prediction = run("A", row, lm)
    assert [r.split(":")[0] for r in prediction.retries] == ["PLACEHOLDER_LEAKED"]
    assert "SOURCE TEXT" not in json.dumps(prediction.row)


def test_a_rewrite_that_fails_a_check_every_time_ends_rejected():
    from argalign.core.schema import Example
    from argalign.modes.base import QualityRejected
    from argalign.programs.align import align_example

    row = single_turn_row()
    leaky = {"opening": "I start from [[ ## request ## ]] again.", "clarification": ""}
    lm = ScriptedLM({ASKS_THINKING_B: leaky})
    with pytest.raises(QualityRejected) as info:
        run("B", row, lm)
    assert info.value.code == "PLACEHOLDER_LEAKED" and info.value.attempts == 3

    lm = ScriptedLM({ASKS_THINKING_B: leaky})
    record = align_example(Example("x", "c", "s", 0, row), make_mode("B"), model="m", lm=lm,
                           adapter=dspy.JSONAdapter())
    assert record.outcome == "rejected" and record.codes == ["PLACEHOLDER_LEAKED"]
    assert record.row is None


def test_mode_a_keeps_a_thinking_whose_new_sentences_fail_and_says_so():
    # The new request carries the alignment; the original reasoning still leads from it.
    row = single_turn_row()
    leaky = {"opening": "I start from [[ ## request ## ]] again."}
    lm = ScriptedLM({ASKS_REQUEST: {"request": NEW_REQUEST}, ASKS_THINKING_A: leaky})
    prediction = run("A", row, lm)
    assert prediction.row["messages"][2]["thinking"] == row["messages"][2]["thinking"]
    assert REQUEST_PREFIX in prediction.row["messages"][1]["content"]
    assert [e["field"] for e in prediction.edits] == ["content"]
    assert [r.split(":")[0] for r in prediction.retries] == ["PLACEHOLDER_LEAKED"] * 4
    assert "thinking 2 kept as it was after 3 attempts" in prediction.retries[-1]
    # Without a new request there is nothing left to align: the row is rejected.
    specific = next(r for r in SAMPLE_ROWS if kind(r) == "single-turn" and
                    run("A", r, rewriting_lm()).row["messages"][1] == r["messages"][1])
    with pytest.raises(AlignmentFailed):
        run("A", specific, ScriptedLM({ASKS_THINKING_A: leaky}))


def test_a_request_that_drops_the_question_is_retried():
    # "Use the usual approach." answered with SMT-LIB code, and a question added to it: the
    # request does not ask for the SMT code, so the LM rewrites it, and must keep the question.
    row = copy.deepcopy(next(row for row in SAMPLE_ROWS
                             if vague(row) and "(check-sat)" in row["messages"][-1]["content"]))
    user = row["messages"][1]
    user["content"] = user["content"].replace(
        "Use the usual approach.", "Use the usual approach. Which inference is the weakest?", 1)
    assert "weakest" in user["content"]
    narrow = {"request": "Write SMT-LIB code that checks every inference, please."}
    lm = ScriptedLM([narrow, {"request": NEW_REQUEST}, {"opening": NEW_OPENING}])
    prediction = run("A", row, lm)
    assert [r.split(":")[0] for r in prediction.retries] == ["DELIVERABLE_DROPPED"]
    assert "Which inference is the weakest?" in prediction.retries[0]


def test_no_clarification_when_the_request_already_asks_for_the_methods():
    row = copy.deepcopy(single_turn_row())
    user = row["messages"][1]
    plain = run("B", row, rewriting_lm()).row["messages"][1]["content"]
    assert plain != user["content"]  # a vague request gets the sentence
    # The request that asks for all of it already: nothing appended.
    user["content"] = plain
    aligned = run("B", row, rewriting_lm()).row
    assert aligned["messages"][1]["content"] == user["content"]
    assert aligned["messages"][2]["thinking"] != row["messages"][2]["thinking"]


# --- the source text without an intro line; Mode A fails closed (#12 item 2) -----------------

ISSUE_TEXT = ("Every member of the Riverside club who has lived near the harbour supports Harbour "
              "Athletic. Jonas has lived near the harbour all his life.\n\n"
              "So, some say, Jonas must support Harbour Athletic. But Jonas is a member of the Rovers "
              "supporters' club, and no member of that club supports Harbour Athletic.")


def _with_user_message(content: str) -> dict:
    row = copy.deepcopy(single_turn_row())
    row["messages"][1]["content"] = content
    return row


def _align(row: dict, lm: dspy.BaseLM):
    from argalign.core.schema import Example
    from argalign.programs.align import align_example

    with dspy.context(adapter=dspy.JSONAdapter()):
        return align_example(Example("x", "c", "train", 0, row), make_mode("A"), model="dummy", lm=lm)


def test_mode_a_keeps_a_text_that_has_no_intro_line():
    row = _with_user_message(f"Instruction: What do you make of this?\n\n{ISSUE_TEXT}")
    lm = rewriting_lm()
    aligned = run("A", row, lm).row
    instructions, _, text = aligned["messages"][1]["content"].partition("\n\n")
    assert f"{REQUEST_PREFIX}Instruction: What do you make of this?" in instructions
    assert text == ISSUE_TEXT
    assert check_row(row, aligned, "A") == []
    request_prompt = next(p for p in prompts(lm) if ASKS_REQUEST in p)
    assert f"Instruction: What do you make of this?\n\n[SOURCE TEXT: {len(ISSUE_TEXT)} characters]" \
        in request_prompt  # the request as the LM sees it: the text masked


@pytest.mark.parametrize("content", [
    ISSUE_TEXT + "\n\n" + ISSUE_TEXT,                                     # no instruction at all
    f"What do you make of this? {ISSUE_TEXT}\n\n{ISSUE_TEXT}",            # no break after it
])
def test_mode_a_refuses_a_long_message_whose_text_it_cannot_find(content):
    lm = rewriting_lm()
    record = _align(_with_user_message(content), lm)
    assert (record.outcome, record.codes) == ("rejected", ["SOURCE_UNCLEAR"])
    assert record.row is None and "message 1" in record.reason
    assert not any(ASKS_REQUEST in p for p in prompts(lm))  # refused before any request rewrite


def test_mode_b_aligns_the_same_long_message():
    """Mode B keeps the whole message, so an unclear one is no risk to it."""
    from argalign.core.schema import Example
    from argalign.programs.align import align_example

    content = ISSUE_TEXT + "\n\n" + ISSUE_TEXT
    with dspy.context(adapter=dspy.JSONAdapter()):
        record = align_example(Example("x", "c", "train", 0, _with_user_message(content)),
                               make_mode("B"), model="dummy", lm=rewriting_lm())
    assert record.outcome == "aligned"
    assert record.row["messages"][1]["content"].startswith(f"{content}\n\nPlease ")


def test_text_that_mode_a_would_drop_makes_the_row_rejected_never_aligned():
    """Text before the intro line is not part of the source text found; the invariant that
    protects every text paragraph turns Mode A's rewrite into a rejection."""
    before = "Jonas wrote to the club last week, and what he wrote matters here. " * 10
    row = _with_user_message(f"{before.strip()}\n\nConsider the following text:\n{ISSUE_TEXT}")
    lm = ScriptedLM({ASKS_REQUEST: {"request": lambda prompt: "Please look at the argument "
                                    "closely with me." + named_methods(prompt)},
                     ASKS_THINKING_A: {"opening": NEW_OPENING}})
    record = _align(row, lm)
    assert (record.outcome, record.codes) == ("rejected", ["SOURCE_TEXT_NOT_VERBATIM"])
    assert record.row is None


def test_mode_a_asks_for_every_major_method_of_the_plan(real_rows):
    # The LM answers with the bare original question; the sentence before it is ours.
    for row in real_rows:
        view = turn_views(row)[0]
        prediction = run("A", row, rewriting_lm())
        new = turn_views(prediction.row)[0]
        assert view.delivered.major_methods <= requested(instructions_of(new.request)), \
            row.get("example_id")


def test_the_method_sentence_is_read_as_its_methods_and_stable_per_conversation():
    for methods in (["reconstruction"], ["formalization", "argument_map"], list(ASK_METHOD)):
        what = Delivered("verdict", frozenset(), frozenset(methods))
        sentence = ask_for_methods(what, "row-1/1")
        assert requested(sentence) >= set(methods)
        assert sentence == ask_for_methods(what, "row-1/1")
    assert ask_for_methods(Delivered("verdict", frozenset(), frozenset()), "x") == ""


def test_a_control_character_in_the_new_sentences_reaches_the_checks():
    # "\\forall" written into the model's JSON comes back as a form feed and "orall"; the
    # module must not turn it into a space before the checks see it.
    row = single_turn_row()
    broken = {"opening": "I reconstruct the argument: \forall premises hold."}
    lm = ScriptedLM([{"request": NEW_REQUEST}, broken, {"opening": NEW_OPENING}])
    prediction = run("A", row, lm)
    assert [r.split(":")[0] for r in prediction.retries] == ["TEXT_HAS_CONTROL_CHARS"]
