"""The data folder: one place that knows every stage's paths and completion markers."""

from __future__ import annotations

import pytest

from argalign.core.datadir import DataDir, RunStore, Subset
from argalign.core.errors import ConfigError


def test_stage_paths_and_markers(tmp_path):
    data = DataDir(tmp_path)
    subset = Subset.of("deepa2-folly-thinking/validation")
    assert (subset.config, subset.split, subset.key) == ("deepa2-folly-thinking", "validation",
                                                         "deepa2-folly-thinking/validation")
    assert data.file("raw", subset) == tmp_path / "raw/deepa2-folly-thinking/validation.jsonl"
    assert data.rejects("cleaned", subset) == \
        tmp_path / "cleaned/deepa2-folly-thinking/validation.rejects.jsonl"
    assert data.marker("raw") == tmp_path / "raw/manifest.json"
    assert data.marker("merged") == tmp_path / "merged/summary.json"
    with pytest.raises(ValueError, match="stage"):
        data.stage("runs")


def test_subset_files_leave_out_rejects_and_temporary_files(tmp_path):
    data = DataDir(tmp_path)
    for name in ("train.jsonl", "train.rejects.jsonl", ".test.jsonl.partial", ".x.jsonl", "test.jsonl"):
        path = tmp_path / "merged" / "c" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert [s.key for s, _ in data.subset_files("merged")] == ["c/test", "c/train"]


def test_runs_are_found_by_their_manifest_and_named_safely(tmp_path):
    data = DataDir(tmp_path)
    (data.runs / "half").mkdir(parents=True)
    store = data.run("done")
    store.manifest_path.parent.mkdir(parents=True)
    store.manifest_path.write_text("{}")
    assert data.run_names() == ["done"]
    subset = Subset("c", "train")
    for name in ("A-m.jsonl", ".A-m.jsonl.tmp", "notes.txt"):
        path = store.results_dir(subset) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert store.result_files(subset) == [store.result_path(subset, "A-m")]
    for bad in ("", "../up", ".hidden", "a/b"):
        with pytest.raises(ConfigError):
            RunStore(data, bad)
