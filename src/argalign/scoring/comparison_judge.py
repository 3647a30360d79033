"""The ``judge`` comparison: readings by the judge model, scored from its token probabilities.

F = P_request(ℓ); B = ⟨P_response, P_request⟩; C = plan(t) · ½ (P_thinking(ℓ) + ⟨P_thinking,
P_request⟩) (the notation is :mod:`argalign.scoring.metrics`'s).
"""

from __future__ import annotations

from argalign.core.deliverables import TASKS, Delivered
from argalign.scoring.comparison import Comparison, Parts, ThinkingView, TurnView, mean_coherence
from argalign.scoring.judge import METHOD_OPTIONS, Judge


def _inner(p: dict[str, float], q: dict[str, float]) -> float:
    return sum(p[k] * q.get(k, 0.0) for k in p)


def _mass(p: dict[str, float], labels: set[str] | frozenset[str]) -> float:
    return sum(v for k, v in p.items() if k in labels)


def method_target(what: Delivered) -> frozenset[str]:
    """The options of the method reading that fit a response: its plan's major methods, or,
    for a plan without one, no analysis or a light one."""
    return what.major_methods & set(METHOD_OPTIONS) or frozenset(("none", "gist"))


def _top(p: dict[str, float]) -> str:
    label = max(p, key=p.get)
    return f"{label} {p[label]:.2f}"


class JudgeComparison(Comparison):
    """Readings by the judge model, scored from its token probabilities.

    The four ``*_value`` methods are the formula (see the module docstring); a variant of the
    comparison overrides them and keeps the readings.
    """

    name = "judge"
    uses_lm = True
    calls_per_turn = 4

    def __init__(self, judge: Judge | None = None):
        self.judge = judge or Judge()

    def forward_value(self, p_request: dict[str, float], task: str, what: Delivered,
                      p_method: dict[str, float] | None = None) -> float:
        """½ P_request(what the response delivers) + ½ P_method(how far its plan goes)."""
        delivered_part = _mass(p_request, {task} | (what.expectable & set(TASKS)))
        if p_method is None:
            return delivered_part
        return 0.5 * delivered_part + 0.5 * _mass(p_method, method_target(what))

    def backward_value(self, p_response: dict[str, float], p_request: dict[str, float]) -> float:
        return _inner(p_response, p_request)

    def leads_value(self, p_thinking: dict[str, float], task: str, what: Delivered) -> float:
        return _mass(p_thinking, {task} | (what.expectable & set(TASKS)))

    def follows_value(self, p_thinking: dict[str, float], p_request: dict[str, float]) -> float:
        return _inner(p_thinking, p_request)

    def parts(self, view: TurnView) -> Parts:
        p_request = self.judge.read("request", view.request)
        p_method = self.judge.read("method", view.request)
        p_response = self.judge.read("response", view.response)
        what = view.delivered
        task = what.task or max(p_response, key=p_response.get)
        forward = self.forward_value(p_request, task, what, p_method)
        backward = self.backward_value(p_response, p_request)
        def thinking(t: ThinkingView) -> tuple[float, float, str]:
            p_thinking = self.judge.read("thinking", t.frame)
            return (self.leads_value(p_thinking, task, what),
                    self.follows_value(p_thinking, p_request),
                    f"a reader of the thinking's opening and closing expects {_top(p_thinking)}")

        coherence, notes = mean_coherence(view, thinking)
        target = method_target(what)
        notes.insert(0, f"the response delivers {task}; a reader of the request expects "
                        f"{_top(p_request)} (P({task}) = {p_request[task]:.2f}) and as the "
                        f"deepest analysis {_top(p_method)} (P({'/'.join(sorted(target))}) = "
                        f"{_mass(p_method, target):.2f}); a reader of the response infers a "
                        f"request for {_top(p_response)}")
        return Parts(forward, backward, coherence, "; ".join(notes))
