"""``argalign publish``: the cleaned rows as a Hub dataset; the only module that talks to the Hub.

Input: ``<data>/cleaned/<config>/<split>.jsonl`` (envelopes ``{"id", ..., "row", "provenance"}``)
with ``<split>.rejects.jsonl`` and ``cleaned/summary.json`` for the outcome counts; or, with
``from_merged``, ``<data>/merged/<config>/<split>.jsonl`` (result records; only outcome
``aligned`` is published).
Output: a folder with ``README.md`` (the card, see :mod:`argalign.card`) and
``<config>-aligned/<split>-00000-of-00001.parquet`` per (config, split) with rows; the message
column has the source's type (a list of structs of six nullable strings). The folder is loaded
back with ``datasets`` and checked before anything is uploaded; then the repo is created with
``exist_ok`` (private unless ``public``; an existing repo keeps its visibility) and the folder
goes up in one commit, which replaces the repo's parquet files. Transient Hub errors are
retried with backoff. The token comes from ``HF_TOKEN`` (environment or ``.env``) only when
uploading, and every message that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from argalign.card import SCORE_COLUMNS, SUFFIX, ConfigStats, config_name, data_file, flat_scores, render_card
from argalign.errors import ConfigError, RowError, RunError
from argalign.jsonl import iter_jsonl
from argalign.prepare import SPLITS
from argalign.records import ResultRecord
from argalign.schema import MESSAGE_KEYS, parse_conversation
from argalign.tracking import scrub

log = logging.getLogger(__name__)

MESSAGE_TYPE = pa.list_(pa.struct([(key, pa.string()) for key in MESSAGE_KEYS]))
PROVENANCE_TYPES = {"mode": pa.string(), "model": pa.string(), "program": pa.string(),
                    **dict.fromkeys(SCORE_COLUMNS, pa.float64())}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Counts in summary.json that are not outcomes (rows_in is their sum, checker_rejected a part).
_NOT_OUTCOMES = {"rows_in", "checker_rejected", "total", "rows", "count", "published", "index"}


@dataclass(frozen=True)
class _Record:
    row: dict[str, Any]
    provenance: dict[str, Any]
    where: str


# --- reading -----------------------------------------------------------------------------

def _read_split(path: Path, from_merged: bool) -> tuple[list[_Record], Counter]:
    """Published records of one file, and (merged only) the count of every outcome in it."""
    records, outcomes = [], Counter()
    for lineno, rec in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(rec, dict):
            raise RunError(f"{where}: not a JSON object")
        if from_merged:
            outcomes[str(rec.get("outcome"))] += 1
            if rec.get("outcome") != "aligned" or not isinstance(rec.get("row"), dict):
                continue
            records.append(_Record(rec["row"], ResultRecord.from_dict(rec).provenance(), where))
        elif isinstance(rec.get("row"), dict):
            records.append(_Record(rec["row"], rec.get("provenance") or {}, where))
        elif "messages" in rec:
            records.append(_Record(rec, {}, where))
        else:
            raise RunError(f"{where}: neither a cleaned envelope with a 'row' nor a row")
    return records, outcomes


def _summary_counts(summary: Any, config: str, split: str) -> dict[str, int] | None:
    """Outcome counts of one (config, split) from summary.json.

    The clean step writes ``{"subsets": {"<config>/<split>": {"aligned": n, ...}}, "total": ...}``;
    ``{config: {split: counts}}`` and a list of ``{"config", "split", ...}`` are read too.
    """
    for key in ("subsets", "counts"):
        if isinstance(summary, dict) and isinstance(summary.get(key), (dict, list)):
            summary = summary[key]
            break
    found: list[Any] = []
    if isinstance(summary, dict):
        per_config = summary.get(config)
        found += [per_config.get(split) if isinstance(per_config, dict) else None,
                  summary.get(f"{config}/{split}")]
    elif isinstance(summary, list):
        found += [item for item in summary if isinstance(item, dict)
                  and item.get("config") == config and item.get("split") == split]
    for item in found:
        if isinstance(item, dict):
            item = item.get("outcomes") if isinstance(item.get("outcomes"), dict) else item
            counts = {str(k): v for k, v in item.items()
                      if type(v) is int and k not in _NOT_OUTCOMES}
            if counts:
                return counts
    return None


def _outcomes(base: Path, config: str, split: str, records: list[_Record], summary: Any) -> dict[str, int]:
    from_summary = _summary_counts(summary, config, split)
    if from_summary is not None:
        return from_summary
    counts = Counter(str(r.provenance.get("outcome") or "aligned") for r in records)
    rejects = base / config / f"{split}.rejects.jsonl"
    if rejects.exists():
        counts.update(str(rec.get("outcome") or "rejected") for _, rec in iter_jsonl(rejects)
                      if isinstance(rec, dict))
    return dict(counts)


# --- building the folder -----------------------------------------------------------------

def _column_type(name: str, values: list[Any]) -> pa.DataType | None:
    """The arrow type of a row column (string if all null); None if values are mixed."""
    try:
        kind = pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        log.warning("column %r has values of mixed types: published as JSON strings", name)
        return None
    return pa.string() if pa.types.is_null(kind) else kind


def _messages(record: _Record) -> list[dict[str, str | None]]:
    try:
        parse_conversation(record.row, record.where)
    except RowError as e:
        raise RunError(f"{record.where}: the row is not publishable: {e}") from e
    return [{key: m.get(key) for key in MESSAGE_KEYS} for m in record.row["messages"]]


def _tables(by_split: dict[str, list[_Record]], messages_field: str,
            with_provenance: bool) -> tuple[dict[str, pa.Table], list[str]]:
    """One table per split of a config, all with the same schema; and the kept row columns."""
    order = list(dict.fromkeys(k for recs in by_split.values() for r in recs for k in r.row))
    row_columns = [c for c in order if c != "messages"]
    taken = {messages_field, *(PROVENANCE_TYPES if with_provenance else ())}
    if clash := sorted(taken & set(row_columns)):
        raise ConfigError(f"column name(s) {', '.join(clash)} exist in the rows already; "
                          "choose another --messages-field or leave out --with-provenance")
    every = [r for recs in by_split.values() for r in recs]
    types = {c: _column_type(c, [r.row.get(c) for r in every]) for c in row_columns}
    fields = [pa.field(messages_field, MESSAGE_TYPE) if c == "messages"
              else pa.field(c, types[c] or pa.string()) for c in order]
    if with_provenance:
        fields += [pa.field(c, t) for c, t in PROVENANCE_TYPES.items()]
    schema = pa.schema(fields)
    tables = {}
    for split, recs in by_split.items():
        columns: dict[str, list[Any]] = {f.name: [] for f in fields}
        for r in recs:
            columns[messages_field].append(_messages(r))
            for c in row_columns:
                value = r.row.get(c)
                columns[c].append(value if types[c] is not None or value is None
                                  else json.dumps(value, ensure_ascii=False))
            if with_provenance:
                prov = {c: r.provenance.get(c) for c in ("mode", "model", "program")}
                for c, value in {**prov, **flat_scores(r.provenance)}.items():
                    columns[c].append(None if value is None else value if c in SCORE_COLUMNS else str(value))
        tables[split] = pa.Table.from_pydict(columns, schema=schema)
    return tables, row_columns


@dataclass
class Built:
    folder: Path
    stats: list[ConfigStats]
    skipped: list[str]

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return {s.name: dict(s.rows) for s in self.stats}


def build_folder(data: str | Path, folder: Path, repo_id: str, configs: list[str], *,
                 messages_field: str = "messages", with_provenance: bool = False,
                 from_merged: bool = False) -> Built:
    """Write the parquet files and the card of every config into ``folder``."""
    base = Path(data) / ("merged" if from_merged else "cleaned")
    if not base.is_dir():
        raise ConfigError(f"{base} does not exist: run the batch and its "
                          f"{'merge' if from_merged else 'clean'} step first")
    summary_path = base / "summary.json"
    summary = None if from_merged or not summary_path.exists() else json.loads(summary_path.read_text())
    stats, skipped, row_columns = [], [], []
    for config in configs:
        by_split: dict[str, list[_Record]] = {}
        config_stats = ConfigStats(config)
        for split in SPLITS:
            path = base / config / f"{split}.jsonl"
            if not path.exists():
                log.warning("%s is missing: split %s of %s left out", path, split, config_name(config))
                continue
            records, merged_counts = _read_split(path, from_merged)
            config_stats.outcomes[split] = (dict(merged_counts) if from_merged
                                            else _outcomes(base, config, split, records, summary))
            if not records:
                log.warning("%s has no publishable rows: split %s left out", path, split)
                skipped.append(f"{config_name(config)}/{split}")
                continue
            by_split[split] = records
            for r in records:
                config_stats.add(split, r.provenance)
        if not by_split:
            log.warning("%s has no rows to publish: config left out", config_name(config))
            skipped.append(config_name(config))
            continue
        tables, columns = _tables(by_split, messages_field, with_provenance)
        row_columns += [c for c in columns if c not in row_columns]
        for split, table in tables.items():
            target = folder / data_file(config_stats.name, split)
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target)
        stats.append(config_stats)
    if not stats:
        raise ConfigError(f"nothing to publish in {base} for {', '.join(configs)}")
    card = render_card(repo_id, stats, messages_field=messages_field, row_columns=row_columns,
                       provenance_columns=list(PROVENANCE_TYPES) if with_provenance else None,
                       source="merged" if from_merged else "cleaned", skipped=skipped)
    (folder / "README.md").write_text(scrub(card), encoding="utf-8")
    return Built(folder, stats, skipped)


def _is_message_feature(feature: Any) -> bool:
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list) and len(feature) == 1:
        inner = feature[0]
    return (isinstance(inner, dict) and list(inner) == list(MESSAGE_KEYS)
            and all(getattr(v, "dtype", None) == "string" for v in inner.values()))


def verify_folder(folder: Path, counts: dict[str, dict[str, int]], messages_field: str) -> None:
    """Load every config and split of the folder with ``datasets``; RunError on any mismatch."""
    import datasets

    were_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory(prefix="argalign-verify-") as cache:
            for name, splits in counts.items():
                try:
                    loaded = datasets.load_dataset(str(folder), name, cache_dir=cache)
                except Exception as e:  # noqa: BLE001 - any load failure means a broken folder
                    raise RunError(f"{folder}: config {name} does not load: {e}") from e
                if sorted(loaded) != sorted(splits):
                    raise RunError(f"{folder}: config {name} has splits {sorted(loaded)}, "
                                   f"expected {sorted(splits)}")
                for split, n in splits.items():
                    if loaded[split].num_rows != n:
                        raise RunError(f"{name}/{split}: {loaded[split].num_rows} rows, expected {n}")
                    if not _is_message_feature(loaded[split].features.get(messages_field)):
                        raise RunError(f"{name}/{split}: column {messages_field!r} does not have the "
                                       f"source's message schema: {loaded[split].features}")
    finally:
        if not were_disabled:
            datasets.enable_progress_bars()


# --- the Hub -----------------------------------------------------------------------------

def hf_token() -> str:
    """``HF_TOKEN`` from the environment (a ``.env`` file is loaded first), or ConfigError."""
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True))
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise ConfigError("HF_TOKEN is not set: export it or put it in a .env file "
                          "(or use --dry-run DIR to build and check the folder without uploading)")
    return token


def _status(e: BaseException) -> int | None:
    return getattr(getattr(e, "response", None), "status_code", None)


def _is_transient(e: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(e, HfHubHTTPError):
        status = _status(e)
        return status is not None and (status == 429 or status >= 500)
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover - huggingface_hub >= 1.0 depends on httpx
        return False
    return isinstance(e, httpx.TransportError)


def _hub_call(action: Callable[[], Any], what: str, *, retries: int, backoff: float,
              sleep: Callable[[float], None]) -> Any:
    for attempt in range(1, retries + 1):
        try:
            return action()
        except Exception as e:  # noqa: BLE001 - classified below, re-raised scrubbed
            text = scrub(f"{type(e).__name__}: {e}")
            cause = e if text == f"{type(e).__name__}: {e}" else None  # never chain a leak
            if _is_transient(e) and attempt < retries:
                delay = backoff * 2 ** (attempt - 1)
                log.warning("%s: transient Hub error (%s); retry %d/%d in %.0f s",
                            what, text, attempt, retries - 1, delay)
                sleep(delay)
                continue
            if _status(e) in (401, 403):
                raise ConfigError(f"{what}: the Hub refused the token ({text}); it needs write "
                                  "access to the organisation") from cause
            raise RunError(f"{what} failed after {attempt} attempt(s): {text}") from cause
    raise AssertionError("unreachable")  # pragma: no cover


def upload(folder: Path, repo_id: str, *, private: bool, api: Any, retries: int = 5,
           backoff: float = 2.0, sleep: Callable[[float], None] | None = None) -> str | None:
    """Create the dataset repo (exist_ok) and upload the folder in one commit; the commit URL."""
    retry = {"retries": retries, "backoff": backoff, "sleep": sleep or time.sleep}
    _hub_call(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
              f"create {repo_id}", **retry)
    info = _hub_call(lambda: api.upload_folder(
        repo_id=repo_id, repo_type="dataset", folder_path=str(folder), delete_patterns=["*.parquet"],
        commit_message="Publish aligned configs with argalign"), f"upload to {repo_id}", **retry)
    url = getattr(info, "commit_url", None)
    log.info("uploaded %s in one commit%s", repo_id, f": {url}" if url else "")
    return url


def _dry_run_dir(path: str | Path) -> Path:
    """A folder to build into: new, empty, or a previous build (which is cleared)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--dry-run {path} is a file")
        foreign = [c.name for c in path.iterdir()
                   if not (c.name == "README.md" or (c.is_dir() and c.name.endswith(SUFFIX)))]
        if foreign:
            raise ConfigError(f"--dry-run {path} holds other files ({', '.join(sorted(foreign)[:5])}); "
                              "give a new or empty folder")
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def publish(data: str | Path, *, org: str, repo_name: str, configs: list[str], public: bool = False,
            messages_field: str = "messages", with_provenance: bool = False, from_merged: bool = False,
            dry_run: str | Path | None = None, api: Any = None) -> dict[str, Any]:
    """Build, verify and (unless ``dry_run``) upload; returns a summary. ``api``: an HfApi-like."""
    if not (_NAME.match(org) and _NAME.match(repo_name)):
        raise ConfigError(f"{org}/{repo_name} is not a valid Hub repo id")
    if not _FIELD.match(messages_field):
        raise ConfigError(f"--messages-field {messages_field!r} is not a valid column name")
    if not configs:
        raise ConfigError("--configs is empty")
    repo_id = f"{org}/{repo_name}"
    if from_merged:
        log.warning("publishing from merged results, not from the clean step: only rows with "
                    "outcome 'aligned' are published and the clean step's checks are skipped")
    token = None if dry_run is not None or api is not None else hf_token()  # fail before work
    options = {"messages_field": messages_field, "with_provenance": with_provenance,
               "from_merged": from_merged}
    summary: dict[str, Any] = {"repo_id": repo_id, "private": not public, "dry_run": dry_run is not None,
                               "source": "merged" if from_merged else "cleaned"}
    if dry_run is not None:
        built = build_folder(data, _dry_run_dir(dry_run), repo_id, configs, **options)
        verify_folder(built.folder, built.counts, messages_field)
        log.info("dry run: %s is what would be uploaded to %s", built.folder, repo_id)
        return {**summary, "folder": str(built.folder), "configs": built.counts,
                "rows": sum(map(sum, (c.values() for c in built.counts.values()))), "skipped": built.skipped}
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="argalign-publish-") as tmp:
        built = build_folder(data, Path(tmp), repo_id, configs, **options)
        verify_folder(built.folder, built.counts, messages_field)
        url = upload(built.folder, repo_id, private=not public, api=api)
    return {**summary, "commit_url": url, "configs": built.counts,
            "rows": sum(map(sum, (c.values() for c in built.counts.values()))), "skipped": built.skipped}
