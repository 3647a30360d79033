"""The files of a run: raw subsets in, result files out, the manifest, and what is done.

A result file holds one complete JSON record per line and is only ever appended to
(:class:`argalign.core.jsonl.Appender`: one write, flush and fsync per record). A last line cut
short by a kill is not a result: readers skip it and the runner redoes that example. Any
other line that is not a result record (bad JSON in the middle of a file, a number, a list)
is corruption and an error naming the file and line; raw files are read strictly. The
manifest is written atomically before the first result and names the parameters the
results were made with; a resume with other parameters is refused.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.datadir import DataDir, Subset
from argalign.core.errors import ConfigError, RunError
from argalign.core.jsonl import (
    Appender,
    dumps,
    iter_jsonl,
    iter_with_offsets,
    read_at,
    write_json_atomic,
    write_jsonl_atomic,
)
from argalign.core.records import ResultRecord
from argalign.core.schema import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawEntry:
    """Where one example sits in its raw file."""

    id: str
    index: int
    offset: int


def raw_subsets(data: DataDir | str | Path, configs: Iterable[str] | None = None,
                splits: Iterable[str] | None = None) -> list[Subset]:
    """The (config, split) subsets ``prepare`` wrote under ``<data>/raw``, optionally filtered."""
    data = data if isinstance(data, DataDir) else DataDir(data)
    raw_dir = data.stage("raw")
    if not raw_dir.is_dir():
        raise ConfigError(f"no raw data in {raw_dir}: run `argalign prepare --out {data.root}` first")
    manifest = data.marker("raw")
    if not manifest.is_file():  # prepare writes it last: without it, prepare did not finish
        raise ConfigError(f"{manifest} is missing: the last `argalign prepare --out {data.root}` did "
                          "not finish; run it again")
    info = read_manifest(manifest) or {}
    found = [Subset(c, s) for c in info.get("configs", []) for s in info.get("splits", [])]
    wanted_configs, wanted_splits = (set(x) if x else None for x in (configs, splits))
    subsets = [s for s in found if (wanted_configs is None or s.config in wanted_configs)
               and (wanted_splits is None or s.split in wanted_splits)]
    missing = [s.key for s in subsets if not data.file("raw", s).is_file()]
    if missing:
        raise ConfigError(f"raw subsets listed in {manifest} are missing: {', '.join(missing)}")
    if not subsets:
        raise ConfigError(f"no raw subset in {raw_dir} matches configs={sorted(wanted_configs or [])} "
                          f"splits={sorted(wanted_splits or [])}")
    return subsets


def iter_lines(path: Path) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(line number, byte offset, object)``; a torn last line is skipped.

    Only the last line can be a write cut short by a kill (see the module docstring); a bad
    line anywhere else raises :class:`argalign.core.jsonl.JsonlError`.
    """
    return iter_with_offsets(path, tolerate_torn=True)


def index_raw(path: Path) -> list[RawEntry]:
    """Ids, indices and byte offsets of a raw subset, in file order (rows stay on disk)."""
    entries: list[RawEntry] = []
    seen: set[str] = set()
    for lineno, offset, record in iter_with_offsets(path):  # written atomically: nothing torn
        if not isinstance(record, dict):
            raise RunError(f"{path}:{lineno}: a {type(record).__name__}, not a prepared example")
        example = Example.from_record(record, where=f"{path.name}:{lineno}")
        if example.id in seen:
            raise RunError(f"{path}:{lineno}: id {example.id!r} occurs twice in the raw subset")
        seen.add(example.id)
        entries.append(RawEntry(example.id, example.index, offset))
    return entries


def read_example(path: Path, offset: int) -> Example:
    return Example.from_record(read_at(path, offset), where=str(path))


# --- result files ---------------------------------------------------------------------------

def iter_results(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``(line number, offset, record)`` of each complete result in a result file; a line that
    is no result record (:meth:`ResultRecord.check`) is an error naming the file and line."""
    for lineno, offset, record in iter_lines(path):
        yield lineno, offset, ResultRecord.check(record, where=f"{path}:{lineno}")


def take_out_results(paths: Iterable[Path], ids: set[str], archive: Path) -> int:
    """Remove the results of ``ids`` from result files, keeping them in ``archive`` first.

    For ``run --retry-failed``. The removed records are appended to ``archive`` (records it
    already holds are not appended twice) and synced before any result file changes; each
    result file is then rewritten atomically. A kill at any point leaves every record in a
    result file, in the archive, or both, and a rerun finishes the job. Returns how many
    records were taken out.
    """
    paths = list(paths)
    taken = [record for path in paths for _, _, record in iter_results(path)
             if record["id"] in ids]
    if not taken:
        return 0
    kept = set()
    if archive.is_file():
        kept = {dumps(record) for _, record in iter_jsonl(archive, tolerate_torn=True)}
    with Appender(archive) as out:
        for record in taken:
            if dumps(record) not in kept:
                out.write(record)
    for path in paths:
        records = [record for _, _, record in iter_results(path)]
        if any(record["id"] in ids for record in records):
            write_jsonl_atomic(path, (r for r in records if r["id"] not in ids))
    return len(taken)


class ResultWriter:
    """Thread-safe appends to result files: each record is one complete, fsynced line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[Path, Appender] = {}

    def write(self, path: Path, record: dict[str, Any]) -> None:
        """Append ``record`` to ``path``; returns once the line is on disk."""
        with self._lock:
            appender = self._files.get(path)
            if appender is None:
                appender = self._files[path] = Appender(path, fsync=False)
            appender.write(record)  # one whole line, flushed to the OS
        # fsync outside the lock: under it, every worker queued behind one disk flush at a time
        # (a quarter of the workers' time at concurrency 64); concurrent fsyncs share the work.
        appender.sync()

    def close(self) -> None:
        with self._lock:
            for appender in self._files.values():
                appender.close()
            self._files.clear()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- manifest -------------------------------------------------------------------------------

def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable ``key: old -> new`` lines for every parameter that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(set(old) | set(new), key=str)
                for line in differences(old.get(key), new.get(key),
                                        f"{prefix}.{key}" if prefix else str(key))]
    return [] if old == new else [f"{prefix or '(all)'}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "(none)"
    return text if len(text) <= 60 else text[:57] + "..."


def read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e}); it is written atomically, so it was "
                       f"edited by hand: fix or delete it") from e


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(path, manifest)
