"""Scoring is on by default: every kept example carries both scores, the judge's cost, and the
summary the before/after table over aligned rows; --no-score makes no judge call."""

from __future__ import annotations

from argalign.cli import main
from argalign.stages.run.runner import run_batch
from support import CONFIG, mark_failing, results, run_options, write_raw, write_settings


def _data(tmp_path, sample_rows):
    rows = [dict(r) for r in sample_rows[:5]]
    rows[4] = {**mark_failing(rows[4]), "source_id": rows[4]["source_id"]}
    return write_raw(tmp_path / "data", {(CONFIG, "train"): rows})


def test_run_scores_both_rows_by_default_with_the_judge(tmp_path, sample_rows, fake_server):
    data = _data(tmp_path, sample_rows)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    # No score option: the default; the gate off, so that unchanged rows are scored too.
    summary = run_batch(run_options(data, settings, accept_if_better=False))
    records = results(data / "runs" / summary.run)
    kept = [r for r in records if r["outcome"] in ("aligned", "unchanged")]
    assert kept and len(kept) < len(records)
    for record in kept:
        scores = record["scores"]
        assert 0 <= scores["baseline"]["score"] <= 1 and 0 <= scores["aligned"]["score"] <= 1
        assert scores["usage"]["calls"] > 0 and scores["usage"]["input_tokens"] > 0
    assert all("scores" not in r for r in records if r["outcome"] == "failed")

    table = summary.scores
    aligned = [r for r in records if r["outcome"] == "aligned"]
    assert table["over"] == "aligned" and table["all"]["scored"] == len(aligned)
    assert table["all"]["outcomes"]["failed"] == 1
    mean_after = sum(r["scores"]["aligned"]["score"] for r in aligned) / len(aligned)
    assert abs(table["all"]["score"]["after"]["mean"] - mean_after) < 1e-3
    assert set(table["by_mode"]) <= {"A", "B"} and set(table["by_config"]) == {CONFIG}
    judge_calls = sum(r["scores"]["usage"]["calls"] for r in kept)
    assert summary.scoring["calls"] == judge_calls
    assert summary.scoring["examples"] == len(kept)
    # The judge's calls are its own: the alignment's count does not include them.
    assert summary.tokens["calls"] + judge_calls == fake_server.stats.total


def test_no_score_makes_no_judge_call(tmp_path, sample_rows, fake_server):
    data = _data(tmp_path, sample_rows)
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    assert main(["run", "--data", str(data), "--settings", str(settings), "--no-score",
                 "--no-track", "--no-progress"]) == 0
    records = results(data / "runs" / "run-AB-fake-s0")
    assert len(records) == 5 and all("scores" not in r for r in records)
    assert sum(r["calls"] for r in records) == fake_server.stats.total
