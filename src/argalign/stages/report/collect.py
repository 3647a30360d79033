"""Everything the report says about a run, read from its files in one pass.

Input: a data folder and a run (``runs/<run>/results`` and the raw subsets it aligned).
Output: a :class:`RunView`: one compact row per example for the page (kept as JSON text, so a
large run is not held twice) (provenance, outcome, codes, scores, cost, the diff parts of
:mod:`argalign.stages.report.diff`) and, for each example with an aligned row, both rows for the
curator's labels (:func:`label_pair`); the before/after table
(:mod:`argalign.scoring.scoreboard`), outcome counts per (config, split), code counts, the LM's and the
judge's calls, tokens and time, and the scores the plots draw. Originals are read from the raw
files by offset, one at a time. Ids without a result are counted as ``missing``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from argalign.core.datadir import DataDir
from argalign.core.records import Outcome, ResultRecord
from argalign.scoring.scoreboard import PARTS, Scoreboard, pair
from argalign.stages.merge import find_run, run_subsets
from argalign.stages.report.diff import conversation_parts
from argalign.stages.run.store import index_raw, iter_results, read_example


@dataclass
class Usage:
    """Calls, tokens and seconds, of the aligning LM and of the judge."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    judge_calls: int = 0
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_seconds: float = 0.0

    def add(self, record: ResultRecord) -> None:
        self.calls += int(record.calls or 0)
        self.input_tokens += int(record.input_tokens or 0)
        self.output_tokens += int(record.output_tokens or 0)
        self.seconds += float(record.latency_s or 0.0)
        usage = record.scores.get("usage") if isinstance(record.scores, dict) else None
        if isinstance(usage, dict):
            self.judge_calls += int(usage.get("calls") or 0)
            self.judge_input_tokens += int(usage.get("input_tokens") or 0)
            self.judge_output_tokens += int(usage.get("output_tokens") or 0)
            self.judge_seconds += float(usage.get("seconds") or 0.0)


@dataclass
class RunView:
    run: str
    rows: list[str] = field(default_factory=list)  # page rows, each as script-safe JSON
    pairs: list[str] = field(default_factory=list)  # label_pair()s, by the rows' "pair" index
    board: Scoreboard = field(default_factory=Scoreboard)
    subsets: dict[str, Counter] = field(default_factory=dict)  # "config/split" -> outcomes
    codes: Counter = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    # (kind, name) -> ([before], [after]) of the aligned, scored rows: what the plots draw
    scores: dict[tuple[str, str], tuple[list[float], list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: ([], [])))

    @property
    def examples(self) -> int:
        return sum(sum(c.values()) for c in self.subsets.values())


def record_codes(record: ResultRecord) -> list[str]:
    """The record's codes, then those the gated metric found on the aligned row."""
    codes = list(record.codes or [])
    aligned = record.scores.get(Outcome.ALIGNED) if isinstance(record.scores, dict) else None
    if isinstance(aligned, dict):
        codes += [c for c in aligned.get("codes") or [] if c not in codes]
    return codes


def page_row(record: ResultRecord, original: dict[str, Any] | None) -> dict[str, Any]:
    """What the page keeps of one example (short keys: the page holds thousands)."""
    row: dict[str, Any] = {
        "id": str(record.id), "config": record.config, "split": record.split,
        "mode": record.mode, "model": record.model, "program": record.program,
        "outcome": record.outcome.value, "codes": record_codes(record), "reason": record.reason,
        "attempts": record.attempts, "retries": list(record.retries or []),
        "u": {"calls": record.calls, "in": record.input_tokens, "out": record.output_tokens,
              "s": record.latency_s},
    }
    scores = record.scores if isinstance(record.scores, dict) else None
    if scores and "error" in scores:
        row["score_error"] = str(scores["error"])
    elif scores:
        row["s"] = {part: list(found) for part in PARTS if (found := pair(scores, part)) is not None}
        usage = scores.get("usage")
        if isinstance(usage, dict):
            row["u"]["judge"] = usage.get("calls")
            row["u"]["js"] = usage.get("seconds")
    if original is not None:
        row["msgs"] = conversation_parts(original, record.row)
    return row


