"""The folder ``publish`` uploads: one streamed parquet file per (config, split), and the card.

Input: ``<data>/cleaned/<config>/<split>.jsonl`` (envelopes ``{"id", ..., "row", "provenance"}``)
and ``cleaned/summary.json``, which the clean step writes last: it is required, it names the
subsets (every split, not only train/validation/test) and its counts must match the files. With
``from_merged``: ``<data>/merged/<config>/<split>.jsonl`` (result records; only outcome
``aligned`` is published) and ``merged/summary.json``.
Output: ``<folder>/<config>-aligned/<split>-00000-of-00001.parquet``, ``README.md`` and, when
the rows were scored, ``plots/scores_by_mode.png`` and ``plots/scores_by_model.png`` (linked
from the card).

Rows are never held together. A first pass over a config checks every row, counts rows and
outcomes, and finds the columns and their types; a second pass writes each split with a
``pyarrow.parquet.ParquetWriter``, :data:`BATCH_ROWS` rows at a time. A column whose values
have one JSON type keeps it (int64, float64, bool or string); one whose values mix types, or
are lists or objects, is written as JSON text. Messages keep the source's six string keys and,
after them, every other key a message has (typed the same way): nothing is dropped.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from argalign.core.datadir import DataDir, Subset
from argalign.core.defaults import DEFAULT_MESSAGES_FIELD
from argalign.core.errors import ConfigError, RowError, RunError
from argalign.core.jsonl import iter_jsonl
from argalign.core.records import Outcome, ResultRecord
from argalign.core.redact import scrub
from argalign.core.schema import MESSAGE_KEYS, parse_conversation
from argalign.scoring.scoreboard import Scoreboard
from argalign.stages.card import SCORE_COLUMNS, ConfigStats, config_name, data_file, flat_scores, render_card

log = logging.getLogger(__name__)

BATCH_ROWS = 64
PLOTS_DIR = "plots"
PROVENANCE_TYPES = {"mode": pa.string(), "model": pa.string(), "program": pa.string(),
                    **dict.fromkeys(SCORE_COLUMNS, pa.float64())}
_ARROW = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
# Counts in a summary's subset entry that are not outcomes (rows_in is their sum).
_NOT_OUTCOMES = {"rows_in", "checker_rejected"}


@contextmanager
def _system_memory_pool() -> Iterator[None]:
    """Arrow allocations from the C allocator for the block: arrow's default pool (mimalloc)
    keeps what a batch freed, about 50 MB more peak memory on a large split."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2 ** 63) <= value < 2 ** 63 else "json"
    if isinstance(value, float):
        return "float"
    return "str" if isinstance(value, str) else "json"


@dataclass
class _Column:
    """The JSON types seen in one column, and the arrow type that keeps them."""

    name: str
    kinds: set[str] = field(default_factory=set)

    @property
    def as_json(self) -> bool:
        kinds = self.kinds - {"null"}
        return bool(kinds) and not (len(kinds) == 1 and next(iter(kinds)) in _ARROW)

    @property
    def type(self) -> pa.DataType:
        kinds = self.kinds - {"null"}
        return pa.string() if self.as_json or not kinds else _ARROW[next(iter(kinds))]

    def value(self, value: Any) -> Any:
        return json.dumps(value, ensure_ascii=False) if self.as_json and value is not None else value


@dataclass(frozen=True)
class _Record:
    row: dict[str, Any]
    provenance: dict[str, Any]
    where: str


def _records(path: Path, from_merged: bool, outcomes: Counter | None = None,
             unpublished: list[dict[str, Any]] | None = None) -> Iterator[_Record]:
    """The published records of one file, streaming; ``outcomes`` counts merged outcomes and
    ``unpublished`` collects the merged records that are not published."""
    for lineno, rec in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(rec, dict):
            raise RunError(f"{where}: not a JSON object")
        if from_merged:
            if outcomes is not None:
                outcomes[str(rec.get("outcome"))] += 1
            if rec.get("outcome") == Outcome.ALIGNED and isinstance(rec.get("row"), dict):
                yield _Record(rec["row"], ResultRecord.from_dict(rec).provenance(), where)
            elif unpublished is not None:
                unpublished.append({k: rec.get(k) for k in ("mode", "model", "outcome")})
        elif isinstance(rec.get("row"), dict):
            yield _Record(rec["row"], rec.get("provenance") or {}, where)
        else:
            raise RunError(f"{where}: not a cleaned envelope with a 'row'")


