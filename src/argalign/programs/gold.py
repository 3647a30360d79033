"""Gold demonstrations: hand-written ideal rewrites of the bundled sample's training rows.

``data/gold/demos.jsonl`` holds, for each task kind of the sample and each mode, one rewrite
written by hand: the training row it rewrites (by ``source_id``, train split only) and, per
predictor of the mode's program, the outputs an ideal LM would give, in call order. Only
those outputs are written down: the row itself, the predictor inputs and the rewritten row are
rebuilt by :func:`replay`, which runs the mode's real program with each predictor replaced by
the written outputs (no LM involved). So a demo always shows exactly the inputs the program
shows the LM today, and a change of the module that a gold output no longer fits (a check it
now fails, an extra call) is an error here, not a silently stale demo.

:func:`gold_demos` turns the replayed calls into ``dspy.Example`` demos per predictor name,
each carrying its ``demo_id`` (``gold/<id>``), with its longest inputs shortened so that a few
demos fit a small model's prompt. ``argalign.programs.optimizer`` seeds the optimizers with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import dspy

from argalign.core.defaults import DEFAULT_THINKING
from argalign.core.errors import ConfigError
from argalign.core.sources import sample_dir
from argalign.core.thinking import shorten

DEMO_INPUT_CHARS = 500  # each input of a demo is shortened to this: the output is what it teaches
GOLD_SPLIT = "train"  # gold rows come from here only: never a validation, test or real row


def gold_path() -> Path:
    return Path(str(resources.files("argalign") / "data" / "gold" / "demos.jsonl"))


class GoldError(ConfigError):
    """A gold entry that cannot be read or no longer fits the program it demonstrates."""


@dataclass(frozen=True)
class GoldEntry:
    id: str
    mode: str
    kind: str
    row_id: str  # source_id of a training row of the bundled sample
    outputs: dict[str, list[dict[str, str]]]  # predictor name -> its outputs, in call order

    @property
    def demo_id(self) -> str:
        return f"gold/{self.id}"


def load_gold(mode: str | None = None, path: Path | None = None) -> list[GoldEntry]:
    """The gold entries (of one mode), with a clear error for a malformed line."""
    path = path or gold_path()
    entries, seen = [], set()
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
            entry = GoldEntry(id=raw["id"], mode=raw["mode"], kind=raw["kind"], row_id=raw["row"],
                              outputs=raw["outputs"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise GoldError(f"{where}: not a gold entry ({type(e).__name__}: {e})") from e
        if entry.id in seen:
            raise GoldError(f"{where}: gold id {entry.id!r} appears twice")
        seen.add(entry.id)
        bad = [name for name, calls in entry.outputs.items()
               if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls)]
        if bad or not entry.outputs:
            raise GoldError(f"{where}: outputs must map predictor names to lists of fields "
                            f"({', '.join(bad) or 'none given'})")
        if mode is None or entry.mode == mode:
            entries.append(entry)
    return entries


def training_row(row_id: str) -> dict[str, Any]:
    """The bundled sample's training row with this ``source_id``; GoldError for any other split."""
    parts = row_id.split("/")
    if len(parts) != 4 or parts[0] != "sample" or parts[2] != GOLD_SPLIT:
        raise GoldError(f"gold row {row_id!r} is not a training row of the bundled sample "
                        f"(sample/<config>/{GOLD_SPLIT}/<nn>)")
    path = sample_dir() / parts[1] / f"{GOLD_SPLIT}.jsonl"
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            if row.get("source_id") == row_id:
                return row
    raise GoldError(f"gold row {row_id!r} is not in {path}")