LINE_END = re.compile(r"(?<=\n)")  # split after each newline, keeping it (as the page's script)


def line_edit(before: str, after: str) -> list[str | list[int]]:
    """``after`` as pieces: ``[i, j]`` for lines i to j of ``before`` (each with its newline), or
    new text. Joined in order they give ``after`` back."""
    old, new = LINE_END.split(before), LINE_END.split(after)
    ops = difflib.SequenceMatcher(None, old, new).get_opcodes()
    pieces = [[i1, i2] if tag == "equal" else "".join(new[j1:j2]) for tag, i1, i2, j1, j2 in ops]
    return [piece for piece in pieces if piece != ""]


def label_pair(original: dict[str, Any], aligned: dict[str, Any]) -> dict[str, Any]:
    """Both rows of a conversation, for a curator's label: the original whole, and the aligned
    row as ``edits`` (per message, the text fields it changed, each as a :func:`line_edit`) when
    only text changed, else whole (``aligned``). A rewrite keeps most of a row (the source text,
    the middle of a thinking, the answer), so the page holds little more than the original."""
    before, after = original.get("messages"), aligned.get("messages")
    rest = {k: v for k, v in original.items() if k != "messages"}
    if not (isinstance(before, list) and isinstance(after, list) and len(before) == len(after)
            and rest == {k: v for k, v in aligned.items() if k != "messages"}
            and all(isinstance(b, dict) and isinstance(a, dict) and b.keys() == a.keys()
                    and all(b[k] == v or isinstance(b[k], str) and isinstance(v, str)
                            for k, v in a.items())
                    for b, a in zip(before, after))):
        return {"original": original, Outcome.ALIGNED.value: aligned}
    return {"original": original, "edits": [{k: line_edit(b[k], v) for k, v in a.items() if b[k] != v}
                                            for b, a in zip(before, after)]}


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element whatever its strings hold: ``<``, ``>``
    and ``&`` are written as ``\\u003c`` ... (so no ``</script>`` can end the block)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def collect(data: str | DataDir, run_name: str | None = None) -> RunView:
    """Read a run (the only one in the folder when ``run_name`` is None)."""
    folder = data if isinstance(data, DataDir) else DataDir(data)
    store = find_run(folder, run_name)
    view = RunView(store.name)
    for subset in run_subsets(store):
        raw = store.data.file("raw", subset)
        entries = {e.id: e for e in index_raw(raw)} if raw.is_file() else {}
        counts = view.subsets.setdefault(subset.key, Counter())
        seen: set[str] = set()
        for path in store.result_files(subset):
            for _, _, line in iter_results(path):
                record = ResultRecord.from_dict(line)
                if record.id not in entries or record.id in seen:
                    continue  # left over from a forced resume on other data, or a repeat
                seen.add(record.id)
                counts[record.outcome] += 1
                _add(view, record, read_example(raw, entries[record.id].offset).row)
        for _ in range(len(entries) - len(seen)):
            counts["missing"] += 1
            view.board.add(config=subset.config, mode=None, model=None, outcome="missing")
    return view


def _add(view: RunView, record: ResultRecord, original: dict[str, Any]) -> None:
    view.board.add(config=record.config, mode=record.mode, model=record.model,
                   outcome=record.outcome, scores=record.scores)
    view.codes.update(record_codes(record))
    view.usage.add(record)
    found = pair(record.scores)
    if found is not None and record.outcome is Outcome.ALIGNED:
        for kind, name in (("mode", record.mode), ("model", record.model)):
            view.scores[(kind, name)][0].append(found[0])
            view.scores[(kind, name)][1].append(found[1])
    row = page_row(record, original)
    if record.row is not None:
        row["pair"] = len(view.pairs)
        view.pairs.append(script_json(label_pair(original, record.row)))
    view.rows.append(script_json(row))