@dataclass
class _Config:
    """What the first pass learnt about one config."""

    stats: ConfigStats
    splits: dict[str, Path] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # row columns, "messages" among them
    columns: dict[str, _Column] = field(default_factory=dict)
    message_keys: dict[str, _Column] = field(default_factory=dict)  # keys beyond the six

    def scan(self, record: _Record) -> None:
        try:
            parse_conversation(record.row, record.where)
        except RowError as e:
            raise RunError(f"{record.where}: the row is not publishable: {e}") from e
        for key, value in record.row.items():
            if key not in self.columns:
                self.order.append(key)
                self.columns[key] = _Column(key)
            if key != "messages":
                self.columns[key].kinds.add(_kind(value))
        for message in record.row["messages"]:
            for key, value in message.items():
                if key not in MESSAGE_KEYS:
                    self.message_keys.setdefault(key, _Column(key)).kinds.add(_kind(value))

    def schema(self, messages_field: str, with_provenance: bool) -> pa.Schema:
        row_columns = [c for c in self.order if c != "messages"]
        taken = {messages_field, *(PROVENANCE_TYPES if with_provenance else ())}
        if clash := sorted(taken & set(row_columns)):
            raise ConfigError(f"column name(s) {', '.join(clash)} exist in the rows already; "
                              "choose another --messages-field or leave out --with-provenance")
        for column in [*self.columns.values(), *self.message_keys.values()]:
            if column.as_json:
                log.warning("%s: %r has values of several types (or lists/objects): published "
                            "as JSON text", self.stats.name, column.name)
        message = pa.struct([*((key, pa.string()) for key in MESSAGE_KEYS),
                             *((c.name, c.type) for c in self.message_keys.values())])
        fields = [pa.field(messages_field, pa.list_(message)) if c == "messages"
                  else pa.field(c, self.columns[c].type) for c in self.order]
        if with_provenance:
            fields += [pa.field(c, t) for c, t in PROVENANCE_TYPES.items()]
        return pa.schema(fields)

    def row_values(self, record: _Record, messages_field: str, with_provenance: bool) -> dict[str, Any]:
        extra = self.message_keys.values()
        values: dict[str, Any] = {}
        for c in self.order:
            if c == "messages":
                values[messages_field] = [
                    {**{k: m.get(k) for k in MESSAGE_KEYS}, **{x.name: x.value(m.get(x.name)) for x in extra}}
                    for m in record.row["messages"]]
            else:
                values[c] = self.columns[c].value(record.row.get(c))
        if with_provenance:
            for c in ("mode", "model", "program"):
                value = record.provenance.get(c)
                values[c] = None if value is None else str(value)
            values.update(flat_scores(record.provenance))
        return values


def _write_split(path: Path, target: Path, config: _Config, schema: pa.Schema, from_merged: bool,
                 messages_field: str, with_provenance: bool) -> int:
    """Write one split in batches; returns its row count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    batch: list[dict[str, Any]] = []
    with _system_memory_pool(), pq.ParquetWriter(target, schema) as writer:
        for record in _records(path, from_merged):
            batch.append(config.row_values(record, messages_field, with_provenance))
            if len(batch) == BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                rows, batch = rows + len(batch), []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            rows += len(batch)
    return rows


@dataclass
class Built:
    folder: Path
    stats: list[ConfigStats]
    skipped: list[str]

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return {s.name: dict(s.rows) for s in self.stats}


def _first_pass(data: DataDir, stage: str, config: str, splits: list[str],
                summary: dict[str, Any], from_merged: bool, board: Scoreboard) -> _Config:
    """Check and count one config's rows; add every example, published or not, to ``board``."""
    info = _Config(ConfigStats(config))
    for split in splits:
        path = data.file(stage, Subset(config, split))
        outcomes: Counter = Counter()
        published = 0
        unpublished: list[dict[str, Any]] = []
        for record in _records(path, from_merged, outcomes, unpublished):
            info.scan(record)
            info.stats.add(split, record.provenance)
            board.add(config=config, mode=record.provenance.get("mode"),
                      model=record.provenance.get("model"), outcome=Outcome.ALIGNED.value,
                      scores=record.provenance.get("scores"))
            published += 1
        rejects = data.rejects(stage, Subset(config, split))
        if not from_merged and rejects.is_file():
            unpublished = [line for _, line in iter_jsonl(rejects) if isinstance(line, dict)]
        for line in unpublished:
            board.add(config=config, mode=line.get("mode"), model=line.get("model"),
                      outcome=str(line.get("outcome")))
        if from_merged:
            info.stats.outcomes[split] = dict(outcomes)
        else:
            counts = summary["subsets"][f"{config}/{split}"]
            info.stats.outcomes[split] = {k: v for k, v in counts.items()
                                          if type(v) is int and k not in _NOT_OUTCOMES}
            data.check_kept(Subset(config, split), summary, published)
        if published:
            info.splits[split] = path
        else:
            log.warning("%s has no publishable rows: split %s left out", path, split)
    return info


