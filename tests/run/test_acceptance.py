"""``run --accept-if-better`` end to end on the fake endpoint, with the judge's readings."""

from __future__ import annotations

import json

from argalign import cli
from argalign.run.clean import clean
from argalign.run.merge import merge
from argalign.run.runner import run_batch
from support import CONFIG, make_rows, read_rows, results, run_options, write_raw, write_settings


def test_every_kept_rewrite_scores_no_lower_and_the_rest_end_not_improved(
        tmp_path, real_rows_path, fake_server):
    rows = make_rows(read_rows(real_rows_path), 12, "g")
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    summary = run_batch(run_options(data, settings, accept_if_better=True, accept_retries=1,
                                    run_name="gate"))

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
            assert after["score"] >= before["score"] and gate["accepted"] is True
        if record["outcome"] == "not_improved":
            assert record["row"] is None and record["codes"] == ["NOT_IMPROVED"]
            before, after = record["scores"]["baseline"], record["scores"]["aligned"]
            assert after["score"] < before["score"]
            assert gate["attempts"] == 2 and gate["extra"]["calls"] > 0
            # The judge's readings are cached for the run, so a row whose texts were read
            # before (the rows repeat) may cost no new call; across the rows they do.
            assert gate["judge"]["calls"] >= 0
    assert sum(r["acceptance"]["judge"]["calls"] for r in records.values()
               if r["outcome"] == "not_improved") > 0

    n_not = sum(r["outcome"] == "not_improved" for r in records.values())
    gate = summary["acceptance"]
    assert summary["outcomes"]["not_improved"] == gate["not_improved"] == n_not
    assert gate["rows"] == sum(r.get("acceptance") is not None for r in records.values())
    assert gate["not_improved_share"] == round(n_not / gate["rows"], 4)
    extra = sum(r["acceptance"]["extra"]["calls"] for r in records.values() if r.get("acceptance"))
    assert gate["extra_task"]["calls"] == extra > 0
    assert gate["extra_task_call_share"] == round(extra / summary["tokens"]["calls"], 4)
    failures = [json.loads(line) for line in
                (data / "runs" / "gate" / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["id"] for f in failures if f["outcome"] == "not_improved") == sorted(
        i for i, r in records.items() if r["outcome"] == "not_improved")
    assert all("scores" in f for f in failures if f["outcome"] == "not_improved")

    # Never published as aligned: clean sets every not_improved example aside.
    merge(data, "gate")
    cleaned = clean(data)
    assert cleaned["total"]["not_improved"] == n_not
    kept = [json.loads(line)["id"] for line in
            (data / "cleaned" / CONFIG / "train.jsonl").read_text().splitlines()]
    assert sorted(kept) == sorted(i for i, r in records.items() if r["outcome"] == "aligned")
    rejects = (data / "cleaned" / CONFIG / "train.rejects.jsonl").read_text()
    assert rejects.count('"outcome": "not_improved"') == n_not


def test_the_gate_is_a_run_parameter(tmp_path, real_rows_path, fake_server, caplog):
    data = write_raw(tmp_path / "data",
                     {(CONFIG, "train"): make_rows(read_rows(real_rows_path), 2, "p")})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    args = ["run", "--data", str(data), "--settings", str(settings), "--no-track",
            "--no-progress", "--run-name", "p", "--modes", "B"]
    assert cli.main([*args, "--accept-if-better", "--accept-retries", "0"]) == 0
    manifest = json.loads((data / "runs" / "p" / "manifest.json").read_text())
    assert manifest["params"]["acceptance"] == {"retries": 0}
    assert manifest["params"]["scoring"]["enabled"] is True
    # Resuming without the gate changes what the results mean: refused without --force.
    assert cli.main(args) == 1
    assert 'acceptance: {"retries": 0} -> (none)' in caplog.text
