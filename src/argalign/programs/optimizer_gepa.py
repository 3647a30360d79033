"""The ``gepa`` optimizer: GEPA, whose reflection model reads the metric's feedback (the
quality-check codes and the judge's readings) and rewrites the instructions."""

from __future__ import annotations

import dspy

from argalign.core.errors import ConfigError
from argalign.programs.optimizer import Optimizer


class Gepa(Optimizer):
    """GEPA: the reflection model rewrites instructions from the metric's feedback."""

    uses_reflection = True
    reflection_minibatch_size = 2  # examples per reflection: each shows a whole turn

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        if self.reflection_lm is None:
            raise ConfigError("--optimizer gepa needs a reflection model")
        # Per metric call: the alignment (one LM call for most rows, the first thinking of a
        # turn; a vague request adds one) and the judge's readings of the row. The call budget
        # itself is enforced per call; this only sizes GEPA's own cap.
        calls_per_eval = 1 + getattr(self.metric, "calls_per_turn", 0)
        max_metric_calls = max(len(valset) + 1, (self.spec.budget_calls or 400) // calls_per_eval)
        optimizer = dspy.GEPA(metric=self.metric, reflection_lm=self.reflection_lm,
                              max_metric_calls=max_metric_calls, num_threads=1,
                              reflection_minibatch_size=self.reflection_minibatch_size,
                              seed=self.spec.seed, track_stats=False)
        try:
            optimizer.compile(self.starting_program(student), trainset=trainset, valset=valset)
        finally:  # also when the budget stops GEPA: what its reflection read and proposed
            self.notes["reflections"] = reflections(self.reflection_lm)


def reflections(lm: dspy.BaseLM, limit: int = 3, chars: int = 4000) -> list[dict[str, str]]:
    """The last reflections of an LM: the end of each prompt (where the examples' inputs,
    outputs and feedback are) and the reply, shortened."""
    out = []
    for entry in list(getattr(lm, "history", None) or [])[-limit:]:
        messages = entry.get("messages") or [{"content": entry.get("prompt") or ""}]
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        reply = (entry.get("outputs") or [""])[0]
        out.append({"prompt_tail": prompt[-chars:],
                    "reply": str(reply.get("text") if isinstance(reply, dict) else reply)[:chars]})
    return out