def build_folder(data: str | Path, folder: Path, repo_id: str, configs: list[str], *,
                 messages_field: str = DEFAULT_MESSAGES_FIELD, with_provenance: bool = False,
                 from_merged: bool = False) -> Built:
    """Write the parquet files and the card of every config into ``folder``."""
    step = "merge" if from_merged else "clean"
    data, stage = DataDir(data), "merged" if from_merged else "cleaned"
    if not data.stage(stage).is_dir():
        raise ConfigError(f"{data.stage(stage)} does not exist: run the batch and its {step} step "
                          "first")
    summary = data.finished(stage, step)
    subsets = [(s.config, s.split) for s, _ in data.listed(stage, summary)]
    stats, skipped, row_columns = [], [], []
    board = Scoreboard()
    for config in configs:
        splits = [split for c, split in subsets if c == config]
        if not splits:
            log.warning("%s lists no split of %s: config left out", data.marker(stage), config)
            skipped.append(config_name(config))
            continue
        info = _first_pass(data, stage, config, splits, summary, from_merged, board)
        skipped += [f"{info.stats.name}/{s}" for s in splits if s not in info.splits]
        if not info.splits:
            log.warning("%s has no rows to publish: config left out", info.stats.name)
            skipped.append(info.stats.name)
            continue
        schema = info.schema(messages_field, with_provenance)
        row_columns += [c for c in info.order if c != "messages" and c not in row_columns]
        for split, path in info.splits.items():
            _write_split(path, folder / data_file(info.stats.name, split), info, schema, from_merged,
                         messages_field, with_provenance)
        stats.append(info.stats)
    if not stats:
        raise RunError(f"nothing to publish in {data.stage(stage)} for {', '.join(configs)}")
    card = render_card(repo_id, stats, messages_field=messages_field, row_columns=row_columns,
                       provenance_columns=list(PROVENANCE_TYPES) if with_provenance else None,
                       source="merged" if from_merged else "cleaned", skipped=skipped,
                       scores=board.as_dict(), plots=_write_plots(board, folder))
    (folder / "README.md").write_text(scrub(card), encoding="utf-8")
    return Built(folder, stats, skipped)


def _write_plots(board: Scoreboard, folder: Path) -> list[str]:
    """The score distributions before and after, by mode and by model, as PNG files uploaded
    with the data (``plots/``); their paths, for the card to link."""
    if not board.scored:
        return []
    from argalign.scoring import plots

    figures = plots.score_figures({(kind, name): pair for kind in ("mode", "model")
                                   for name, pair in board.pairs(kind).items()})
    written = []
    try:
        for name, figure in figures.items():
            (folder / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
            figure.savefig(folder / PLOTS_DIR / name, format="png", dpi=96)
            written.append(f"{PLOTS_DIR}/{name}")
    finally:
        plots.close(figures)
    return written


def _is_message_feature(feature: Any) -> bool:
    """A list of structs whose first six keys are the source's, as strings."""
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list) and len(feature) == 1:
        inner = feature[0]
    return (isinstance(inner, dict) and list(inner)[:len(MESSAGE_KEYS)] == list(MESSAGE_KEYS)
            and all(getattr(inner[k], "dtype", None) == "string" for k in MESSAGE_KEYS))


def verify_folder(folder: Path, counts: dict[str, dict[str, int]], messages_field: str) -> None:
    """Load every config and split of the folder with ``datasets``; RunError on any mismatch.

    Streamed: each split is read batch by batch (its rows counted, its features checked), so
    checking a large split needs no arrow cache and little memory.
    """
    import datasets
    import pyarrow.dataset as pds

    # arrow pre-buffers whole row groups by default and keeps the buffers: ~100 MB on 40k rows
    no_prebuffer = pds.ParquetFragmentScanOptions(pre_buffer=False)
    were_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        with _system_memory_pool():
            for name, splits in counts.items():
                try:
                    loaded = datasets.load_dataset(str(folder), name, streaming=True,
                                                   fragment_scan_options=no_prebuffer)
                    if sorted(loaded) != sorted(splits):
                        raise RunError(f"{folder}: config {name} has splits {sorted(loaded)}, "
                                       f"expected {sorted(splits)}")
                    for split, n in splits.items():
                        if not _is_message_feature((loaded[split].features or {}).get(messages_field)):
                            raise RunError(f"{name}/{split}: column {messages_field!r} does not have the "
                                           f"source's message schema: {loaded[split].features}")
                        rows = sum(batch.num_rows for batch in
                                   loaded[split].with_format("arrow").iter(batch_size=BATCH_ROWS))
                        if rows != n:
                            raise RunError(f"{name}/{split}: {rows} rows, expected {n}")
                except RunError:
                    raise
                except Exception as e:  # noqa: BLE001 - any load failure means a broken folder
                    raise RunError(f"{folder}: config {name} does not load: {e}") from e
    finally:
        if not were_disabled:
            datasets.enable_progress_bars()
