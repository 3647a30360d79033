"""A pipeline run on the bundled sample, pinned: how every example ends and what it scores.

Issue 22's "behaviour is unchanged": ``argalign pipeline`` (prepare, run, merge, clean) on every
row of the bundled sample, seed 0, both modes, the default comparison, against the fake
endpoint, whose answers and judge token probabilities are pure functions of the prompt. The
test reads what the stages wrote (the run's result files, ``merged/`` and ``cleaned/``), never
what a function returned, and compares it with ``pipeline_snapshot.json`` beside this file, per
example: config, split, mode, model, outcome, codes, scores (rounded to 6 decimals), the
acceptance gate's attempts and scores, and a digest of the aligned row in each stage; and the
run's summary (outcomes per subset, the before/after table with its bootstrap intervals, which
are drawn over the sorted scores, so they too are the same however the run went).

A difference fails with one line per field (example, field, snapshot value, this run's value).
When the change is meant, rewrite the snapshot and commit it with the change that caused it:

    ARGALIGN_UPDATE_SNAPSHOT=1 python -m pytest tests/run/test_pipeline_snapshot.py

(the test then writes the file and skips).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from support import write_settings

SNAPSHOT = Path(__file__).with_name("pipeline_snapshot.json")
UPDATE = os.environ.get("ARGALIGN_UPDATE_SNAPSHOT") == "1"
SEED = 0
CONCURRENCY = 4  # threads per model: results must not depend on the order they finish in
DIGITS = 6
SHOWN = 40  # differences listed in a failure; the rest are counted
RUN_SUMMARY = "(the run's summary.json)"


def run_pipeline(data: Path, settings: Path) -> None:
    """The one call into argalign: the pipeline over the whole sample, as a user types it."""
    from argalign import cli

    assert cli.main(["pipeline", "--all", "--modes", "A", "B", "--seed", str(SEED),
                     "--data", str(data), "--settings", str(settings), "--no-track",
                     "--no-progress", "--no-report"]) == 0


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _digest(row: Any) -> str | None:
    """A short digest of a row (None for none): a changed text shows without storing it."""
    if row is None:
        return None
    text = json.dumps(row, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DIGITS)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _result_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a result line pins: how the example ended and its scores, not what it cost."""
    scores = record.get("scores")
    if scores is not None:
        scores = {k: v for k, v in scores.items() if k != "usage"}
    acceptance = record.get("acceptance")
    if acceptance is not None:
        acceptance = {k: acceptance.get(k) for k in ("attempts", "accepted", "baseline", "scores")}
    return _rounded({
        "config": record["config"], "split": record["split"], "mode": record["mode"],
        "model": record["model"], "outcome": record["outcome"], "codes": record["codes"],
        "scores": scores, "acceptance": acceptance, "row": _digest(record.get("row"))})


def _cleaned_views(data: Path, config: str, split: str) -> dict[str, dict[str, Any]]:
    """Per id: kept with its row, or set aside with the outcome and codes clean gave."""
    folder = data / "cleaned" / config
    views = {r["id"]: {"kept": True, "outcome": r["provenance"]["outcome"], "codes": [],
                       "row": _digest(r["row"])}
             for r in _lines(folder / f"{split}.jsonl")}
    for r in _lines(folder / f"{split}.rejects.jsonl"):
        views[r["id"]] = {"kept": False, "outcome": r["outcome"], "codes": r["codes"], "row": None}
    return views


def _merged_view(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"outcome": record["outcome"], "row": _digest(record.get("row"))}


def collect(data: Path) -> dict[str, dict[str, Any]]:
    """Every raw example, keyed by id, with what the run, merge and clean wrote about it."""
    results = {r["id"]: r for path in sorted(data.glob("runs/*/results/*/*/*.jsonl"))
               for r in _lines(path)}
    examples = {}
    for raw in sorted(data.glob("raw/*/*.jsonl")):
        if raw.name.endswith(".rejects.jsonl"):
            continue
        config, split = raw.parent.name, raw.stem
        merged = {r["id"]: r for r in _lines(data / "merged" / config / raw.name)}
        cleaned = _cleaned_views(data, config, split)
        for example in (r["id"] for r in _lines(raw)):
            ran = results.get(example)
            examples[example] = {
                **(_result_view(ran) if ran else {"config": config, "split": split}),
                "merged": _merged_view(merged.get(example)), "cleaned": cleaned.get(example)}
    examples[RUN_SUMMARY] = _run_summary_view(data)
    return examples


