"""The alignment modes: one module per mode on the shared base (:mod:`argalign.modes.base`),
and the registry :data:`MODES` that the CLI's choices, the run's plan and the optimizer read.

A new mode (Mode C) is one new module here, a subclass of
:class:`~argalign.modes.base.AlignConversation`, plus its line in :data:`MODES` and its user-change
policy in :data:`argalign.core.policies.USER_CHANGE` (kept apart so that checking a row needs no
DSPy). Runs that name no modes take it only once it is added to
:data:`argalign.core.defaults.DEFAULT_MODES`.
"""

from __future__ import annotations

from argalign.core.defaults import DEFAULT_THINKING
from argalign.modes.base import THINKING_SCOPES as THINKING_SCOPES  # the CLI reads it here
from argalign.modes.base import AlignConversation
from argalign.modes.mode_a import ModeA
from argalign.modes.mode_b import ModeB

MODES: dict[str, type[AlignConversation]] = {"A": ModeA, "B": ModeB}


def make_mode(mode: str, *, thinking: str = DEFAULT_THINKING, attempts: int = 3,
              retry_temperature: float = 0.9) -> AlignConversation:
    """The zero-shot program of a registered mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return MODES[mode](thinking=thinking, attempts=attempts, retry_temperature=retry_temperature)
