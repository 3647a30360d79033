"""``argalign export``: cleaned rows as training files for LLaMA-Factory (ShareGPT) or OpenAI.

Input: a cleaned file (``<data>/cleaned/<config>/<split>.jsonl``, envelopes with a ``row``, or
plain rows with ``messages``) or a cleaned folder (every ``<config>/<split>.jsonl`` in it;
``*.rejects.jsonl`` skipped). Output in ``out``: one JSONL file per input file, at the same
relative place (``<config>/<split>.jsonl``; none for a file whose every row is rejected, and no
``dataset_info.json`` when no row is exported at all); ``rejects.jsonl`` with every row that could not be
converted and why; a ``dataset_info.json`` naming each file for LLaMA-Factory (``sharegpt`` or
``openai`` formatting, with tags that load tool rows); and, in the summary, the token length of
the longest row and the ``cutoff_len`` it needs (:mod:`argalign.core.tokens`).

A format is a :class:`~argalign.stages.export_format.Format` in a module of its own
(``export_<name>.py``: :mod:`argalign.stages.export_sharegpt`, :mod:`argalign.stages.export_openai`),
registered in :data:`CONVERTERS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argalign.core.datadir import REJECTS_SUFFIX, DataDir, Subset
from argalign.core.errors import ConfigError, RowError
from argalign.core.jsonl import iter_jsonl, refuse_overwrite, write_jsonl_atomic
from argalign.core.records import Outcome, Reject
from argalign.core.results import StageResult
from argalign.core.schema import Example
from argalign.stages.export_format import Format
from argalign.stages.export_openai import OPENAI
from argalign.stages.export_sharegpt import SHAREGPT

log = logging.getLogger(__name__)


# --- reading cleaned files -----------------------------------------------------------------

def cleaned_files(path: str | Path) -> list[tuple[Path, str]]:
    """``(file, relative output name)`` for a cleaned file or folder (a data folder works too)."""
    path = Path(path)
    if path.is_file():
        in_cleaned = path.parent.parent.name == "cleaned"  # keep <config>/<split>.jsonl
        return [(path, f"{path.parent.name}/{path.name}" if in_cleaned else path.name)]
    if not path.is_dir():
        raise ConfigError(f"--in {path}: no such file or folder")
    if DataDir(path).stage("cleaned").is_dir():
        path = DataDir(path).stage("cleaned")
    files = sorted(p for p in path.glob("*/*.jsonl")
                   if not p.name.endswith(REJECTS_SUFFIX) and not p.name.startswith("."))
    if not files:
        raise ConfigError(f"--in {path}: no <config>/<split>.jsonl files in it")
    return [(p, p.relative_to(path).as_posix()) for p in files]


def finished_clean(inputs: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """The inputs a finished clean step vouches for, checked as publish checks them.

    Files in a ``cleaned`` folder need its ``summary.json`` (RunError when it is missing, or
    when a file holds another number of rows than it says were kept: the clean did not finish);
    a file it does not list, left by an earlier clean, is left out with a warning. Files
    elsewhere are plain rows and pass as they are.
    """
    kept: list[tuple[Path, str]] = []
    summaries: dict[Path, tuple[DataDir, dict[str, Any]]] = {}
    for path, name in inputs:
        if path.parent.parent.name != "cleaned":
            kept.append((path, name))
            continue
        root = path.parent.parent.parent
        if root not in summaries:
            data = DataDir(root)
            summary = data.finished("cleaned", "clean")
            data.listed("cleaned", summary)  # every file it lists is there
            summaries[root] = data, summary
        data, summary = summaries[root]
        subset = Subset(path.parent.name, path.name.removesuffix(".jsonl"))
        if subset.key not in summary["subsets"]:
            log.warning("%s is not in %s (an earlier clean left it): not exported", path,
                        data.marker("cleaned"))
            continue
        with path.open("rb") as fh:
            data.check_kept(subset, summary, sum(1 for line in fh if line.strip()))
        kept.append((path, name))
    if not kept:
        raise ConfigError("--in: no file of the last clean step to export")
    return kept


def iter_examples(path: Path) -> Iterator[tuple[str, Example | RowError]]:
    """Yield ``(where, example)`` per line; a line that is not a row yields its RowError."""
    for lineno, record in iter_jsonl(path):
        where = f"{path.name}:{lineno}"
        try:
            yield where, Example.from_record(record if isinstance(record, dict) else {}, where=where)
        except RowError as e:
            yield where, e


# --- the formats -------------------------------------------------------------------------

# A new export format is its module's import above and one entry here.
CONVERTERS: dict[str, Format] = {"sharegpt": SHAREGPT, "openai": OPENAI}
FORMATS = tuple(CONVERTERS)


# --- the command -------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportedFile:
    """One input file: where it was read and written (None: every row rejected), and counts."""

    source: str
    target: str | None
    rows: int
    rejected: int

    def as_dict(self) -> dict[str, Any]:
        return {"in": self.source, "out": self.target, "rows": self.rows,
                Outcome.REJECTED.value: self.rejected}


@dataclass(frozen=True)
class ExportSummary(StageResult):
    """What ``export`` wrote: the files, rows and rejects, the longest row's tokens
    (:meth:`argalign.core.tokens.Lengths.as_dict`), the rejects file when there is one, and the
    format's side files by name (``dataset_info``)."""

    format: str
    thinking: str
    out: str
    files: list[ExportedFile]
    tokens: dict[str, Any]
    rejects: str | None = None
    side_files: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "thinking": self.thinking, "out": self.out,
                "files": [f.as_dict() for f in self.files], "rows": self.rows,
                Outcome.REJECTED.value: self.rejected, "tokens": self.tokens,
                **({"rejects": self.rejects} if self.rejects is not None else {}),
                **self.side_files}


