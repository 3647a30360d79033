"""Optimizers keep the best candidate: through dspy.Evaluate, and when the call budget stops them.

The budget stops run MIPROv2 and GEPA against the simulated endpoint, with a responder that
makes a proposed instruction measurably better: an instruction that carries ``MARK`` makes the
thinking's opening start from the request's own words, which the ``lexical`` comparison
rewards. So a candidate that beats the zero-shot program exists, and the tests can check that
the budget stop saves it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import dspy
import pytest

from argalign.core.records import Outcome
from argalign.programs.optimizer import (
    Candidate,
    CandidateTracker,
    Optimizer,
    StopCompile,
    program_key,
)
from argalign.programs.optimizer_bootstrap import Bootstrap
from argalign.programs.optimizer_gold import Gold
from argalign.programs.optimizer_mipro import _InstructionProposals
from argalign.programs.optimizers import OPTIMIZERS
from argalign.stages.optimize import OptimizeResult, OptimizeSpec, run_optimize
from argalign.stages.prepare import CONFIGS
from argalign.testing.argalign_responder import ArgalignResponder, default_responder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer

MARK = "Name the deliverable"
SPEC = OptimizeSpec(mode="B", optimizer="mipro", train=3, val=2, seed=0, comparison="lexical",
                    configs=[CONFIGS[0]], candidates=2, recompile=True)
_MAINLY = re.compile(r"Mainly: ([^\n]*?)\.?\n")
_METHODS = re.compile(r"\[\[ ## methods ## \]\]\n(.*?)(?=\n\n|\Z)", re.S)


def improving(fields, messages):
    """Proposes MARK as an instruction; under it, writes openings from the request's words."""
    system = "\n".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    values = default_responder(fields, messages, words=15)
    proposal = f"{MARK} and name in the opening every analysis the plan carries out."
    if set(fields) == {"text"}:  # GEPA's reflection prompt: plain text, a fenced answer
        return {"text": f"```\n{proposal}\n```"}
    for name in values:
        if "instruction" in name:  # MIPROv2's proposer
            values[name] = proposal
    if MARK in system and "opening" in values:
        # Every method of the plan and what the answer mainly is, where the zero-shot opening
        # names the first method only: the metric's coherence rises.
        user = str([m for m in messages if m.get("role") == "user"][-1].get("content"))
        found = _METHODS.search(user)
        methods = [m.strip() for m in (found.group(1) if found else "").splitlines() if m.strip()]
        mainly = _MAINLY.search(user)
        # Each method by its verb: copying the methods' descriptions, which read like the
        # plan's step titles, would restate the plan (OPENING_RESTATES_PLAN).
        verbs = [m.split()[0] for m in methods if m != "none"]
        values["opening"] = ("I will " + ", ".join(verbs) + " the argument"
                             + (f" and give {mainly.group(1)}" if mainly else "")
                             + ", since the request calls for all of it.")
        if "clarification" in values and methods and methods != ["none"]:
            # Mode B: the request is made to ask for the plan's first method (forward rises).
            values["clarification"] = f"Please {methods[0].split(' (')[0]} first."
    return values


def settings_for(path: Path, url: str) -> str:
    model = {"model": "openai/fake", "api_base": url, "structured_output": "none", "cache": False,
             "temperature": 0.0, "max_tokens": 512, "timeout_s": 10, "num_retries": 0}
    path.write_text(json.dumps({"models": {"task": model}, "default_model": "task",
                                "default_judge": "task"}), "utf-8")
    return str(path)


def instructions(program_path: str) -> list[str]:
    state = json.loads(Path(program_path).read_text())
    return [part["signature"]["instructions"] for part in state.values()
            if isinstance(part, dict) and "signature" in part]


