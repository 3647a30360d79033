"""``argalign pipeline --debug`` end to end against the fake endpoint, in a fresh directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from argalign import cli
from argalign.core.jsonl import iter_jsonl
from argalign.stages.prepare import CONFIGS, sample_dir
from support import write_settings


def _count(path: Path) -> int:
    return sum(1 for _ in iter_jsonl(path))


@pytest.fixture
def source_args(real_rows_path) -> tuple[list[str], list[str]]:
    """The bundled sample when it is there, else the six real rows as one JSONL subset."""
    if all((sample_dir() / config / "train.jsonl").is_file() for config in CONFIGS):
        return [], list(CONFIGS)
    return ["--source", str(real_rows_path), "--configs", CONFIGS[0]], [CONFIGS[0]]


def test_pipeline_debug_end_to_end(tmp_path, monkeypatch, capsys, fake_server, source_args):
    monkeypatch.chdir(tmp_path)
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url, concurrency=4)
    args, configs = source_args
    assert cli.main(["pipeline", "--debug", "--settings", str(settings), "--no-track",
                     "--no-progress", *args]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "cleaned" in out
    # Scored by default: the before/after table follows, each mean with its interval.
    assert "before and after" in out and "after - before" in out
    assert any(line.startswith("all ") and line.count("[") == 3 for line in out.splitlines())
    # The review report is written beside cleaned/ by default.
    report = tmp_path / "data_debug" / "report.html"
    assert f"review report: {Path('data_debug') / 'report.html'}" in out
    assert report.is_file() and "argalign review report" in report.read_text("utf-8")

    data = tmp_path / "data_debug"
    assert not (tmp_path / "data").exists()  # everything under data_debug/
    runs = list((data / "runs").iterdir())
    assert [r.name for r in runs] == ["run-AB-fake-s0"]
    summary = json.loads((runs[0] / "summary.json").read_text())
    cleaned_summary = json.loads((data / "cleaned" / "summary.json").read_text())
    for config in configs:
        raw = data / "raw" / config / "train.jsonl"
        assert _count(raw) == 5
        assert not (data / "raw" / config / "validation.jsonl").exists()  # train only
        results = sum(_count(p) for p in (runs[0] / "results" / config / "train").glob("*.jsonl"))
        merged = _count(data / "merged" / config / "train.jsonl")
        kept = _count(data / "cleaned" / config / "train.jsonl")
        rejects = _count(data / "cleaned" / config / "train.rejects.jsonl")
        assert results == merged == kept + rejects == 5
        counts = cleaned_summary["subsets"][f"{config}/train"]
        assert counts["aligned"] == kept and counts["rows_in"] == 5
    assert summary["done"] == summary["total"] == 5 * len(configs)
    # The acceptance gate is on by default, with its margin; the summary says what it cost.
    assert summary["acceptance"]["margin"] == 0.01 and summary["acceptance"]["rows"] > 0
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["params"]["acceptance"] == {"retries": 2, "margin": 0.01}
    assert cleaned_summary["total"]["aligned"] == summary["outcomes"]["aligned"]
    assert cleaned_summary["total"]["aligned"] > 0

    # Running it again resumes: nothing left to align, same outputs; --no-report writes none.
    calls = fake_server.stats.total
    report.unlink()
    assert cli.main(["pipeline", "--debug", "--settings", str(settings), "--no-track",
                     "--no-progress", "--no-report", *args]) == 0
    assert fake_server.stats.total == calls
    assert not report.exists()
