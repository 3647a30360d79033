"""``argalign prepare``: draw a seeded random sample of each (config, split) and write it raw.

Input: a Hub dataset id, a local dataset folder (loaded the same way, with
``datasets.load_dataset``), a single JSONL file, or ``sample`` (the bundled sample).
Output: ``<out>/raw/<config>/<split>.jsonl``, one example per line
(``{"id", "config", "split", "index", "row"}``, the row untouched), in source order;
malformed rows go to ``<split>.rejects.jsonl`` beside it with the reason; ``<out>/raw/
manifest.json`` records what was drawn. Rows are streamed twice (count, then pick), so a
large split is never held in memory.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from argalign.errors import ConfigError, RowError
from argalign.jsonl import Appender, refuse_overwrite, write_json_atomic
from argalign.schema import Example, example_id, parse_conversation

log = logging.getLogger(__name__)

HUB_DATASET = "DebateLabKIT/argunauts-thinking"
CONFIGS = (
    "deepa2-aaac01-thinking",
    "deepa2-aaac02-thinking",
    "deepa2-aaac03-thinking",
    "deepa2-folly-thinking",
)
SPLITS = ("train", "validation", "test")
SAMPLE = "sample"


def sample_dir() -> Path:
    """The bundled sample dataset, loadable with ``datasets.load_dataset(path, config)``."""
    return Path(str(resources.files("argalign") / "data" / "sample"))


@dataclass(frozen=True)
class Source:
    kind: str  # "sample", "dir", "jsonl" or "hub"
    location: str

    @property
    def label(self) -> str:
        return SAMPLE if self.kind == "sample" else self.location


# Names of the network error classes of the HTTP clients huggingface_hub may use (httpx,
# httpx2, requests): any of them in an exception's class hierarchy means "could not connect".
_NETWORK_ERRORS = {"TransportError", "ConnectionError", "Timeout", "TimeoutException"}
# A source that names a file by its extension is a local path even if it has one "/".
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".arrow", ".gz", ".zst")


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


def iter_rows(source: Source, config: str, split: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(row index, row)`` for one (config, split), streaming.

    A JSONL file is read line by line with no schema inference, so a malformed row is kept
    as it is and rejected with its reason later; a line that is not JSON at all is yielded
    as a :class:`RowError` in its place and reading goes on.
    """
    if source.kind == "jsonl":
        path = Path(source.location)
        with path.open("rb") as fh:
            index = 0
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    yield index, json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    yield index, RowError(f"{path.name}:{lineno}", "INVALID_JSON_LINE",
                                          f"line is not valid JSON: {e}")
                index += 1
        return
    import datasets

    try:
        stream = datasets.load_dataset(source.location, config, split=split, streaming=True)
    except ValueError as e:
        raise ConfigError(f"cannot load {source.label} config {config!r} split {split!r}: {e}") from e
    yield from enumerate(stream)


def count_rows(source: Source, config: str, split: str) -> int:
    if source.kind == "jsonl":
        with open(source.location, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    return sum(1 for _ in iter_rows(source, config, split))


def choose(total: int, n: int | None, seed: int, config: str, split: str) -> set[int]:
    """A seeded random subset of ``n`` row indices, the same for the same arguments."""
    if n is None or n >= total:
        return set(range(total))
    rng = random.Random(f"{seed}/{config}/{split}")
    return set(rng.sample(range(total), n))


@dataclass
class PrepareResult:
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
    out: str | Path,
) -> PrepareResult:
    """Write the raw subsets and a manifest; return counts per ``config/split``."""
    resolved = resolve_source(source)
    raw_dir = Path(out) / "raw"
    result = PrepareResult(out=raw_dir, source=resolved.label)
    # Checked before anything is written, so a refused call leaves no partial output.
    if resolved.kind == "jsonl" and (len(configs) != 1 or len(splits) != 1):
        raise ConfigError("a single JSONL source holds one subset: pass one --configs "
                          "and one --splits value")
    _refuse_own_output(resolved, raw_dir, configs, splits)
    for config in configs:
        for split in splits:
            target = raw_dir / config / f"{split}.jsonl"
            counts = _prepare_subset(resolved, config, split, n, seed, target)
            result.counts[f"{config}/{split}"] = counts
            log.info("%s/%s: %d examples, %d rejected", config, split, counts["examples"],
                     counts["rejected"])
    write_json_atomic(raw_dir / "manifest.json", {
        "source": resolved.label, "configs": configs, "splits": splits, "n": n, "seed": seed,
        "counts": result.counts,
    })
    return result


def _refuse_own_output(source: Source, raw_dir: Path, configs: list[str], splits: list[str]) -> None:
    """ConfigError if the source is (or holds) what this call writes."""
    if source.kind == "jsonl":
        outputs = [raw_dir / "manifest.json"]
        for config in configs:
            for split in splits:
                target = raw_dir / config / f"{split}.jsonl"
                outputs += [target, target.with_name(f"{split}.rejects.jsonl")]
        refuse_overwrite(outputs, [source.location], "--out")
    elif source.kind == "dir":
        folder, raw = Path(source.location).resolve(), raw_dir.resolve()
        if raw.is_relative_to(folder) or folder.is_relative_to(raw):
            raise ConfigError(f"--out {raw_dir.parent}: prepare writes {raw_dir}, which overlaps the "
                              f"--source folder {source.location}; choose another --out")


def _prepare_subset(source: Source, config: str, split: str, n: int | None, seed: int,
                    target: Path) -> dict[str, int]:
    total = count_rows(source, config, split)
    chosen = choose(total, n, seed, config, split)
    rejects_path = target.with_name(f"{split}.rejects.jsonl")
    tmp = target.with_name(f".{target.name}.partial")
    tmp.unlink(missing_ok=True)
    rejects_path.unlink(missing_ok=True)
    examples = rejected = 0
    rejects: Appender | None = None
    with Appender(tmp, fsync=False) as writer:
        seen: set[str] = set()
        for index, row in iter_rows(source, config, split):
            if index not in chosen:
                continue
            try:
                if isinstance(row, RowError):
                    raise row
                row_id = example_id(row, config, split, index) if isinstance(row, dict) else \
                    f"{config}/{split}/{index}"
                parse_conversation(row, row_id)
                if row_id in seen:
                    raise RowError(row_id, "DUPLICATE_ID", "another row of this split has this id")
            except RowError as e:
                rejects = rejects or Appender(rejects_path, fsync=False)
                rejects.write({**e.as_record(), "config": config, "split": split, "index": index,
                               "row": None if isinstance(row, RowError) else row})
                log.error("rejected %s", e)
                rejected += 1
                continue
            seen.add(row_id)
            writer.write(Example(row_id, config, split, index, row).to_record())
            examples += 1
    if rejects is not None:
        rejects.close()
    os.replace(tmp, target)
    return {"rows": total, "examples": examples, "rejected": rejected}
