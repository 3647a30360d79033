"""``argalign merge``: one file per (config, split), in the sampled order, from one run.

Input: the raw subsets and the run's canonical result files
(``runs/<run>/results/<config>/<split>/<mode>-<model>.jsonl``; temporary files and torn
lines are never read as results). Output: ``<data>/merged/<config>/<split>.jsonl``, the
result records in raw-file order, written atomically, and ``<data>/merged/summary.json``.
A duplicate id is an error naming the id and its files; a raw id without a result is an
error unless ``allow_missing``; a result whose id is not in the raw subset (left over from
a forced resume on other data) is left out with a warning. Merging twice gives the same files.
``summary.json`` is the completion marker: removed first, written last, and required by clean.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from argalign.core.datadir import DataDir, RunStore, Subset
from argalign.core.errors import ConfigError, RunError
from argalign.core.jsonl import write_json_atomic, write_jsonl_atomic
from argalign.core.lock import locked
from argalign.core.results import StageResult
from argalign.stages.run.store import index_raw, iter_results, read_at, read_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergedSubset:
    """One merged subset: raw examples, results written, raw ids without a result, and
    results left out because their id is not in the raw subset."""

    raw: int
    merged: int
    missing: list[str] = field(default_factory=list)
    extra: int = 0


@dataclass(frozen=True)
class MergeSummary(StageResult):
    """What ``merge`` did: the run and each subset's counts (``merged/summary.json``)."""

    run: str
    subsets: dict[str, MergedSubset]

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "subsets": {key: asdict(s) for key, s in self.subsets.items()}}


def find_run(data: DataDir, run_name: str | None) -> RunStore:
    """The named run, or the only run under ``<data>/runs``."""
    if run_name:
        store = data.run(run_name)
        if not store.manifest_path.is_file():
            raise ConfigError(f"no run {run_name!r} in {data.runs}")
        return store
    runs = data.run_names()
    if not runs:
        raise ConfigError(f"no run in {data.runs}: run `argalign run --data {data.root}` first")
    if len(runs) > 1:
        raise ConfigError(f"{data.runs} holds several runs ({', '.join(runs)}): pass --run-name")
    return data.run(runs[0])


def run_subsets(store: RunStore) -> list[Subset]:
    manifest = read_manifest(store.manifest_path) or {}
    keys = (manifest.get("params") or {}).get("raw") or {}
    return [Subset.of(key, store.manifest_path) for key in keys]


def merge_subset(store: RunStore, subset: Subset, *, allow_missing: bool = False) -> MergedSubset:
    """Merge one subset; return its counts and missing ids."""
    entries = index_raw(store.data.file("raw", subset))
    raw_ids = {e.id for e in entries}
    where: dict[str, tuple[Path, int, int]] = {}
    extra = 0
    for path in store.result_files(subset):
        for lineno, offset, record in iter_results(path):
            row_id = record["id"]
            if row_id in where:
                first, first_line, _ = where[row_id]
                raise RunError(f"id {row_id!r} has two results: {first}:{first_line} and "
                               f"{path}:{lineno}")
            if row_id not in raw_ids:
                extra += 1
                log.warning("%s:%d: id %r is not in the raw subset %s; left out", path, lineno,
                            row_id, subset.key)
                continue
            where[row_id] = (path, lineno, offset)
    missing = [e.id for e in entries if e.id not in where]
    if missing and not allow_missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise RunError(f"{subset.key}: {len(missing)} of {len(entries)} examples have no result "
                       f"in run {store.name!r} ({shown}); finish the run, or pass --allow-missing")
    if missing:
        log.warning("%s: %d examples have no result: %s", subset.key, len(missing),
                    ", ".join(missing[:10]))
    target = store.data.file("merged", subset)
    count = write_jsonl_atomic(target, (read_at(where[e.id][0], where[e.id][2])
                                        for e in entries if e.id in where))
    return MergedSubset(raw=len(entries), merged=count, missing=missing, extra=extra)


def merge(data: str | Path, run_name: str | None = None, *, allow_missing: bool = False
          ) -> MergeSummary:
    """Merge every subset of a run; return the run's name and each subset's counts."""
    with locked(data, "merge"):
        return _merge(DataDir(data), run_name, allow_missing=allow_missing)


def _merge(data: DataDir, run_name: str | None, *, allow_missing: bool) -> MergeSummary:
    store = find_run(data, run_name)
    subsets = run_subsets(store)
    if not subsets:
        raise RunError(f"{store.manifest_path} lists no subsets")
    # The summary is the completion marker: gone while merging, written last.
    data.marker("merged").unlink(missing_ok=True)
    result = MergeSummary(run=store.name,
                          subsets={s.key: merge_subset(store, s, allow_missing=allow_missing)
                                   for s in subsets})
    write_json_atomic(data.marker("merged"), result.as_dict())
    for key, counts in result.subsets.items():
        log.info("merged %s: %d of %d examples", key, counts.merged, counts.raw)
    return result


def read_merged_summary(data: DataDir) -> dict[str, Any] | None:
    path = data.marker("merged")
    return json.loads(path.read_text("utf-8")) if path.is_file() else None
