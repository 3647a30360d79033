"""Records that cross modules: how an example ended, what a rewrite broke, why a row was set aside.

:class:`Outcome` is the one vocabulary of how an example ended, from the gate
(:mod:`argalign.scoring.gate`) to the result record, the metric, the summaries and the reports: no other
module spells an outcome word (``tests/test_outcome_words.py``). :class:`Violation` is one broken
invariant or failed quality check (:mod:`argalign.scoring.invariants`, :mod:`argalign.scoring.checks`).
:class:`ResultRecord` is written by ``align`` and ``run`` (one per example) and read by
``merge``, ``clean``, the run report and ``publish``, each line through
:meth:`ResultRecord.read`, the one check of its shape. :class:`Reject` is the one shape of every
rejects file (``prepare``, ``clean``, ``export``). Codes are those of :mod:`argalign.core.codes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

from argalign.core.errors import RowError, RunError


class Outcome(str, Enum):
    """How one example ended; every input row ends in exactly one.

    A ``str``, so it equals its word and files hold the word (``"aligned"``); ``str()`` and
    f-strings give the word too.
    """

    ALIGNED = "aligned"  # changed, and within every invariant
    UNCHANGED = "unchanged"  # identical to the original: not a success
    FAILED = "failed"  # no aligned row was produced
    REJECTED = "rejected"  # malformed input, or the rewrite broke an invariant
    # the acceptance gate (on by default): no rewrite scored --accept-margin above the original
    NOT_IMPROVED = "not_improved"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, word: Any) -> Outcome:
        """The outcome a file names; ValueError naming the word and the known ones otherwise."""
        try:
            return cls(word)
        except ValueError:
            raise ValueError(f"'outcome' must be one of {', '.join(OUTCOMES)}, got {word!r}"
                             ) from None


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
# What clean counts besides the outcomes: a raw row without a result in the merged file. Not an
# outcome (no run ends in it), so a result record never holds it.
MISSING = "missing"


class Rejection(Enum):
    """Why the gate turned a rewrite away (both end ``rejected``): the metric tells GEPA's
    reflection which, and writes it under ``gate`` (:func:`gate_word`)."""

    INVARIANT = "invariant"  # a hard invariant broken (argalign.scoring.invariants)
    CHECK = "check"  # a quality check failed (argalign.scoring.checks)


def gate_word(outcome: Outcome | None, rejection: Rejection | None = None) -> str:
    """The word score components hold under ``gate`` (a stable file format, spelled as the
    metric always has) for a gate's outcome: ``baseline`` (None: scored as it stands, not
    gated), ``pass``, ``unchanged``, ``check`` (a quality check failed) or ``violation``."""
    if outcome is None:
        return "baseline"
    if outcome is Outcome.ALIGNED:
        return "pass"
    if outcome is Outcome.UNCHANGED:
        return outcome.value
    return "check" if rejection is Rejection.CHECK else "violation"


@dataclass(frozen=True)
class Violation:
    """One broken invariant or failed quality check: its code, the message concerned (None for
    the row as a whole) and what was found."""

    code: str
    message_index: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _json_kind(value: Any) -> str:
    """What a JSON value is, for a message: ``a number``, ``a list``, ``null``."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else "a boolean"
    return {int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), f"a {type(value).__name__}")