def export(inp: str | Path, out_dir: str | Path, fmt: str, *, keep_thinking: bool = True,
           tokenizer: str | Path | None = None) -> ExportSummary:
    """Convert every row of the cleaned input into ``out_dir``; returns a summary (files, rows,
    rejects, and the token length of the longest row with the ``cutoff_len`` it needs, see
    :mod:`argalign.core.tokens`). ``keep_thinking=False`` leaves the thinking out of every row."""
    from argalign.core.tokens import Lengths, load_tokenizer

    if fmt not in CONVERTERS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    spec, out = CONVERTERS[fmt], Path(out_dir)
    lengths = Lengths(load_tokenizer(tokenizer))
    inputs = cleaned_files(inp)
    refuse_overwrite([*(out / name for _, name in inputs), out / "rejects.jsonl",
                      out / "dataset_info.json"], [path for path, _ in inputs], "--out-dir")
    inputs = finished_clean(inputs)
    rejects: list[dict[str, Any]] = []
    files: list[ExportedFile] = []
    written: dict[str, int] = {}
    for path, name in inputs:
        before = len(rejects)

        def rows(path: Path = path, name: str = name) -> Iterator[dict[str, Any]]:
            for where, example in iter_examples(path):
                try:
                    if isinstance(example, RowError):
                        raise example
                    converted = spec.convert(example.row, example.id, thinking=keep_thinking)
                    lengths.add(f"{name}:{where.rsplit(':', 1)[-1]}", example.id,
                                spec.texts(converted))
                    yield converted
                except (RowError, json.JSONDecodeError) as e:
                    error = e if isinstance(e, RowError) else RowError(where, "FIELD_NOT_JSON", str(e))
                    line = f"{name}:{where.rsplit(':', 1)[-1]}"
                    rejects.append(Reject.from_error(error, stage="export", where=line).to_dict())

        count = write_jsonl_atomic(out / name, rows(), empty=False)
        if count:
            written[name] = count
        files.append(ExportedFile(source=str(path), target=str(out / name) if count else None,
                                  rows=count, rejected=len(rejects) - before))
        log.info("%s: %d rows written, %d rejected", name, count, len(rejects) - before)
    log.info("%s", lengths.message())
    rejects_path = None
    if rejects:
        rejects_path = str(out / "rejects.jsonl")
        write_jsonl_atomic(out / "rejects.jsonl", rejects)
        log.warning("%d rows could not be converted; see %s", len(rejects), rejects_path)
    side_files = spec.side_files(out, written) if spec.side_files is not None else {}
    return ExportSummary(format=fmt, thinking="keep" if keep_thinking else "drop", out=str(out),
                         files=files, tokens=lengths.as_dict(), rejects=rejects_path,
                         side_files=side_files)