class _Written:
    """Stands in for a predictor: answers each call with the next written output, and keeps
    the inputs the program passed."""

    def __init__(self, name: str, outputs: list[dict[str, str]]):
        self.name, self.outputs = name, list(outputs)
        self.calls: list[tuple[dict[str, str], dict[str, str]]] = []

    def __call__(self, config: dict[str, Any] | None = None, **inputs: str) -> dspy.Prediction:
        if len(self.calls) >= len(self.outputs):
            raise GoldError(f"{self.name} is called {len(self.calls) + 1} times, but the gold "
                            f"entry writes {len(self.outputs)} output(s)")
        output = self.outputs[len(self.calls)]
        self.calls.append((inputs, output))
        return dspy.Prediction(**output)


@dataclass
class Replayed:
    entry: GoldEntry
    original: dict[str, Any]
    row: dict[str, Any]  # the rewritten row
    calls: dict[str, list[tuple[dict[str, str], dict[str, str]]]]  # name -> (inputs, outputs)


def replay(entry: GoldEntry, *, thinking: str = DEFAULT_THINKING) -> Replayed:
    """The gold rewrite, built by the mode's own program from the written outputs.

    GoldError when the program rejects a written output (it would retry: there is one attempt),
    keeps a thinking as it was, calls a predictor the entry does not write for, or leaves a
    written output unused.
    """
    from argalign.modes import make_mode
    from argalign.modes.base import AlignmentFailed

    original = training_row(entry.row_id)
    program = make_mode(entry.mode, thinking=thinking, attempts=1)
    names = [name for name, _ in program.named_predictors()]
    unknown = sorted(set(entry.outputs) - set(names))
    if unknown:
        raise GoldError(f"gold {entry.id}: mode {entry.mode} has no predictor {unknown} "
                        f"(it has {names})")
    written = {name: _Written(name, entry.outputs.get(name, [])) for name in names}
    for name, stand_in in written.items():
        setattr(program, name, stand_in)
    try:
        prediction = program(row=original)
    except AlignmentFailed as e:
        raise GoldError(f"gold {entry.id}: the program rejects a written output: {e.reason}") from e
    if prediction.retries:
        raise GoldError(f"gold {entry.id}: {'; '.join(prediction.retries)}")
    unused = {name: len(w.outputs) - len(w.calls) for name, w in written.items()
              if len(w.calls) < len(w.outputs)}
    if unused:
        raise GoldError(f"gold {entry.id}: written outputs never asked for: {unused}")
    return Replayed(entry, original, prediction.row,
                    {name: w.calls for name, w in written.items() if w.calls})


def as_demo(inputs: dict[str, str], outputs: dict[str, str], demo_id: str) -> dspy.Example:
    """One predictor call as a demo: long inputs shortened, the output whole, the id kept (the
    adapters show only the signature's fields, so ``demo_id`` never reaches a prompt)."""
    shown = {k: shorten(v, DEMO_INPUT_CHARS) if isinstance(v, str) else v
             for k, v in inputs.items()}
    return dspy.Example(**shown, **outputs, demo_id=demo_id).with_inputs(*shown)


@lru_cache(maxsize=8)
def _demos(mode: str, thinking: str) -> dict[str, tuple[dspy.Example, ...]]:
    demos: dict[str, list[dspy.Example]] = {}
    for entry in load_gold(mode):
        for name, calls in replay(entry, thinking=thinking).calls.items():
            demos.setdefault(name, []).extend(as_demo(i, o, entry.demo_id) for i, o in calls)
    return {name: tuple(d) for name, d in demos.items()}


def gold_demos(mode: str, thinking: str = DEFAULT_THINKING) -> dict[str, list[dspy.Example]]:
    """Predictor name -> the gold demos for it, in file order (copies: callers may edit them)."""
    return {name: [d.copy() for d in demos] for name, demos in _demos(mode, thinking).items()}


def demo_ids(program: dspy.Module) -> dict[str, list[str]]:
    """Which demos a program holds, by id, per predictor (``train/<example id>`` for a demo
    made from a training rewrite, ``gold/<id>`` for a gold one)."""
    return {name: [str(d.get("demo_id", "?")) for d in p.demos]
            for name, p in program.named_predictors()}