def _run_summary_view(data: Path) -> dict[str, Any]:
    """The run's ``summary.json``: outcomes per subset and the before/after table with its
    intervals, which must not depend on the order the workers finished in."""
    [path] = data.glob("runs/*/summary.json")
    summary = json.loads(path.read_text("utf-8"))
    return _rounded({"outcomes": summary["outcomes"], "subsets": summary["subsets"],
                     "scores": summary["scores"]})


_ABSENT = object()


def _show(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value, sort_keys=True)


def _field_differences(old: Any, new: Any, path: str) -> list[str]:
    """``path: old -> new`` for each leaf that differs; a dict that became something else (or
    appeared, or went) is one line."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(old.keys() | new.keys())
                for line in _field_differences(old.get(key, _ABSENT), new.get(key, _ABSENT),
                                               f"{path}.{key}" if path else key)]
    return [] if old == new else [f"{path}: {_show(old)} -> {_show(new)}"]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per example or field that differs: ``id  field: old -> new``."""
    lines = []
    for example in sorted(old.keys() | new.keys()):
        if example not in new:
            lines.append(f"{example}  only in the snapshot (this run has no such example)")
        elif example not in old:
            lines.append(f"{example}  only in this run (not in the snapshot)")
        else:
            lines.extend(f"{example}  {line}"
                         for line in _field_differences(old[example], new[example], ""))
    return lines


def _write_snapshot(examples: dict[str, Any]) -> None:
    SNAPSHOT.write_text(json.dumps(examples, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                        "utf-8")


def test_a_pipeline_run_on_the_sample_matches_the_snapshot(tmp_path, fake_server):
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url, concurrency=CONCURRENCY)
    run_pipeline(tmp_path / "data", settings)
    examples = collect(tmp_path / "data")
    # A snapshot pins little unless the run reaches both modes and more than one ending.
    assert {e.get("mode") for e in examples.values()} == {"A", "B", None}  # None: the summary
    assert {"aligned", "not_improved", "failed"} <= {e.get("outcome") for e in examples.values()}
    assert examples[RUN_SUMMARY]["scores"]["all"]["score"]["after"]["low"] is not None
    if UPDATE:
        _write_snapshot(examples)
        pytest.skip(f"ARGALIGN_UPDATE_SNAPSHOT=1: wrote {SNAPSHOT.name}; review and commit its diff")
    if not SNAPSHOT.is_file():
        pytest.fail(f"no snapshot at {SNAPSHOT}: write it with ARGALIGN_UPDATE_SNAPSHOT=1")
    found = differences(json.loads(SNAPSHOT.read_text("utf-8")), examples)
    if found:
        more = f"\n  ... and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        pytest.fail(f"the pipeline run differs from {SNAPSHOT.name} in {len(found)} places "
                    "(example  field: snapshot -> this run); if the change is meant, rewrite it "
                    "with ARGALIGN_UPDATE_SNAPSHOT=1 and commit it:\n  "
                    + "\n  ".join(found[:SHOWN]) + more, pytrace=False)


def test_differences_name_the_example_the_field_and_both_values():
    old = {"x/1": {"outcome": "aligned", "scores": {"aligned": {"score": 0.7, "gate": "pass"}},
                   "acceptance": {"attempts": 1}},
           "x/2": {"outcome": "failed"}}
    new = {"x/1": {"outcome": "not_improved", "scores": {"aligned": {"score": 0.6, "gate": "pass"}},
                   "acceptance": None, "codes": ["NOT_IMPROVED"]},
           "x/3": {"outcome": "failed"}}
    assert differences(old, new) == [
        'x/1  acceptance: {"attempts": 1} -> null',
        'x/1  codes: (absent) -> ["NOT_IMPROVED"]',
        'x/1  outcome: "aligned" -> "not_improved"',
        "x/1  scores.aligned.score: 0.7 -> 0.6",
        "x/2  only in the snapshot (this run has no such example)",
        "x/3  only in this run (not in the snapshot)",
    ]
    assert differences(old, old) == []
