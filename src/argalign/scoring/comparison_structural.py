"""The ``structural`` comparison: labels read by rules, no LM.

With R the labels the request names, D the response's main task and features, E = D plus the
method its plan names: F = |R∩D| / |D|; B = |R∩E| / |R|; C = plan(t) · ½ ([ℓ named by the
frame] + Jaccard of the task labels the frame and the request name).
"""

from __future__ import annotations

from argalign.core.deliverables import asked, requested
from argalign.scoring.comparison import (
    Comparison,
    Parts,
    ThinkingView,
    TurnView,
    instructions_of,
    mean_coherence,
)


class StructuralComparison(Comparison):
    """Labels read by rules from the request, the answer's markup and the thinking's steps."""

    name = "structural"

    def parts(self, view: TurnView) -> Parts:
        named = requested(instructions_of(view.request))
        what = view.delivered
        expectable, everything = what.expectable, what.everything
        forward = len(named & expectable) / len(expectable) if expectable else None
        backward = len(named & everything) / len(named) if named else 0.0

        def thinking(t: ThinkingView) -> tuple[float, float, str]:
            prose = asked(t.prose)
            connects = len(prose & expectable) / len(expectable) if expectable else 0.0
            return (1.0 if what.task and what.task in asked(t.frame) else 0.0, connects,
                    f"the thinking's own prose names {sorted(prose & expectable) or 'nothing'} "
                    f"of {sorted(expectable)}")

        coherence, notes = mean_coherence(view, thinking)
        missing = sorted(expectable - named)
        notes.insert(0, f"the request names {sorted(named) or 'nothing'}; the response delivers "
                        f"{sorted(what.deliverables) or 'nothing the rules recognise'} by way of "
                        f"{sorted(what.major_methods) or 'no major method'}"
                        + (f"; a reader of the request cannot expect {missing}" if missing else "")
                        + (f"; the request asks for {sorted(named - everything)}, which the "
                           f"response does not do" if named - everything else ""))
        return Parts(forward, backward, coherence, "; ".join(notes))
