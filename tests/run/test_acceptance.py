"""The acceptance gate of ``run`` (on by default) end to end on the fake endpoint, with the
judge's readings."""

from __future__ import annotations

import json

import pytest

from argalign import cli
from argalign.programs.accept import DEFAULT_MARGIN
from argalign.stages.clean import clean
from argalign.stages.merge import merge
from argalign.stages.run.runner import run_batch
from support import CONFIG, make_rows, read_rows, results, run_options, write_raw, write_settings


def test_every_kept_rewrite_scores_the_margin_higher_and_the_rest_end_not_improved(
        tmp_path, real_rows_path, fake_server):
    rows = make_rows(read_rows(real_rows_path), 12, "g")
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    # The gate is on by default (accept_if_better is not passed).
    summary = run_batch(run_options(data, settings, accept_retries=1, run_name="gate"))

    records = {r["id"]: r for r in results(data / "runs" / "gate")}
    assert sorted(records) == sorted(r["source_id"] for r in rows)  # one outcome each
    outcomes = {r["outcome"] for r in records.values()}
    # The fake judge's readings are hashed from each prompt: some rewrites read better than
    # their original, some worse, and a second sample of the same prompt reads the same.
    assert {"aligned", "not_improved"} <= outcomes
    for record in records.values():
        gate = record.get("acceptance")
        if record["outcome"] == "aligned":
            before, after = record["scores"]["baseline"], record["scores"]["aligned"]
            assert after["score"] >= before["score"] + DEFAULT_MARGIN - 1e-9
            assert gate["accepted"] is True and gate["margin"] == DEFAULT_MARGIN
        if record["outcome"] == "not_improved":
            assert record["row"] is None and record["codes"] == ["NOT_IMPROVED"]
            before, after = record["scores"]["baseline"], record["scores"]["aligned"]
            assert after["score"] < before["score"] + DEFAULT_MARGIN
            assert gate["attempts"] == 2 and gate["extra"]["calls"] > 0
            # The judge's readings are cached for the run, so a row whose texts were read
            # before (the rows repeat) may cost no new call; across the rows they do.
            assert gate["judge"]["calls"] >= 0
    assert sum(r["acceptance"]["judge"]["calls"] for r in records.values()
               if r["outcome"] == "not_improved") > 0

    n_not = sum(r["outcome"] == "not_improved" for r in records.values())
    gate = summary.acceptance
    assert (gate["margin"], gate["retries"]) == (DEFAULT_MARGIN, 1)
    # Every reading of the gate counts as scoring; the judge's calls are its own.
    assert summary.scoring["calls"] == gate["judge"]["calls"] == sum(
        r["acceptance"]["judge"]["calls"] for r in records.values() if r.get("acceptance"))
    assert summary.tokens["calls"] + gate["judge"]["calls"] == fake_server.stats.total
    assert summary.outcomes["not_improved"] == gate["not_improved"] == n_not
    assert gate["rows"] == sum(r.get("acceptance") is not None for r in records.values())
    assert gate["not_improved_share"] == round(n_not / gate["rows"], 4)
    extra = sum(r["acceptance"]["extra"]["calls"] for r in records.values() if r.get("acceptance"))
    assert gate["extra_task"]["calls"] == extra > 0
    assert gate["extra_task_call_share"] == round(extra / summary.tokens["calls"], 4)
    failures = [json.loads(line) for line in
                (data / "runs" / "gate" / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["id"] for f in failures if f["outcome"] == "not_improved") == sorted(
        i for i, r in records.items() if r["outcome"] == "not_improved")
    assert all("scores" in f for f in failures if f["outcome"] == "not_improved")

    # Never published as aligned: clean sets every not_improved example aside.
    merge(data, "gate")
    cleaned = clean(data)
    assert cleaned.total["not_improved"] == n_not
    kept = [json.loads(line)["id"] for line in
            (data / "cleaned" / CONFIG / "train.jsonl").read_text().splitlines()]
    assert sorted(kept) == sorted(i for i, r in records.items() if r["outcome"] == "aligned")
    rejects = (data / "cleaned" / CONFIG / "train.rejects.jsonl").read_text()
    assert rejects.count('"outcome": "not_improved"') == n_not


def _args(data, settings, name="p"):
    return ["run", "--data", str(data), "--settings", str(settings), "--no-track",
            "--no-progress", "--run-name", name, "--modes", "B"]


def _manifest(data, name="p"):
    return json.loads((data / "runs" / name / "manifest.json").read_text())


@pytest.fixture
def two_rows(tmp_path, real_rows_path, fake_server):
    data = write_raw(tmp_path / "data",
                     {(CONFIG, "train"): make_rows(read_rows(real_rows_path), 2, "p")})
    return data, write_settings(tmp_path / "s.yaml", fake_server.url)


def test_the_gate_is_a_run_parameter(two_rows, caplog):
    data, settings = two_rows
    args = _args(data, settings)
    assert cli.main([*args, "--accept-retries", "0"]) == 0  # the gate is on by default
    manifest = _manifest(data)
    assert manifest["params"]["acceptance"] == {"retries": 0, "margin": DEFAULT_MARGIN}
    assert manifest["params"]["scoring"]["enabled"] is True
    summary = json.loads((data / "runs" / "p" / "summary.json").read_text())
    assert summary["acceptance"]["margin"] == DEFAULT_MARGIN
    # Resuming without the gate, or with another margin, changes what the results mean:
    # refused without --force.
    assert cli.main([*args, "--accept-retries", "0", "--no-accept"]) == 1
    assert 'acceptance: {"retries": 0, "margin": 0.01} -> (none)' in caplog.text
    assert cli.main([*args, "--accept-retries", "0", "--accept-margin", "0.05"]) == 1
    assert "acceptance.margin: 0.01 -> 0.05" in caplog.text
    assert cli.main([*args, "--accept-retries", "0", "--accept-if-better"]) == 0


def test_a_run_started_before_the_gate_was_the_default_resumes_with_no_accept(two_rows, caplog):
    data, settings = two_rows
    args = _args(data, settings)
    assert cli.main([*args, "--no-accept-if-better"]) == 0
    assert "acceptance" not in _manifest(data)["params"]
    assert cli.main(args) == 1
    assert "acceptance: (none) -> " in caplog.text and "pass --no-accept to resume" in caplog.text
    assert cli.main([*args, "--no-accept"]) == 0


def test_a_gate_recorded_before_the_margin_resumes_with_margin_zero(two_rows, caplog):
    data, settings = two_rows
    args = _args(data, settings)
    assert cli.main([*args, "--accept-margin", "0"]) == 0
    path = data / "runs" / "p" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["params"]["acceptance"] = {"retries": 2}  # as a run before the margin wrote it
    path.write_text(json.dumps(manifest))
    assert cli.main(args) == 1
    assert "acceptance.margin: 0.0 -> 0.01" in caplog.text
    assert cli.main([*args, "--accept-margin", "0"]) == 0


def test_no_score_turns_the_gate_off_and_an_explicit_gate_with_it_is_refused(two_rows, caplog):
    data, settings = two_rows
    args = _args(data, settings)
    assert cli.main([*args, "--no-score", "--accept-if-better"]) == 2
    assert "--accept-if-better needs the scores" in caplog.text
    with caplog.at_level("INFO"):
        assert cli.main([*args, "--no-score"]) == 0
    assert "the acceptance gate is off" in caplog.text
    assert "acceptance" not in _manifest(data)["params"]
    records = results(data / "runs" / "p")
    assert records and all(r.get("acceptance") is None and r.get("scores") is None
                           for r in records)
