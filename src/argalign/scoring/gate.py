"""The gate: the one decision on a rewrite, from the invariants and the quality checks.

Input: an original row, what a mode program returned (a row, or None when it produced
nothing) and the mode. Output: a :class:`Verdict` whose ``outcome`` is an
:class:`~argalign.core.records.Outcome`: ``failed``, ``rejected``, ``unchanged`` or ``aligned``.
Aligning, validating, cleaning and the metric all ask it, so that each reports the same
outcome for the same rewrite. It sits above :mod:`argalign.scoring.invariants` and
:mod:`argalign.scoring.checks` and asks both; nothing here imports DSPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from argalign.core.policies import DEFAULT_MAX_USER_CHANGE
from argalign.core.records import Outcome, Violation
from argalign.scoring.checks import check_quality, trivial_change
from argalign.scoring.invariants import check_row, is_unchanged


@dataclass(frozen=True)
class Verdict:
    """What :func:`gate` decided, with the violations behind a rejection, or why a changed
    rewrite still counts as unchanged (``detail``)."""

    outcome: Outcome
    violations: list[Violation] = field(default_factory=list)
    detail: str = ""

    @property
    def codes(self) -> list[str]:
        return sorted({v.code for v in self.violations})

    def reason(self, limit: int = 5) -> str:
        """The first violations, one ``CODE@index: detail`` each, or the verdict's detail."""
        if not self.violations:
            return self.detail
        return "; ".join(f"{v.code}@{v.message_index}: {v.detail}" for v in self.violations[:limit])


def gate(original: dict[str, Any], aligned: Any, mode: str, *,
         max_user_change: int = DEFAULT_MAX_USER_CHANGE, quality: bool = True) -> Verdict:
    """The one decision on a rewrite: failed (no row), rejected, unchanged or aligned.

    A rewrite is rejected when it breaks a hard invariant or, with ``quality``, fails a
    quality check (:mod:`argalign.scoring.checks`: a leaked placeholder, a dropped plan, ...). A rewrite
    that changed only whitespace, or every field of it trivially (a word swapped, a sentence
    dropped: :func:`argalign.scoring.checks.trivial_change`), is unchanged.
    """
    if aligned is None:
        return Verdict(Outcome.FAILED)
    violations = check_row(original, aligned, mode, max_user_change=max_user_change)
    if violations:
        return Verdict(Outcome.REJECTED, violations)
    if is_unchanged(original, aligned):
        return Verdict(Outcome.UNCHANGED)
    trivial = trivial_change(original, aligned, mode)
    if trivial:
        return Verdict(Outcome.UNCHANGED, detail=trivial)
    if quality:
        findings = check_quality(original, aligned, mode)
        if findings:
            return Verdict(Outcome.REJECTED, [Violation(f.code, f.message_index, f.detail)
                                              for f in findings])
    return Verdict(Outcome.ALIGNED)
