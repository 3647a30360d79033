"""Where prepared rows come from: the bundled sample, a local folder or file, or the Hub.

Input: ``--source`` as the user typed it. :func:`resolve_source` decides what it names, and
refuses what cannot be read (a path that does not exist, a Hub dataset that does not, any
other Hub id while offline); only ``sample``, or the default Hub id when the Hub cannot be
reached, gives the bundled sample.
Output: :func:`iter_rows` yields ``(index, row)`` per row of one (config, split), streaming.
Local files are read as they are, with no schema inference: a JSON Lines row comes out with
exactly the keys and JSON types it went in with, and a line that is not JSON comes out as a
:class:`BadLine` (its error and raw text) in its place. A folder is read through the configs
its ``README.md`` declares (as on the Hub), or else ``<config>/<split>.jsonl`` (``.parquet``)
files. The Hub is read with ``datasets`` (the Hub's parquet files have one schema already).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError, RowError
from argalign.core.jsonl import refuse_json_array

log = logging.getLogger(__name__)

HUB_DATASET = "DebateLabKIT/argunauts-thinking"
SAMPLE = "sample"
# How much of a line that is not JSON the rejects file keeps.
RAW_LINE_LIMIT = 10_000
# Names of the network error classes of the HTTP clients huggingface_hub may use (httpx,
# httpx2, requests): any of them in an exception's class hierarchy means "could not connect".
_NETWORK_ERRORS = {"TransportError", "ConnectionError", "Timeout", "TimeoutException"}
# A source that names a file by its extension is a local path even if it has one "/".
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".arrow", ".gz", ".zst")
_JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
# Files of one (config, split) in a folder without a dataset card that declares them.
_DEFAULT_PATTERNS = ("{config}/{split}.jsonl", "{config}/{split}-*.jsonl", "{config}/{split}.json",
                     "{config}/{split}.parquet", "{config}/{split}-*.parquet",
                     "{config}/{split}/*.jsonl", "{config}/{split}/*.parquet")


def sample_dir() -> Path:
    """The bundled sample dataset (a folder with a dataset card declaring its configs)."""
    return Path(str(resources.files("argalign") / "data" / "sample"))


@dataclass(frozen=True)
class Source:
    kind: str  # "sample", "dir", "jsonl" or "hub"
    location: str

    @property
    def label(self) -> str:
        return SAMPLE if self.kind == "sample" else self.location


@dataclass(frozen=True)
class BadLine:
    """A line of a local file that is not a JSON value: why, and (the start of) its text."""

    error: RowError
    text: str
    truncated: bool


# --- resolving --source ------------------------------------------------------------------

def _is_network_error(error: BaseException) -> bool:
    return isinstance(error, (OSError, TimeoutError)) or any(
        cls.__name__ in _NETWORK_ERRORS for cls in type(error).__mro__)


def _hub_reachable(repo_id: str) -> bool:
    """True if the Hub answers for ``repo_id``; False if it cannot be reached (offline).

    ConfigError when the Hub answers that the dataset does not exist or is not accessible,
    or on any other failure: only a failure to connect counts as offline.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        HfApi().dataset_info(repo_id, timeout=10)
    except HFValidationError as e:
        raise ConfigError(f"--source {repo_id!r} is not a valid Hub dataset id: {e}") from e
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status is not None and status >= 500:
            log.debug("Hub check for %s failed: HTTP %s", repo_id, status)
            return False
        raise ConfigError(f"--source {repo_id!r}: no such dataset on the Hub, or it is not "
                          f"accessible (HTTP {status})") from e
    except Exception as e:  # noqa: BLE001 - classified: a network failure means offline
        if _is_network_error(e):
            log.debug("Hub check for %s failed: %s", repo_id, type(e).__name__)
            return False
        raise ConfigError(f"--source {repo_id!r}: cannot check the Hub dataset: "
                          f"{type(e).__name__}: {e}") from e
    return True


def _looks_like_path(source: str) -> bool:
    """Whether a source that does not exist was meant as a local path rather than a Hub id."""
    if source.startswith((".", "/", "~")) or source.count("/") != 1 or "\\" in source:
        return True
    if source.lower().endswith(_FILE_SUFFIXES):
        return True
    return Path(source).parent.is_dir()  # "in/rows" where ./in exists