@pytest.mark.parametrize("optimizer, mode, fault", [
    pytest.param("mipro", "B", None, id="mipro"),
    # Mode A with every prompt failing once: more LM calls per metric call than GEPA's own
    # cap assumes, so the call budget, not GEPA, ends the compile.
    pytest.param("gepa", "A", "malformed", id="gepa"),
])
def test_a_budget_stop_keeps_the_best_candidate_found_so_far(tmp_path, optimizer, mode, fault):
    pytest.importorskip("optuna")
    spec = dataclasses.replace(SPEC, optimizer=optimizer, mode=mode)

    def compile_with(budget: int | None) -> OptimizeResult:
        # A fresh server each time: its faults hit the first attempt at each distinct prompt.
        config = FakeConfig(output_words=15, fault=fault, fail_first_n=1 if fault else 0)
        with FakeOpenAIServer(config, responder=ArgalignResponder(improving)) as server:
            result = run_optimize(dataclasses.replace(spec, budget_calls=budget),
                                  settings_for(tmp_path / "s.json", server.url))
            assert server.stats.total == result.compile_calls + result.report_calls
        return result

    full = compile_with(None)
    found = full.meta["compile"]["best_found_at"]
    assert full.partial is False and found is not None
    assert found["lm_calls"] < full.compile_calls  # the best came before the end

    budget = found["lm_calls"] + 2
    stopped = compile_with(budget)
    assert stopped.partial is True and stopped.compile_calls <= budget
    assert stopped.zero_shot_kept is False
    assert stopped.compiled["score"] == pytest.approx(found["score"], abs=1e-4)
    assert stopped.compiled["score"] > stopped.baseline["score"]
    assert any(MARK in text for text in instructions(stopped.program_path))
    meta = json.loads(Path(stopped.program_path).with_suffix(".meta.json").read_text())
    assert meta["partial"] is True and meta["compile"]["best_found_at"] == found


def test_a_budget_spent_before_any_candidate_keeps_the_zero_shot_program(tmp_path):
    pytest.importorskip("optuna")
    with FakeOpenAIServer(FakeConfig(output_words=15), responder=ArgalignResponder(improving)) as server:
        settings = settings_for(tmp_path / "s.json", server.url)
        stopped = run_optimize(dataclasses.replace(SPEC, budget_calls=2), settings)
    assert stopped.partial is True and stopped.zero_shot_kept is True
    assert stopped.compiled == stopped.baseline
    assert not any(MARK in text for text in instructions(stopped.program_path))


# --- the tracker, through dspy.Evaluate --------------------------------------------------------

class Echo(dspy.Module):
    """No LM: returns the row with a marker; ``fail`` makes it raise."""

    def __init__(self, marker: str = "", fail: bool = False):
        super().__init__()
        self.predict = dspy.Predict("row -> answer")
        self.marker, self.fail = marker, fail

    def forward(self, row):
        if self.fail:
            raise RuntimeError("stopped")
        return dspy.Prediction(row={**row, "marker": self.marker})


def metric(example, prediction, trace=None):
    value = {"": 0.2, "good": 0.8, "bad": 0.1}[prediction.row["marker"]]
    return dspy.Prediction(score=value, forward=value, backward=value, coherence=None,
                           outcome=Outcome.ALIGNED, gate="pass", codes=[], feedback="")


def examples(ids):
    return [dspy.Example(id=i, row={"k": i}, mode="B").with_inputs("row") for i in ids]


def evaluate(program, devset):
    evaluator = dspy.Evaluate(devset=devset, metric=metric, num_threads=1, failure_score=0.0,
                              display_progress=False, max_errors=10, provide_traceback=False)
    return evaluator(program)


def test_the_tracker_keeps_only_better_programs_scored_on_the_whole_valset():
    valset = examples(["v1", "v2"])
    zero = Echo()
    start = Candidate(zero, 0.2, [])
    tracker = CandidateTracker(valset, start)
    good = Echo("good")
    good.predict.signature = good.predict.signature.with_instructions("better")
    bad = Echo("bad")
    bad.predict.signature = bad.predict.signature.with_instructions("worse")
    with dspy.context(callbacks=[tracker]):
        evaluate(zero, valset)  # the zero-shot program again: not a candidate
        evaluate(good, examples(["t1", "t2"]))  # a training minibatch: not a candidate
        assert tracker.best is start and tracker.history == []
        evaluate(bad, valset)
        assert tracker.best is start and [h["score"] for h in tracker.history] == [0.1]
        evaluate(good, valset)
        best = tracker.best
        assert program_key(best.program) == program_key(good) and best.score == 0.8
        assert best.program is not good  # a copy: the optimizer may change its own afterwards
        assert best.found_at == tracker.history[-1]
        assert [r["id"] for r in best.rows] == ["v1", "v2"]
        assert all(r["outcome"] == "aligned" for r in best.rows)
        broken = Echo("good", fail=True)
        broken.predict.signature = broken.predict.signature.with_instructions("broken")
        evaluate(broken, valset)  # every example failed: scores 0, not better
    assert tracker.best is best and [h["score"] for h in tracker.history] == [0.1, 0.8, 0.0]