@dataclass
class ResultRecord:
    """One example's result: where it came from, how it ended, what it cost, the aligned row.

    ``outcome`` is an :class:`Outcome` (its word in the JSON line). ``row`` is the aligned row
    for ``aligned`` and ``unchanged``, else None. ``scores`` (when
    the run scored) holds the metric components of the original (``baseline``) and of the
    aligned row. ``acceptance`` (when the acceptance gate ran) holds the gate's attempts, their
    scores and what they cost (:mod:`argalign.programs.accept`). ``run`` and ``model_string`` are set
    by the batch runner.
    """

    id: Any
    source_id: Any = None
    config: str = ""
    split: str = ""
    index: int = -1
    mode: str = ""
    model: str = ""
    program: str = ""
    outcome: Outcome = Outcome.FAILED
    reason: str = ""
    codes: list[str] = field(default_factory=list)
    attempts: int = 0
    retries: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    scores: dict[str, Any] | None = None
    acceptance: dict[str, Any] | None = None
    row: dict[str, Any] | None = None
    run: str | None = None
    model_string: str | None = None

    # What failures.jsonl keeps of a failed or rejected example (no row).
    FAILURE_FIELDS: ClassVar[tuple[str, ...]] = (
        "id", "source_id", "config", "split", "index", "mode", "model", "program", "outcome",
        "codes", "reason", "retries", "attempts")
    # What a cleaned row carries about how it was made (``scores`` added when present).
    PROVENANCE_FIELDS: ClassVar[tuple[str, ...]] = (
        "mode", "model", "program", "outcome", "attempts", "input_tokens", "output_tokens",
        "latency_s")
    _OPTIONAL: ClassVar[frozenset[str]] = frozenset({"scores", "acceptance", "run",
                                                     "model_string"})

    def __post_init__(self) -> None:
        self.outcome = Outcome.parse(self.outcome)  # a word read back becomes its Outcome

    @classmethod
    def failure(cls, *, code: str, reason: str, outcome: Outcome = Outcome.FAILED,
                **where: Any) -> ResultRecord:
        """A record without a row: ``failed`` (the LM or the run) or ``rejected`` (the input)."""
        return cls(outcome=outcome, codes=[code], reason=reason, **where)

    @staticmethod
    def problem(record: Any) -> str | None:
        """Why a line read back from a result or merged file is no result record (None: it is)."""
        if not isinstance(record, dict):
            return f"{_json_kind(record)}, not a result record"
        if not isinstance(record.get("id"), str):
            return f"'id' must be a string, got {record.get('id')!r}"
        outcome, row = record.get("outcome"), record.get("row")
        try:
            Outcome.parse(outcome)
        except ValueError as e:
            return str(e)
        if outcome in (Outcome.ALIGNED, Outcome.UNCHANGED) and not isinstance(row, dict):
            return f"an {outcome!r} record needs its row (an object), got {row!r}"[:200]
        if row is not None and not isinstance(row, dict):
            return f"'row' must be an object or null, got {_json_kind(row)}"
        codes = record.get("codes")
        if codes is not None and not (isinstance(codes, list)
                                      and all(isinstance(c, str) for c in codes)):
            return f"'codes' must be a list of strings, got {codes!r}"[:200]
        reason = record.get("reason")
        if reason is not None and not isinstance(reason, str):
            return f"'reason' must be a string, got {_json_kind(reason)}"
        return None

    @classmethod
    def check(cls, record: Any, *, where: str) -> dict[str, Any]:
        """The line itself if it is a result record, else RunError naming ``where`` (``file:line``)."""
        problem = cls.problem(record)
        if problem is not None:
            raise RunError(f"{where}: {problem}; the file is corrupt")
        return record

    @classmethod
    def read(cls, record: Any, *, where: str) -> ResultRecord:
        """A record read back from a file, checked first (:meth:`check`)."""
        return cls.from_dict(cls.check(record, where=where))

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> ResultRecord:
        """A record read back from a file; unknown keys are left out, missing ones defaulted.
        RunError for an outcome that is no :class:`Outcome`."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in record.items() if k in known})
        except ValueError as e:
            raise RunError(f"result {record.get('id')!r}: {e}") from None

    def _json(self, names: Iterable[str]) -> dict[str, Any]:
        """The named fields as JSON values (the outcome as its word)."""
        out = {name: getattr(self, name) for name in names}
        if "outcome" in out:
            out["outcome"] = self.outcome.value
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON line; ``scores``, ``acceptance``, ``run`` and ``model_string`` only when set."""
        out = self._json(f.name for f in fields(self))
        return {k: v for k, v in out.items() if not (k in self._OPTIONAL and v is None)}

    def failure_view(self) -> dict[str, Any]:
        out = self._json(self.FAILURE_FIELDS)
        if self.scores is not None:  # a not_improved example: both scores say why
            out["scores"] = self.scores
        return out

    def provenance(self) -> dict[str, Any]:
        out = self._json(self.PROVENANCE_FIELDS)
        if self.scores is not None:
            out["scores"] = self.scores
        return out


@dataclass
class Reject:
    """A row set aside and why: every rejects file holds lines of this one shape.

    ``stage`` is the step that set it aside (``prepare``, ``run``, ``clean``, ``export``);
    ``outcome`` is ``rejected`` except in ``clean``, which also sets aside rows that ended
    ``unchanged``, ``failed`` or ``missing``. ``where`` is ``file:line`` when a line is known;
    ``row`` is the row as read when nothing else keeps it (prepare), and ``line`` the start of
    a line that was not JSON.
    """

    stage: str
    id: Any
    codes: list[str]
    reason: str
    outcome: str = Outcome.REJECTED.value
    config: str | None = None
    split: str | None = None
    index: int | None = None
    where: str | None = None
    message_index: int | None = None
    mode: str | None = None
    model: str | None = None
    run_outcome: str | None = None
    row: Any = None
    line: str | None = None
    line_truncated: bool | None = None

    @classmethod
    def from_error(cls, error: RowError, *, stage: str, **context: Any) -> Reject:
        return cls(stage=stage, id=error.row_id, codes=[error.code], reason=error.problem,
                   message_index=error.message_index, **context)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
