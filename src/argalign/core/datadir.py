"""The data folder: where each stage reads and writes, and the file that says a stage finished.

One folder (``--data``, default ``data``) holds every stage's output::

    raw/<config>/<split>.jsonl, <split>.rejects.jsonl      prepare
    raw/manifest.json                                      written last: prepare finished
    runs/<run>/manifest.json                               written first: the run's parameters
    runs/<run>/results/<config>/<split>/<group>.jsonl      one result record per line
    runs/<run>/summary.json, failures.jsonl                written at the end of a batch
    runs/<run>/retried.jsonl                               results that --retry-failed redid
    runs/<run>/mlflow.json                                 the id of the run's last MLflow run
    merged/<config>/<split>.jsonl                          merge (raw order)
    merged/summary.json                                    written last: merge finished
    cleaned/<config>/<split>.jsonl, <split>.rejects.jsonl  clean
    cleaned/summary.json                                   written last: clean finished
    .argalign.core.lock                                         while a command changes the folder

Every command that touches the folder asks a :class:`DataDir` for these paths.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError, RunError
from argalign.core.records import Outcome

REJECTS_SUFFIX = ".rejects.jsonl"
STAGES = ("raw", "merged", "cleaned")
# Every tree of the folder that its own steps write: no other output may go into one.
TREES = (*STAGES, "runs")
# <group>.jsonl as Group.name writes it (<mode>-<model>); temporary files start with a dot.
_RESULT_FILE = re.compile(r"^[A-Za-z]+-[A-Za-z0-9._-]+\.jsonl$")


@dataclass(frozen=True, order=True)
class Subset:
    """One (config, split) of the dataset."""

    config: str
    split: str

    @property
    def key(self) -> str:
        return f"{self.config}/{self.split}"

    @classmethod
    def of(cls, key: Any, where: Path | str = "") -> Subset:
        """``"<config>/<split>"`` -> Subset; RunError naming ``where`` (the file) for a bad key."""
        config, _, split = key.partition("/") if isinstance(key, str) else ("", "", "")
        if not config or not split or "/" in split or ".." in key:
            raise RunError(f"{where or 'a summary or manifest'}: {key!r} is not a <config>/<split> "
                           "key; the file was edited or is corrupt: write it again with the step "
                           "that makes it")
        return cls(config, split)


class DataDir:
    """Paths of one data folder (nothing is created or read here)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"

    def stage(self, name: str) -> Path:
        """``raw``, ``merged`` or ``cleaned``."""
        if name not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {name!r}")
        return self.root / name

    def file(self, stage: str, subset: Subset) -> Path:
        return self.stage(stage) / subset.config / f"{subset.split}.jsonl"

    def rejects(self, stage: str, subset: Subset) -> Path:
        """Where ``prepare`` (raw) or ``clean`` (cleaned) set aside a subset's rows."""
        return self.stage(stage) / subset.config / f"{subset.split}{REJECTS_SUFFIX}"

    def marker(self, stage: str) -> Path:
        """The file a stage writes last, so that its presence means the stage finished."""
        return self.stage(stage) / ("manifest.json" if stage == "raw" else "summary.json")

    def subset_files(self, stage: str) -> list[tuple[Subset, Path]]:
        """The ``<config>/<split>.jsonl`` files of a stage (temporary and rejects files left out)."""
        found = sorted(self.stage(stage).glob("*/*.jsonl"))
        return [(Subset(p.parent.name, p.stem), p) for p in found
                if not p.name.startswith(".") and not p.name.endswith(REJECTS_SUFFIX)]

    def finished(self, stage: str, step: str) -> dict[str, Any]:
        """The summary ``step`` writes last into ``stage`` (merge: merged, clean: cleaned).

        RunError naming the file when it is missing, not JSON or lists no subsets: the step did
        not finish, and what it left must not be read (publish, export).
        """
        path = self.marker(stage)
        again = f"run `argalign {step} --data {self.root}` again"
        if not path.is_file():
            raise RunError(f"{path} is missing: the {step} step did not finish; {again}")
        try:
            summary = json.loads(path.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path} is not valid JSON: {again}") from e
        if not isinstance(summary, dict) or not isinstance(summary.get("subsets"), dict):
            raise RunError(f"{path} has no 'subsets': {again}")
        return summary

    def listed(self, stage: str, summary: dict[str, Any]) -> list[tuple[Subset, Path]]:
        """The subsets a :meth:`finished` summary lists, with their files (RunError if one is gone)."""
        found = []
        for key in summary["subsets"]:
            subset = Subset.of(key, self.marker(stage))
            path = self.file(stage, subset)
            if not path.is_file():
                raise RunError(f"{path} is missing although {self.marker(stage)} lists it: run "
                               f"`argalign {'merge' if stage == 'merged' else 'clean'}` again")
            found.append((subset, path))
        return found

    def check_kept(self, subset: Subset, summary: dict[str, Any], rows: int) -> None:
        """RunError unless the cleaned file of ``subset`` holds the rows the summary says it kept."""
        kept = (summary["subsets"].get(subset.key) or {}).get(Outcome.ALIGNED)
        if kept != rows:
            raise RunError(f"{self.file('cleaned', subset)} holds {rows} rows but "
                           f"{self.marker('cleaned')} says {kept} were kept: the clean step did not "
                           f"finish; run `argalign clean --data {self.root}` again")

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, name: str) -> RunStore:
        return RunStore(self, name)

    def run_names(self) -> list[str]:
        """The runs that were started (they have a manifest), by name."""
        return sorted(p.parent.name for p in self.runs.glob("*/manifest.json"))


class RunStore:
    """Paths of one run: ``<data>/runs/<run>/``."""

    def __init__(self, data: DataDir | str | Path, name: str):
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ConfigError(f"invalid run name {name!r}")
        self.data = data if isinstance(data, DataDir) else DataDir(data)
        self.name = name
        self.dir = self.data.runs / name
        self.manifest_path = self.dir / "manifest.json"
        self.summary_path = self.dir / "summary.json"
        self.failures_path = self.dir / "failures.jsonl"
        # Results that `run --retry-failed` took out of the result files to align again.
        self.retried_path = self.dir / "retried.jsonl"
        # The id of the run's last MLflow run: a resume ends it if it was left RUNNING, links to it.
        self.mlflow_path = self.dir / "mlflow.json"

    def results_dir(self, subset: Subset) -> Path:
        return self.dir / "results" / subset.config / subset.split

    def result_path(self, subset: Subset, group_name: str) -> Path:
        return self.results_dir(subset) / f"{group_name}.jsonl"

    def result_files(self, subset: Subset) -> list[Path]:
        """The runner's result files of a subset; temporary and other files are left out.

        A result file that is a symbolic link is refused (RunError): results are appended in
        place, so a link would make the run write outside the data folder.
        """
        directory = self.results_dir(subset)
        if not directory.is_dir():
            return []
        found = sorted(p for p in directory.iterdir() if _RESULT_FILE.match(p.name))
        for path in found:
            if path.is_symlink():
                raise RunError(f"{path} is a symbolic link (to {os.readlink(path)}); a run only "
                               "appends to its own files: replace it with the file itself")
        return [p for p in found if p.is_file()]