# --- the Teleprompter shape: compile(student, trainset=, valset=) returns the program ----------

class Markers(Optimizer):
    """Scores one candidate per marker, in order; ``stop_after`` raises StopCompile then."""

    def __init__(self, markers, stop_after=None, **kwargs):
        super().__init__(metric, SPEC, **kwargs)
        self.markers, self.stop_after = markers, stop_after

    def search(self, student, trainset, valset):
        for k, marker in enumerate(self.markers):
            if k == self.stop_after:
                raise StopCompile("budget used up")
            candidate = Echo(marker)
            candidate.predict.signature = candidate.predict.signature.with_instructions(marker)
            self.score_on_valset(candidate, valset)
        self.notes["searched"] = len(self.markers)


def test_every_optimizer_is_a_dspy_teleprompter():
    assert all(issubclass(kind, dspy.teleprompt.Teleprompter) for kind in OPTIMIZERS.values())


def test_compile_returns_the_best_program_and_reports_how_it_was_found():
    train, val = examples(["t1"]), examples(["v1", "v2"])
    optimizer = Markers(["bad", "good", "bad"], lm_calls=lambda: 7)
    program = optimizer.compile(Echo(), trainset=train, valset=val)
    assert program(row={"k": 1}).row["marker"] == "good"
    report = optimizer.report
    assert report.best.program is program and report.best.score == 0.8
    assert report.stopped is False and report.notes == {"searched": 3}
    assert report.candidates == [{"score": 0.1, "lm_calls": 7}, {"score": 0.8, "lm_calls": 7},
                                 {"score": 0.1, "lm_calls": 7}]


def test_compile_scores_the_student_first_unless_a_baseline_is_given():
    val = examples(["v1", "v2"])
    student = Echo()
    # Scored first: the zero-shot marker scores 0.2, above every candidate.
    assert Markers(["bad"]).compile(student, trainset=val) is student
    # Given a baseline below the candidates, the candidate wins.
    low = Candidate(student, 0.0, [])
    program = Markers(["bad"]).compile(student, trainset=val, valset=val, baseline=low)
    assert program is not student and program(row={}).row["marker"] == "bad"


def test_a_stopped_compile_returns_the_best_candidate_found_before_the_stop():
    val = examples(["v1", "v2"])
    optimizer = Markers(["good", "bad", "good"], stop_after=1)
    program = optimizer.compile(Echo(), trainset=val, valset=val,
                                baseline=Candidate(Echo(), 0.2, []))
    assert program(row={}).row["marker"] == "good"
    assert optimizer.report.stopped is True and optimizer.report.notes == {}
    assert [c["score"] for c in optimizer.report.candidates] == [0.8]


def test_compile_refuses_an_empty_trainset():
    from argalign.core.errors import ConfigError

    with pytest.raises(ConfigError, match="needs training examples"):
        Gold(metric, SPEC).compile(Echo(), trainset=[], valset=examples(["v1"]))


# --- MIPROv2's private hook, pinned --------------------------------------------------------------

class Counting(dspy.Module):
    """Records each row it runs on in RAN (its copies too, which MIPROv2 runs); no LM."""

    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict("row -> answer")

    def forward(self, row):
        RAN.append(row["k"])
        return dspy.Prediction(row=row, answer="a")


RAN: list[str] = []


class HookReached(Exception):
    pass


def test_mipro_v2_still_aligns_training_examples_to_show_demos_when_no_demos_are_wanted():
    """The DSPy behaviour `_InstructionProposals` replaces: with no demos wanted, MIPROv2's
    first step still runs the program on training examples. When DSPy stops doing that, the
    override can go."""
    from dspy.utils import DummyLM

    RAN.clear()
    student = Counting()
    mipro = dspy.MIPROv2(metric=lambda *a, **k: 1.0, prompt_model=DummyLM([]),
                         task_model=DummyLM([]), auto=None, num_candidates=3,
                         max_bootstrapped_demos=0, max_labeled_demos=0, num_threads=1)
    mipro.rng = __import__("random").Random(0)
    mipro._bootstrap_fewshot_examples(student, examples(["t1", "t2", "t3"]), 0, None,
                                      num_fewshot_candidates=3, max_bootstrapped_demos=0,
                                      max_labeled_demos=0, max_errors=10, metric_threshold=None)
    assert set(RAN) & {"t1", "t2", "t3"}


