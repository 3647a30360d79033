"""``argalign prepare``: draw a seeded random sample of each (config, split) and write it raw.

Input: a Hub dataset id, a local dataset folder, a single JSONL file, or ``sample`` (the
bundled sample); see :mod:`argalign.core.sources`.
Output: ``<out>/raw/<config>/<split>.jsonl``, one example per line
(``{"id", "config", "split", "index", "row"}``, the row untouched), in source order;
malformed rows go to ``<split>.rejects.jsonl`` beside it with the reason (a line that is not
JSON keeps its text, cut at :data:`~argalign.core.sources.RAW_LINE_LIMIT` characters); ``<out>/raw/
manifest.json`` records what was drawn. Rows are streamed twice (count, then pick), so a
large split is never held in memory.

The manifest is the completion marker: it is removed before anything else is written and
written again last, so an interrupted prepare leaves no manifest and later steps refuse the
folder. Each subset file and its rejects file are written under temporary names and moved
into place together. A prepare that yields no example at all is an error (nothing usable).
"""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argalign.core.datadir import DataDir, Subset
from argalign.core.errors import ConfigError, RowError, RunError
from argalign.core.jsonl import Appender, refuse_overwrite, write_json_atomic
from argalign.core.records import Outcome, Reject
from argalign.core.results import StageResult
from argalign.core.schema import Example, example_id, parse_conversation
from argalign.core.sources import (  # noqa: F401 - re-exported: the sources are part of prepare's API
    HUB_DATASET,
    SAMPLE,
    BadLine,
    Source,
    count_rows,
    iter_rows,
    resolve_source,
    sample_dir,
)

log = logging.getLogger(__name__)

CONFIGS = (
    "deepa2-aaac01-thinking",
    "deepa2-aaac02-thinking",
    "deepa2-aaac03-thinking",
    "deepa2-folly-thinking",
)
SPLITS = ("train", "validation", "test")
# A config or split name becomes a folder or file name: no separators, no "..".
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_names(configs: list[str], splits: list[str]) -> None:
    """ConfigError unless every config and split name is a plain file name."""
    for flag, names in (("--configs", configs), ("--splits", splits)):
        if not names:
            raise ConfigError(f"{flag} is empty")
        for name in names:
            if not _NAME.match(name) or ".." in name:
                raise ConfigError(f"{flag} {name!r}: a name of letters, digits, '.', '_' and '-' "
                                  "(it becomes a folder or file name under --data)")


def choose(total: int, n: int | None, seed: int, config: str, split: str) -> set[int]:
    """A seeded random subset of ``n`` row indices, the same for the same arguments."""
    if n is None or n >= total:
        return set(range(total))
    rng = random.Random(f"{seed}/{config}/{split}")
    return set(rng.sample(range(total), n))


@dataclass
class PrepareResult(StageResult):
    """What ``prepare`` wrote: the raw folder, the source's label, and per ``config/split``
    the rows read, the examples written and the rows rejected."""

    out: Path
    source: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "source": self.source, "counts": self.counts}


def prepare(
    *,
    source: str | None,
    configs: list[str],
    splits: list[str],
    n: int | None,
    seed: int,
    data: str | Path,
) -> PrepareResult:
    """Write the raw subsets and a manifest; return counts per ``config/split``.

    ConfigError for a bad argument or source (nothing is written); RunError when no example
    came out (the rejects files say why; no manifest is written).
    """
    if n is not None and n < 1:
        raise ConfigError(f"-n {n}: the number of examples per (config, split) must be at least 1")
    check_names(configs, splits)
    resolved = resolve_source(source)
    data = DataDir(data)
    raw_dir = data.stage("raw")
    result = PrepareResult(out=raw_dir, source=resolved.label)
    # Checked before anything is written, so a refused call leaves no partial output.
    if resolved.kind == "jsonl" and (len(configs) != 1 or len(splits) != 1):
        raise ConfigError("a single JSONL source holds one subset: pass one --configs "
                          "and one --splits value")
    _refuse_own_output(resolved, data, configs, splits)
    data.marker("raw").unlink(missing_ok=True)  # incomplete until written again
    for config in configs:
        for split in splits:
            counts = _prepare_subset(resolved, data, Subset(config, split), n, seed)
            result.counts[f"{config}/{split}"] = counts
            log.info("%s/%s: %d examples, %d rejected", config, split, counts["examples"],
                     counts[Outcome.REJECTED])
            if not counts["examples"]:
                log.warning("%s/%s: no example (%d rows, %d rejected)", config, split,
                            counts["rows"], counts[Outcome.REJECTED])
    if not any(c["examples"] for c in result.counts.values()):
        rows = sum(c["rows"] for c in result.counts.values())
        rejected = sum(c[Outcome.REJECTED] for c in result.counts.values())
        raise RunError(f"prepare produced no example: {rows} rows read, {rejected} rejected"
                       + (f" (reasons in {raw_dir}/<config>/<split>.rejects.jsonl)" if rejected
                          else " (the source is empty)"))
    write_json_atomic(data.marker("raw"), {
        "source": resolved.label, "configs": configs, "splits": splits, "n": n, "seed": seed,
        "counts": result.counts,
    })
    return result


