"""Calibration against an oracle: the fitted slope, the agreement, bad files, and the score
command's --original and --oracle."""

from __future__ import annotations

import importlib.resources
import json
import math
from pathlib import Path

import pytest

from argalign.calibration import OraclePair, calibrate, fit_slope, log_loss, read_oracle
from argalign.cli import main
from argalign.errors import ConfigError

ORACLE = Path(str(importlib.resources.files("argalign") / "data" / "oracle" / "pairs.jsonl"))


def test_the_fitted_slope_minimises_the_log_loss():
    # Label frequencies that follow sigmoid(4 d) exactly: 100 pairs per difference.
    diffs, labels = [], []
    for d in (-0.5, -0.2, 0.1, 0.3):
        p = 1 / (1 + math.exp(-4 * d))
        wins = round(100 * p)
        diffs += [d] * 100
        labels += [1] * wins + [0] * (100 - wins)
    slope = fit_slope(diffs, labels)
    assert slope == pytest.approx(4.0, abs=0.1)
    assert log_loss(slope, diffs, labels) < log_loss(0.0, diffs, labels) == pytest.approx(
        math.log(2))


def test_agreement_counts_ties_half_and_respects_which_side_is_better():
    rows = {name: {"name": name} for name in "wxyz"}
    scores = {"w": 0.9, "x": 0.1, "y": 0.5, "z": 0.5}
    pairs = [OraclePair("1", rows["w"], rows["x"], "a"), OraclePair("2", rows["x"], rows["w"], "b"),
             OraclePair("3", rows["y"], rows["z"], "a"), OraclePair("4", rows["w"], rows["x"], "b")]
    result, lines = calibrate(pairs, lambda row: scores[row["name"]])
    assert result.agreement.value == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert [line["agrees"] for line in lines] == [True, True, False, False]
    assert lines[2]["tie"] and lines[2]["p_a_better"] == 0.5


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "not JSON"),
    (json.dumps({"a": {}, "b": {}, "better": "c"}), "'better'"),
    (json.dumps({"a": {}, "better": "a"}), "rows 'a' and 'b'"),
])
def test_a_bad_oracle_line_is_an_error_that_names_it(tmp_path, line, message):
    path = tmp_path / "oracle.jsonl"
    path.write_text(line + "\n", "utf-8")
    with pytest.raises(ConfigError, match=f"oracle.jsonl:1: .*{message}"):
        read_oracle(path)
    with pytest.raises(ConfigError, match="not found"):
        read_oracle(tmp_path / "missing.jsonl")


def test_the_bundled_oracle_file_is_reproducible_and_well_formed():
    pairs = read_oracle(ORACLE)
    assert len(pairs) >= 20
    assert {p.id.split("/")[0] for p in pairs} == {"complete", "explicit", "plan", "preamble"}
    assert {p.better for p in pairs} == {"a", "b"}  # the better side is not always first
    assert all(p.why and p.by for p in pairs)


def test_score_with_original_and_oracle(tmp_path, capsys):
    pairs = read_oracle(ORACLE)
    explicit = [p for p in pairs if p.id.startswith("explicit/")]
    original = tmp_path / "original.jsonl"
    aligned = tmp_path / "aligned.jsonl"
    original.write_text("".join(json.dumps({**p.a, "source_id": p.id}) + "\n" for p in explicit))
    aligned.write_text("".join(json.dumps({**p.b, "source_id": p.id}) + "\n" for p in explicit))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--in", str(aligned), "--original", str(original), "--oracle",
                 str(ORACLE), "--comparison", "structural", "--out", str(out), "--no-track"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["paired"] == len(explicit)
    assert summary["difference"]["mean"] > 0 and summary["difference"]["low"] > 0
    oracle = summary["oracle"]
    assert oracle["pairs"] == len(pairs) and oracle["agreement"]["mean"] >= 0.75
    assert oracle["log_loss"] < oracle["log_loss_chance"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(0.5 < line["p_better"] <= 1 for line in lines)
    per_pair = Path(str(out) + ".oracle.jsonl").read_text().splitlines()
    assert len(per_pair) == len(pairs)