def test_mipro_v2_compile_reaches_the_hook_that_instruction_proposals_override():
    """If DSPy renames or stops calling the hook, the override would silently do nothing."""
    from dspy.utils import DummyLM

    class Probe(dspy.MIPROv2):
        def _bootstrap_fewshot_examples(self, *args, **kwargs):
            raise HookReached

    assert "_bootstrap_fewshot_examples" in _InstructionProposals.__dict__
    RAN.clear()
    student = Counting()
    probe = Probe(metric=lambda *a, **k: 1.0, prompt_model=DummyLM([]), task_model=DummyLM([]),
                  auto=None, num_candidates=2, max_bootstrapped_demos=0, max_labeled_demos=0,
                  num_threads=1)
    with pytest.raises(HookReached):
        probe.compile(student, trainset=examples(["t1", "t2"]), valset=examples(["v1"]),
                      num_trials=2, minibatch=False)
    assert RAN == []
    assert _InstructionProposals._bootstrap_fewshot_examples(probe, student) is None


def test_gepa_reflects_on_the_codes_of_conversations_the_program_gave_up_on(tmp_path):
    """An 800-word opening is too long, so every attempt fails; the reflection prompt still
    shows why (the module returns the failure instead of raising it)."""
    reflections: list[str] = []

    def respond(fields, messages):
        values = default_responder(fields, messages, words=800)
        proposal = [name for name in fields if "instruction" in name]
        if proposal:  # DSPy's GEPA asks its reflection model through a signature
            reflections.append("\n".join(str(m.get("content")) for m in messages))
            values[proposal[0]] = "Keep the opening to one or two sentences."
        return values

    with FakeOpenAIServer(FakeConfig(), responder=ArgalignResponder(respond)) as server:
        result = run_optimize(dataclasses.replace(SPEC, optimizer="gepa", budget_calls=60),
                              settings_for(tmp_path / "s.json", server.url))
    assert result.baseline["invariant_pass_rate"] == 0.0  # the module gave up on every row
    assert reflections, "GEPA made no reflection call"
    assert all("FIELD_TOO_LONG" in prompt for prompt in reflections)
    assert "No aligned row was produced" in reflections[0]
    # The code comes with its meaning, and the meta keeps what the reflection read and wrote.
    assert "What the codes mean" in reflections[0]
    assert "FIELD_TOO_LONG: an output field is longer than allowed" in reflections[0]
    kept = result.meta["compile"]["reflections"]
    assert kept and "FIELD_TOO_LONG" in kept[-1]["prompt_tail"]
    assert "Keep the opening to one or two sentences." in kept[-1]["reply"]


# --- bootstrap: demos from the rewrites that gained most ------------------------------------------

class OneCall(dspy.Module):
    """One predictor call per example, then the row back with the example's key."""

    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict("request -> answer")

    def forward(self, row):
        self.predict(request=row["k"])
        return dspy.Prediction(row={**row, "rewritten": True})


class ByKey:
    """Scores an original by its key (what it was before the rewrite)."""

    originals = {"clear": 0.9, "vague": 0.1, "bad": 0.5}

    def score(self, row):
        value = self.originals[row["k"]]
        return dspy.Prediction(score=value)


def test_bootstrap_ranks_train_rewrites_by_their_gain_over_the_original():
    from dspy.utils import DummyLM

    after = {"clear": 0.95, "vague": 0.8, "bad": 0.0}

    class ByGate:
        """A metric whose scorer scores originals by key; the ``bad`` rewrite fails a check."""

        scorer = ByKey()

        def __call__(self, example, prediction, trace=None, pred_name=None, pred_trace=None):
            outcome = Outcome.REJECTED if example.row["k"] == "bad" else Outcome.ALIGNED
            return dspy.Prediction(score=after[example.row["k"]], outcome=outcome)

    train = [dspy.Example(id=k, row={"k": k}, mode="B").with_inputs("row")
             for k in ("clear", "vague", "bad")]
    with dspy.context(lm=DummyLM([{"answer": f"answer {k}"} for k in ("c", "v", "b")])):
        ranked = Bootstrap(ByGate(), SPEC).rewrites(train, OneCall())
    # The vague request made explicit gained 0.7, the clear one 0.05; the rejected one is out.
    assert [(i, round(g, 2), s) for (g, s), i, _ in ranked] == [("vague", 0.7, 0.8),
                                                               ("clear", 0.05, 0.95)]
    demo = ranked[0][2]["predict"]
    assert (demo.request, demo.answer) == ("vague", "answer v")
