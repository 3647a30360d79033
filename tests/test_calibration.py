"""Calibration against an oracle: the fitted slope, the agreement, the pairs labelled "same",
bad files, and the score command's --original and --oracle."""

from __future__ import annotations

import importlib.resources
import json
import math
from pathlib import Path

import pytest

from argalign.cli import main
from argalign.core.errors import ConfigError
from argalign.scoring.calibration import OraclePair, calibrate, fit_slope, log_loss, read_oracle

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


def _oracle_line(pair_id: str, a: str, b: str, better: str) -> str:
    return json.dumps({"id": pair_id, "a": {"name": a}, "b": {"name": b}, "better": better,
                       "by": "test", "why": ""}) + "\n"


def test_same_pairs_are_kept_out_of_the_fit_and_report_how_close_they_score(tmp_path):
    scores = {"w": 0.9, "x": 0.1, "y": 0.5, "z": 0.5, "y2": 0.505, "z2": 0.47}
    path = tmp_path / "labels.jsonl"
    path.write_text("".join([
        _oracle_line("better", "w", "x", "a"), _oracle_line("worse", "x", "w", "b"),
        _oracle_line("wrong", "w", "x", "b"),
        _oracle_line("same-equal", "y", "z", "same"),  # d = 0
        _oracle_line("same-close", "y2", "z", "same"),  # d = +0.005
        _oracle_line("same-apart", "z2", "y", "same"),  # d = -0.03
    ]), "utf-8")
    pairs = read_oracle(path)
    assert [p.better for p in pairs] == ["a", "b", "b", "same", "same", "same"]
    result, lines = calibrate(pairs, lambda row: scores[row["name"]])

    assert result.pairs == 3 and result.agreement.value == pytest.approx(2 / 3)
    assert result.slope == fit_slope([0.8, -0.8, 0.8], [1, 0, 0])  # the a/b lines only
    same = result.same
    assert same.difference.n == 3 and same.threshold == 0.01
    assert same.difference.value == pytest.approx((0 + 0.005 - 0.03) / 3)
    assert same.abs_difference.value == pytest.approx((0 + 0.005 + 0.03) / 3)
    assert same.abs_difference.low <= same.abs_difference.value <= same.abs_difference.high
    assert same.within.value == pytest.approx(2 / 3)
    assert [line.get("within_repeatability") for line in lines[3:]] == [True, True, False]
    assert all("agrees" not in line for line in lines[3:]) and lines[0]["agrees"]

    summary = result.as_dict()
    assert summary["pairs"] == 6 and summary["better_worse"]["pairs"] == 3
    assert summary["better_worse"]["agreement"]["mean"] == pytest.approx(0.667)
    assert summary["same"]["pairs"] == 3 and summary["same"]["within_repeatability"]["mean"] == \
        pytest.approx(0.667)
    assert "3 better/worse pairs" in result.describe() and "3 same pairs" in result.describe()

    # A looser repeatability counts the third pair too.
    loose, _ = calibrate(pairs, lambda row: scores[row["name"]], repeatability=0.05)
    assert loose.same.within.value == 1.0

    # A reason with U+2028 written raw (as a browser's JSON.stringify writes it) is one line.
    path.write_text(json.dumps({"a": {}, "b": {}, "better": "same", "why": "one\u2028line"},
                               ensure_ascii=False) + "\n", "utf-8")
    assert [p.why for p in read_oracle(path)] == ["one\u2028line"]

    # A label that is none of the three is an error that names its line.
    path.write_text(_oracle_line("ok", "w", "x", "same") + _oracle_line("bad", "w", "x", "maybe"))
    with pytest.raises(ConfigError, match=r"labels.jsonl:2: .*found 'maybe'"):
        read_oracle(path)


def test_a_file_of_same_pairs_only_fits_nothing(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text(_oracle_line("1", "y", "z", "same"), "utf-8")
    result, lines = calibrate(read_oracle(path), lambda row: 0.5)
    assert not result.fitted and result.agreement is None and result.as_dict()["better_worse"] is None
    assert result.same.within.value == 1.0 and "p_a_better" not in lines[0]


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "not JSON"),
    (json.dumps({"a": {}, "b": {}, "better": "c"}), "'better'"),
    (json.dumps({"a": {}, "b": {}, "better": "maybe"}), "'a', 'b' or 'same' \\(found 'maybe'\\)"),
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
    assert oracle["pairs"] == len(pairs) and oracle["same"] is None
    fitted = oracle["better_worse"]
    assert fitted["pairs"] == len(pairs) and fitted["agreement"]["mean"] >= 0.75
    assert fitted["log_loss"] < fitted["log_loss_chance"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(0.5 < line["p_better"] <= 1 for line in lines)
    per_pair = Path(str(out) + ".oracle.jsonl").read_text().splitlines()
    assert len(per_pair) == len(pairs)


def test_score_refuses_a_negative_repeatability(tmp_path, caplog):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(read_oracle(ORACLE)[0].a) + "\n")
    assert main(["score", "--in", str(rows), "--oracle", str(ORACLE), "--comparison", "structural",
                 "--repeatability", "-0.1", "--out", str(tmp_path / "s.jsonl")]) != 0
    assert "--repeatability must be" in caplog.text
