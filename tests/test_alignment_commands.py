"""``argalign align`` and ``argalign score`` on files: every input line ends in one record."""

from __future__ import annotations

import json

import pytest

from argalign.cli import main
from argalign.scoring.invariants import check_row
from support import write_settings


def _lines(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_align_file_records_every_line_even_bad_ones(tmp_path, real_rows_path, fake_server,
                                                     capsys):
    good = real_rows_path.read_text("utf-8").splitlines()[:2]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([good[0], "{not json", json.dumps({"no": "messages"}), good[1]])
                      + "\n", "utf-8")
    settings = write_settings(tmp_path / "settings.json", fake_server.url)
    out = tmp_path / "out.jsonl"

    assert main(["align", "--mode", "B", "--in", str(source), "--out", str(out),
                 "--settings", str(settings)]) == 0

    records = _lines(out)
    assert [r["id"] for r in records] == ["example_id=0", "line 2", "line 3", "example_id=1"]
    outcomes = [r["outcome"] for r in records]
    assert outcomes[1] == outcomes[2] == "rejected"
    assert [records[1]["codes"], records[2]["codes"]] == [["LINE_NOT_JSON"], ["NOT_A_ROW"]]
    assert all(r["reason"] for r in records[1:3])
    originals = {1: json.loads(good[0]), 4: json.loads(good[1])}
    for lineno, original in originals.items():
        record = records[lineno - 1]
        assert record["outcome"] in ("aligned", "unchanged", "failed")
        if record["row"] is not None:
            assert check_row(original, record["row"], "B") == []
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary["outcomes"].values()) == 4


def test_score_file_means_and_skips_rows_without_a_row(tmp_path, real_rows_path, fake_server,
                                                       capsys):
    rows = [json.loads(line) for line in real_rows_path.read_text("utf-8").splitlines()[:2]]
    source = tmp_path / "aligned.jsonl"
    source.write_text("\n".join(json.dumps({"id": f"r{i}", "row": row, "outcome": "aligned"})
                                for i, row in enumerate(rows))
                      + "\n" + json.dumps({"id": "r9", "row": None, "outcome": "failed"}) + "\n",
                      "utf-8")
    settings = write_settings(tmp_path / "settings.json", fake_server.url)
    out = tmp_path / "scores.jsonl"

    assert main(["score", "--in", str(source), "--out", str(out), "--comparison", "lexical",
                 "--settings", str(settings), "--no-track"]) == 0

    lines = _lines(out)
    assert [line["status"] for line in lines] == ["scored", "scored", "skipped"]
    for line in lines[:2]:
        parts = [line["forward"], line["backward"], line["coherence"]]
        assert all(0.0 <= p <= 1.0 for p in parts)
        assert abs(line["score"] - sum(parts) / 3) < 1e-3
    summary = json.loads(capsys.readouterr().out)
    assert summary["scored"] == 2 and summary["judge"] is None  # lexical: no model started
    expected = sum(line["score"] for line in lines[:2]) / 2
    mean = summary["mean"]["score"]
    assert abs(mean["mean"] - expected) < 1e-3
    assert mean["low"] <= mean["mean"] <= mean["high"] and mean["n"] == 2


def test_score_with_a_judged_comparison_needs_a_judge_only_then(tmp_path, real_rows_path,
                                                                fake_server, caplog):
    row = json.loads(real_rows_path.read_text("utf-8").splitlines()[0])
    source = tmp_path / "aligned.jsonl"
    source.write_text(json.dumps({"id": "r0", "row": row, "outcome": "aligned"}) + "\n", "utf-8")
    settings = write_settings(tmp_path / "settings.json", fake_server.url)
    plain = json.loads(settings.read_text())
    del plain["default_judge"]
    settings.write_text(json.dumps(plain))
    base = ["score", "--in", str(source), "--settings", str(settings), "--no-track"]

    assert main([*base, "--out", str(tmp_path / "rules.jsonl"), "--comparison", "structural"]) == 0
    assert main([*base, "--out", str(tmp_path / "judged.jsonl"), "--comparison", "judge"]) == 2
    assert "set `default_judge`" in caplog.text
    assert not (tmp_path / "judged.jsonl").exists() and fake_server.stats.total == 0


# --- nothing usable is an error (#12 item 13) ------------------------------------------------

def test_align_that_aligns_nothing_exits_1_with_every_line_recorded(tmp_path, fake_server, caplog):
    source = tmp_path / "in.jsonl"
    source.write_text('{not json\n{"no": "messages"}\n[1, 2]\n', "utf-8")
    settings = write_settings(tmp_path / "settings.json", fake_server.url)
    out = tmp_path / "out.jsonl"
    assert main(["align", "--mode", "B", "--in", str(source), "--out", str(out),
                 "--settings", str(settings)]) == 1
    assert [r["outcome"] for r in _lines(out)] == ["rejected"] * 3
    assert "no row was aligned" in caplog.text


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_align_and_validate_refuse_an_empty_input(tmp_path, content):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content, "utf-8")
    assert main(["align", "--mode", "A", "--in", str(empty), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert not (tmp_path / "o.jsonl").exists()
    assert main(["validate", "--original", str(empty), "--aligned", str(empty), "--mode", "A"]) == 2


# --- a row whose 'messages' is no list (#21 item 7); nothing scored is a failure (item 16) ---

def test_align_and_score_reject_a_row_whose_messages_is_no_list_and_go_on(
        tmp_path, real_rows_path, fake_server):
    good = real_rows_path.read_text("utf-8").splitlines()[:2]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([good[0], json.dumps({"messages": 5}), good[1]]) + "\n", "utf-8")
    settings = write_settings(tmp_path / "settings.json", fake_server.url)

    assert main(["align", "--mode", "B", "--in", str(source), "--out", str(tmp_path / "a.jsonl"),
                 "--settings", str(settings)]) in (0, 1)
    records = _lines(tmp_path / "a.jsonl")
    assert [(r["id"], r["outcome"], r["codes"]) for r in records][1] == \
        ("line 2", "rejected", ["NO_MESSAGES"])
    assert [r["id"] for r in records] == ["example_id=0", "line 2", "example_id=1"]

    assert main(["score", "--in", str(source), "--out", str(tmp_path / "s.jsonl"),
                 "--comparison", "lexical"]) == 0
    lines = _lines(tmp_path / "s.jsonl")
    assert [line["status"] for line in lines] == ["scored", "failed", "scored"]
    assert "NO_MESSAGES" in lines[1]["reason"]


def test_score_that_scores_nothing_exits_1(tmp_path, caplog):
    source = tmp_path / "in.jsonl"
    source.write_text('{not json\n{"no": "messages"}\n{"id": "r", "row": null}\n', "utf-8")
    out = tmp_path / "s.jsonl"
    assert main(["score", "--in", str(source), "--out", str(out), "--comparison", "lexical"]) == 1
    assert [line["status"] for line in _lines(out)] == ["failed", "failed", "skipped"]
    assert "no row was scored" in caplog.text
