"""What each mode may change in a user message: the one registry the checks and the modes share.

A mode's policy is a :class:`UserChange`, declared in :data:`USER_CHANGE` under the mode's name
(the same name as in :data:`argalign.modes.MODES`). The hard invariants
(:mod:`argalign.scoring.invariants`) and the quality checks (:mod:`argalign.scoring.checks`) read it here, so
that checking a row imports no DSPy program; the Mode B program appends its clarification with
:data:`CLARIFICATION_SEPARATOR` and within :data:`DEFAULT_MAX_USER_CHANGE`. This module imports
nothing of argalign.
"""

from __future__ import annotations

from enum import Enum

# Mode B keeps the user message and may append one clarification of at most this many
# characters (one or two sentences); the Mode B module caps its own at the same number.
DEFAULT_MAX_USER_CHANGE = 200
CLARIFICATION_SEPARATOR = "\n\n"


class UserChange(str, Enum):
    """How far a mode may change a user message (the source text stays verbatim in both)."""

    FREE = "free"  # any rewrite of the instructions
    # the original content unchanged, then at most one appended clarification: a blank line
    # and one line of at most ``max_user_change`` characters
    # (see :func:`argalign.scoring.invariants.appended_clarification`)
    APPEND = "append"


# A new mode is one line here beside its class and its line in argalign.modes.MODES.
USER_CHANGE: dict[str, UserChange] = {"A": UserChange.FREE, "B": UserChange.APPEND}


def user_change_policy(mode: str) -> UserChange | None:
    """The registered mode's policy for user messages; None for an unknown mode."""
    return USER_CHANGE.get(mode)
