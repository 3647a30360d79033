"""Merge follows the raw order and refuses duplicates; clean keeps only rows that pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from argalign import cli
from argalign.core.errors import ArgalignError, ConfigError, RunError
from argalign.core.jsonl import iter_jsonl
from argalign.stages.clean import clean
from argalign.stages.merge import MergedSubset, merge
from argalign.stages.run.runner import run_batch
from argalign.testing.argalign_responder import ArgalignResponder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer
from support import (
    CONFIG,
    make_rows,
    raw_ids,
    read_rows,
    responder,
    run_options,
    write_raw,
    write_settings,
)

RUN = "run-AB-fake-s0"


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory, real_rows_path) -> Path:
    """One finished run (two subsets, modes A and B), made once and copied for each test."""
    where = tmp_path_factory.mktemp("finished")
    real = read_rows(real_rows_path)
    data = write_raw(where / "data", {(CONFIG, "train"): make_rows(real, 7, "tr"),
                                      (CONFIG, "test"): make_rows(real, 3, "te")})
    with FakeOpenAIServer(FakeConfig(output_words=12), responder=ArgalignResponder(responder)) as server:
        settings = write_settings(where / "s.yaml", server.url, concurrency=3)
        # the gate off: every rewrite that passes the checks is kept, for clean to check again
        assert run_batch(run_options(data, settings, accept_if_better=False)).done == 10
    return data


@pytest.fixture
def finished(tmp_path, finished_template) -> Path:
    return Path(shutil.copytree(finished_template, tmp_path / "data"))


def _read(path: Path) -> list[dict]:
    return [record for _, record in iter_jsonl(path)]


def _result_file(data: Path, split: str, mode: str) -> Path:
    return data / "runs" / RUN / "results" / CONFIG / split / f"{mode}-fake.jsonl"


def test_merge_follows_raw_order_and_is_idempotent(finished):
    summary = merge(finished)
    assert summary.subsets[f"{CONFIG}/train"] == MergedSubset(raw=7, merged=7, missing=[], extra=0)
    for split in ("train", "test"):
        merged = finished / "merged" / CONFIG / f"{split}.jsonl"
        assert [r["id"] for r in _read(merged)] == raw_ids(finished, CONFIG, split)
    before = (finished / "merged" / CONFIG / "train.jsonl").read_bytes()
    merge(finished, RUN)
    assert (finished / "merged" / CONFIG / "train.jsonl").read_bytes() == before


def test_merge_ignores_temporary_files_and_torn_lines(finished):
    directory = _result_file(finished, "train", "A").parent
    line = _result_file(finished, "train", "A").read_text().splitlines()[0]
    for name in (".A-fake.jsonl.abc.tmp", "A-fake.jsonl.partial", "notes.txt"):
        (directory / name).write_text(line + "\n")
    with _result_file(finished, "train", "B").open("a") as fh:
        fh.write(line[: len(line) // 2])
    assert merge(finished).subsets[f"{CONFIG}/train"].merged == 7


@pytest.mark.parametrize("bad", ["{\"id\": \"x\", \"outc", "42", "[1, 2]", "{\"id\": 3}"])
def test_a_bad_result_line_that_is_not_the_torn_tail_is_an_error(finished, bad):
    path = _result_file(finished, "train", "A")
    lines = path.read_text().splitlines()
    path.write_text("".join(line + "\n" for line in [lines[0], bad, *lines[1:]]))
    with pytest.raises(ArgalignError, match=f"{path.name}:2"):
        merge(finished)
    assert cli.main(["merge", "--data", str(finished)]) == cli.EXIT_FAILED
    assert not (finished / "merged" / "summary.json").exists()


def test_a_corrupt_merged_or_raw_line_is_an_error_in_clean(finished):
    merge(finished)
    merged = finished / "merged" / CONFIG / "train.jsonl"
    lines = merged.read_text().splitlines()
    merged.write_text("".join(line + "\n" for line in [lines[0], lines[1][:40], *lines[2:]]))
    with pytest.raises(ArgalignError, match="train.jsonl:2"):
        clean(finished)
    assert cli.main(["clean", "--data", str(finished)]) == cli.EXIT_FAILED
    merge(finished)
    raw = finished / "raw" / CONFIG / "train.jsonl"
    raw.write_bytes(raw.read_bytes()[:-10])  # the raw file is written atomically: no tolerance
    with pytest.raises(ArgalignError, match="train.jsonl:7"):
        clean(finished)


@pytest.mark.parametrize("corrupt", [
    "42", "[1, 2]", '"str"', "null", "{}",
    {"outcome": "weird"},             # an outcome that does not exist
    {"row": None},                    # 'aligned' without its row
    {"id": 7},                        # an id that is not a string
    {"codes": "ROLE_CHANGED"},        # codes that are not a list of strings
])
def test_a_corrupt_merged_record_is_an_error_naming_file_and_line(finished, corrupt):
    merge(finished)
    merged = finished / "merged" / CONFIG / "train.jsonl"
    lines = merged.read_text().splitlines()
    second = json.loads(lines[1])
    assert second["outcome"] == "aligned"
    bad = corrupt if isinstance(corrupt, str) else json.dumps({**second, **corrupt})
    merged.write_text("".join(line + "\n" for line in [lines[0], bad, *lines[2:]]))
    with pytest.raises(RunError, match=r"merged/deepa2-aaac01-thinking/train\.jsonl:2: .*corrupt"):
        clean(finished)
    assert not (finished / "cleaned" / "summary.json").exists()
    assert cli.main(["clean", "--data", str(finished)]) == cli.EXIT_FAILED


def test_duplicate_id_is_an_error_naming_id_and_files(finished):
    a, b = _result_file(finished, "train", "A"), _result_file(finished, "train", "B")
    line = a.read_text().splitlines()[0]
    with b.open("a") as fh:
        fh.write(line + "\n")
    with pytest.raises(RunError) as error:
        merge(finished)
    message = str(error.value)
    assert json.loads(line)["id"] in message and a.name in message and b.name in message


def test_missing_id_is_an_error_unless_allowed(finished):
    merge(finished)
    assert (finished / "merged" / "summary.json").is_file()
    path = _result_file(finished, "test", "A")
    lines = path.read_text().splitlines()
    gone = json.loads(lines[0])["id"]
    path.write_text("".join(line + "\n" for line in lines[1:]))
    with pytest.raises(RunError, match=gone):
        merge(finished)
    # The summary is merge's completion marker: a failed merge leaves none behind.
    assert not (finished / "merged" / "summary.json").exists()
    summary = merge(finished, allow_missing=True)
    assert summary.subsets[f"{CONFIG}/test"].missing == [gone]
    # clean reports the missing example among the rejects
    cleaned = clean(finished)
    assert cleaned.subsets[f"{CONFIG}/test"]["missing"] == 1
    rejects = _read(finished / "cleaned" / CONFIG / "test.rejects.jsonl")
    assert {"id": gone, "outcome": "missing"}.items() <= next(
        r for r in rejects if r["id"] == gone).items()


def test_clean_keeps_passing_rows_and_rejects_a_tampered_one(finished):
    merge(finished)
    merged_path = finished / "merged" / CONFIG / "train.jsonl"
    merged = _read(merged_path)
    assert all(r["outcome"] == "aligned" for r in merged)
    victim = merged[2]
    assistant = next(m for m in victim["row"]["messages"] if m["role"] == "assistant"
                     and m["content"])
    assistant["content"] += " (edited)"
    merged_path.write_text("".join(json.dumps(r) + "\n" for r in merged))

    summary = clean(finished)
    train = summary.subsets[f"{CONFIG}/train"]
    assert train["rows_in"] == 7 and train["aligned"] == 6 and train["rejected"] == 1
    kept = _read(finished / "cleaned" / CONFIG / "train.jsonl")
    assert [r["id"] for r in kept] == [i for i in raw_ids(finished, CONFIG, "train")
                                       if i != victim["id"]]
    assert set(kept[0]) == {"id", "config", "split", "index", "row", "provenance"}
    assert set(kept[0]["provenance"]) >= {"mode", "model", "program", "outcome", "attempts",
                                          "input_tokens", "output_tokens", "latency_s"}
    (reject,) = _read(finished / "cleaned" / CONFIG / "train.rejects.jsonl")
    assert reject["id"] == victim["id"] and reject["codes"] == ["ASSISTANT_CONTENT_CHANGED"]
    assert "ASSISTANT_CONTENT_CHANGED" in reject["reason"] and reject["outcome"] == "rejected"
    on_disk = json.loads((finished / "cleaned" / "summary.json").read_text())
    assert on_disk["total"]["rows_in"] == 10 and on_disk["total"]["aligned"] == 9


def test_clean_sets_aside_unchanged_failed_and_rejected(finished):
    merge(finished)
    path = finished / "merged" / CONFIG / "test.jsonl"
    records = _read(path)
    records[0].update(outcome="failed", row=None, codes=["PARSE_ERROR"], reason="PARSE_ERROR: x")
    records[1].update(outcome="unchanged", reason="identical")
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    test = clean(finished).subsets[f"{CONFIG}/test"]
    assert (test["aligned"], test["failed"], test["unchanged"]) == (1, 1, 1)
    rejects = {r["id"]: r for r in _read(finished / "cleaned" / CONFIG / "test.rejects.jsonl")}
    assert rejects[records[0]["id"]]["reason"] == "PARSE_ERROR: x"
    assert rejects[records[1]["id"]]["outcome"] == "unchanged"


def test_cli_merge_and_clean(finished, capsys):
    assert cli.main(["merge", "--data", str(finished)]) == 0
    assert json.loads(capsys.readouterr().out)["run"] == RUN
    assert cli.main(["clean", "--data", str(finished)]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "aligned" in out


def test_clean_without_merge_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError):
        clean(tmp_path / "nothing")


def _merged_by_hand(tmp_path: Path, sample_rows: list[dict], edits: list) -> Path:
    """A data folder whose merged file holds one 'aligned' record per edit (no run needed)."""
    from argalign.core.jsonl import write_json_atomic, write_jsonl_atomic
    from argalign.stages.prepare import prepare

    source = tmp_path / "src.jsonl"
    write_jsonl_atomic(source, sample_rows[:len(edits)])
    data = tmp_path / "data"
    prepare(source=str(source), configs=[CONFIG], splits=["train"], n=None, seed=0, data=data)
    raw = _read(data / "raw" / CONFIG / "train.jsonl")
    records = []
    for example, (mode, edit) in zip(raw, edits):
        records.append({"id": example["id"], "config": CONFIG, "split": "train",
                        "index": example["index"], "mode": mode, "model": "fake", "program": "p",
                        "outcome": "aligned", "reason": "", "codes": [], "row": edit(example["row"])})
    write_jsonl_atomic(data / "merged" / CONFIG / "train.jsonl", records)
    write_json_atomic(data / "merged" / "summary.json", {"run": "hand", "subsets": {f"{CONFIG}/train": {}}})
    return data


def _thinking(edit):
    def apply(row):
        row = json.loads(json.dumps(row))
        for m in row["messages"]:
            if m["role"] == "assistant" and m["thinking"]:
                m["thinking"] = edit(m["thinking"])
        return row
    return apply


def test_clean_sets_aside_whitespace_only_rewrites_and_records_without_a_mode(tmp_path, sample_rows):
    def long_user_change(row):
        row = _thinking(lambda t: "New opening. " + t)(row)
        row["messages"][1]["content"] += "\n\n" + "Please also do much more. " * 30 + "Thanks."
        return row

    data = _merged_by_hand(tmp_path, sample_rows, [
        ("B", _thinking(lambda t: "New opening. " + t)),            # kept
        ("B", _thinking(lambda t: t.replace(" ", "\u00a0", 3) + "\n")),  # whitespace only
        (None, long_user_change),                                   # no mode: no Mode B bound
        ("B", long_user_change),                                    # over the Mode B bound
    ])
    summary = clean(data)
    assert summary.total["aligned"] == 1
    assert summary.total["unchanged"] == 1 and summary.total["rejected"] == 2
    rejects = {r["index"]: r for r in _read(data / "cleaned" / CONFIG / "train.rejects.jsonl")}
    assert rejects[1]["outcome"] == "unchanged"
    assert rejects[2]["codes"] == ["UNKNOWN_MODE"]
    assert rejects[3]["codes"] == ["USER_CHANGE_EXCEEDS_BOUND"]


def test_each_step_refuses_what_an_interrupted_step_before_it_left(finished):
    from argalign.stages.publish import publish

    merge(finished)
    clean(finished)
    # clean dies half way (a corrupt merged line in its second subset): no summary, publish refuses
    merged = finished / "merged" / CONFIG / "train.jsonl"
    good = merged.read_bytes()
    merged.write_bytes(good.replace(b"\n", b"\n{broken\n", 1))
    with pytest.raises(ArgalignError):
        clean(finished)
    assert not (finished / "cleaned" / "summary.json").exists()
    with pytest.raises(RunError, match="clean step did not finish"):
        publish(finished, org="o", repo_name="x", configs=[CONFIG], dry_run=finished.parent / "dry")
    # merge dies: no merged summary, so clean refuses instead of taking the files that are there
    merged.write_bytes(good)
    path = _result_file(finished, "test", "A")
    path.write_text(path.read_text().replace("\n", "\n42\n", 1))
    with pytest.raises(ArgalignError):
        merge(finished)
    with pytest.raises(ConfigError, match="merge did not run or did not finish"):
        clean(finished)
    assert cli.main(["clean", "--data", str(finished)]) == cli.EXIT_CONFIG


def test_a_clean_that_keeps_nothing_is_an_error(tmp_path, sample_rows):
    data = _merged_by_hand(tmp_path, sample_rows, [("B", lambda r: r), ("B", _thinking(lambda t: t + " "))])
    with pytest.raises(RunError, match="kept no row: all 2"):
        clean(data)
    assert cli.main(["clean", "--data", str(data)]) == cli.EXIT_FAILED
    assert len(_read(data / "cleaned" / CONFIG / "train.rejects.jsonl")) == 2


def test_a_full_disk_is_a_failed_step_naming_the_file(finished, monkeypatch, caplog):
    import errno

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("argalign.core.files.os.fsync", disk_full)
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(["merge", "--data", str(finished)]) == 1
    assert "No space left on device" in caplog.text and "configuration" not in caplog.text
    assert str(finished / "merged" / CONFIG) in caplog.text  # the file it could not write


@pytest.mark.parametrize("inp", ["data", "cleaned", "file"])
def test_export_refuses_an_interrupted_or_partial_clean_as_publish_does(finished, caplog, inp):
    merge(finished)
    clean(finished)
    cleaned = finished / "cleaned"
    source = {"data": ["--data", finished], "cleaned": ["--in", cleaned],
              "file": ["--in", cleaned / CONFIG / "train.jsonl"]}[inp]
    out = finished.parent / "export"
    args = ["export", "--format", "sharegpt", *map(str, source), "--out-dir", str(out)]
    assert cli.main(args) == cli.EXIT_OK  # a finished clean exports
    # a clean that died after rewriting the train file: one row short of what its summary says
    path = cleaned / CONFIG / "train.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    shutil.rmtree(out)
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(args) == cli.EXIT_FAILED
    assert f"{path} holds" in caplog.text and not out.exists()
    # a clean that died before writing its summary
    (cleaned / "summary.json").unlink()
    with caplog.at_level("ERROR", logger="argalign"):
        assert cli.main(args) == cli.EXIT_FAILED
    assert "clean step did not finish" in caplog.text and not out.exists()


def test_export_leaves_out_a_file_the_last_clean_did_not_write(finished):
    from argalign.stages.export import export

    merge(finished)
    clean(finished)
    stale = finished / "cleaned" / "old-config" / "train.jsonl"
    shutil.copytree(finished / "cleaned" / CONFIG, stale.parent)
    summary = export(finished, finished.parent / "export", "sharegpt")
    assert [f.source for f in summary.files] == [
        str(finished / "cleaned" / CONFIG / f"{split}.jsonl") for split in ("test", "train")]