def resolve_source(source: str | None) -> Source:
    """Where rows come from: ``sample``, a local folder or JSONL file, or a Hub dataset id.

    The bundled sample is used when asked for, and in place of the default Hub dataset
    (:data:`HUB_DATASET`) when the Hub cannot be reached (with a warning). A local path that
    does not exist, a Hub id that does not exist, or any other Hub id while offline is a
    ConfigError naming it: a typo never turns into the sample.
    """
    if source in (None, "", SAMPLE):
        return Source("sample", str(sample_dir()))
    path = Path(source)
    if path.is_dir():
        return Source("dir", str(path))
    if path.is_file():
        return Source("jsonl", str(path))
    if path.exists():
        raise ConfigError(f"--source {source}: neither a regular file nor a folder")
    if _looks_like_path(source):
        raise ConfigError(f"--source {source}: no such file or folder (a Hub dataset id is "
                          "ORG/NAME; 'sample' is the bundled sample)")
    if _hub_reachable(source):
        return Source("hub", source)
    if source == HUB_DATASET:
        log.warning("The Hub is not reachable: using the bundled sample instead of %s", source)
        return Source("sample", str(sample_dir()))
    raise ConfigError(f"--source {source}: the Hub is not reachable (offline), so this dataset "
                      "cannot be read; pass --source sample for the bundled sample")


# --- local folders -----------------------------------------------------------------------

def _declared_configs(folder: Path) -> dict[str, dict[str, list[str]]] | None:
    """``{config: {split: [path patterns]}}`` from the YAML header of the folder's README.md."""
    card = folder / "README.md"
    if not card.is_file():
        return None
    text = card.read_text("utf-8")
    if not text.startswith("---"):
        return None
    header = text[3:].split("\n---", 1)[0]
    import yaml

    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{card}: the YAML header does not parse: {e}") from e
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not isinstance(configs, list):
        return None
    declared: dict[str, dict[str, list[str]]] = {}
    for entry in configs:
        if not isinstance(entry, dict) or "config_name" not in entry:
            continue
        splits: dict[str, list[str]] = {}
        files = entry.get("data_files") or []
        for item in files if isinstance(files, list) else [files]:
            if isinstance(item, dict) and "split" in item:
                paths = item.get("path")
                splits[str(item["split"])] = [paths] if isinstance(paths, str) else list(paths or [])
        declared[str(entry["config_name"])] = splits
    return declared


def data_files(folder: Path, config: str, split: str) -> list[Path]:
    """The files holding one (config, split) of a local dataset folder; ConfigError if none."""
    declared = _declared_configs(folder)
    if declared:
        if config not in declared:
            raise ConfigError(f"--source {folder}: no config {config!r}; its README.md declares "
                              f"{', '.join(sorted(declared))}")
        patterns = declared[config].get(split)
        if not patterns:
            raise ConfigError(f"--source {folder}: config {config!r} has no split {split!r} "
                              f"(it has {', '.join(sorted(declared[config])) or 'none'})")
    else:
        patterns = [p.format(config=config, split=split) for p in _DEFAULT_PATTERNS]
    files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    if not files:
        raise ConfigError(f"--source {folder}: no data file for config {config!r} split {split!r} "
                          f"(looked for {', '.join(patterns)})")
    unknown = [p.name for p in files if not p.name.endswith((*_JSON_SUFFIXES, ".parquet"))]
    if unknown:
        raise ConfigError(f"--source {folder}: cannot read {', '.join(unknown)}: only JSON Lines "
                          "and parquet files are read")
    return files


# --- reading -------------------------------------------------------------------------------

def _json_lines(path: Path) -> Iterator[Any]:
    """Each non-blank line's JSON value, or a :class:`BadLine` in its place."""
    refuse_json_array(path, "--source")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                error = RowError(f"{path.name}:{lineno}", "LINE_NOT_JSON",
                                 f"line is not valid JSON: {e}")
                text = raw.rstrip(b"\r\n")
                yield BadLine(error, text[:RAW_LINE_LIMIT].decode("utf-8", "replace"),
                              len(text) > RAW_LINE_LIMIT)


def _parquet_rows(path: Path) -> Iterator[Any]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
        yield from batch.to_pylist()


def _file_rows(files: list[Path]) -> Iterator[tuple[int, Any]]:
    """``(index, row)`` over the files in turn; the index runs on from one file to the next."""
    rows = (row for path in files
            for row in (_parquet_rows(path) if path.suffix == ".parquet" else _json_lines(path)))
    yield from enumerate(rows)


def _files(source: Source, config: str, split: str) -> list[Path] | None:
    if source.kind == "jsonl":
        return [Path(source.location)]
    if source.kind in ("dir", "sample"):
        return data_files(Path(source.location), config, split)
    return None


def iter_rows(source: Source, config: str, split: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(row index, row)`` for one (config, split), streaming (see the module docstring)."""
    files = _files(source, config, split)
    if files is not None:
        yield from _file_rows(files)
        return
    import datasets

    try:
        stream = datasets.load_dataset(source.location, config, split=split, streaming=True)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"cannot load {source.label} config {config!r} split {split!r}: "
                          f"{type(e).__name__}: {e}") from e
    yield from enumerate(stream)


def count_rows(source: Source, config: str, split: str) -> int:
    files = _files(source, config, split)
    if files is None:
        return sum(1 for _ in iter_rows(source, config, split))
    total = 0
    for path in files:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
        else:
            refuse_json_array(path, "--source")
            with path.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
    return total