def _refuse_own_output(source: Source, data: DataDir, configs: list[str], splits: list[str]) -> None:
    """ConfigError if the source is (or holds) what this call writes."""
    if source.kind == "jsonl":
        subsets = [Subset(config, split) for config in configs for split in splits]
        outputs = [data.marker("raw"), *(data.file("raw", s) for s in subsets),
                   *(data.rejects("raw", s) for s in subsets)]
        refuse_overwrite(outputs, [source.location], "--data")
    elif source.kind == "dir":
        folder, raw = Path(source.location).resolve(), data.stage("raw").resolve()
        if raw.is_relative_to(folder) or folder.is_relative_to(raw):
            raise ConfigError(f"--data {data.root}: prepare writes {data.stage('raw')}, which overlaps the "
                              f"--source folder {source.location}; choose another --data")


def _prepare_subset(source: Source, data: DataDir, subset: Subset, n: int | None,
                    seed: int) -> dict[str, int]:
    config, split = subset.config, subset.split
    total = count_rows(source, config, split)
    chosen = choose(total, n, seed, config, split)
    target, rejects_path = data.file("raw", subset), data.rejects("raw", subset)
    tmp = target.with_name(f".{target.name}.partial")
    tmp_rejects = rejects_path.with_name(f".{rejects_path.name}.partial")
    examples = rejected = 0
    tmp.unlink(missing_ok=True)
    try:
        with Appender(tmp, fsync=False) as writer, _Lazy(tmp_rejects) as rejects:
            seen: set[str] = set()
            for index, row in iter_rows(source, config, split):
                if index not in chosen:
                    continue
                try:
                    if isinstance(row, BadLine):
                        raise row.error
                    row_id = example_id(row, config, split, index) if isinstance(row, dict) else \
                        f"{config}/{split}/{index}"
                    parse_conversation(row, row_id)
                    if row_id in seen:
                        raise RowError(row_id, "ID_DUPLICATE", "another row of this split has this id")
                except RowError as e:
                    reject = Reject.from_error(e, stage="prepare", config=config, split=split,
                                               index=index)
                    if isinstance(row, BadLine):
                        reject.line, reject.line_truncated = row.text, row.truncated
                    else:
                        reject.row = row
                    rejects.write(reject.to_dict())
                    log.error("rejected %s", e)
                    rejected += 1
                    continue
                seen.add(row_id)
                writer.write(Example(row_id, config, split, index, row).to_record())
                examples += 1
        os.replace(tmp, target)
        if rejected:
            os.replace(tmp_rejects, rejects_path)
        else:
            rejects_path.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_rejects.unlink(missing_ok=True)
    return {"rows": total, "examples": examples, Outcome.REJECTED.value: rejected}


class _Lazy:
    """An :class:`Appender` to a fresh file that is created at the first write."""

    def __init__(self, path: Path):
        self.path, self._appender = path, None

    def write(self, record: dict[str, Any]) -> None:
        if self._appender is None:
            self.path.unlink(missing_ok=True)
            self._appender = Appender(self.path, fsync=False)
        self._appender.write(record)

    def __enter__(self) -> _Lazy:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._appender is not None:
            self._appender.close()
