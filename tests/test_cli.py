"""The ``argalign prepare`` and ``argalign validate`` commands: exit codes, reports, --debug."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from argalign.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, main
from argalign.core.deliverables import ask_for_methods
from argalign.core.jsonl import iter_jsonl, write_jsonl_atomic
from argalign.core.schema import Example
from argalign.core.source_text import find_source
from argalign.scoring.comparison import turn_views
from argalign.stages.prepare import CONFIGS, sample_dir
from support import OWN_METHOD_SENTENCE

CONFIG = CONFIGS[0]



def _read(path: Path) -> list[dict]:
    return [record for _, record in iter_jsonl(path)]


# --- validate -----------------------------------------------------------------------------

def _rethought(row: dict) -> dict:
    row = copy.deepcopy(row)
    for message in row["messages"]:
        if message["role"] == "assistant" and message["thinking"]:
            # A real new sentence: "I re-read the request first." alone can be a trivial edit.
            message["thinking"] = f"{OWN_METHOD_SENTENCE} {message['thinking']}"
    return row


def _one_byte_off(row: dict) -> dict:
    row = copy.deepcopy(row)
    row["messages"][-1]["content"] += "!"
    return row


def _null(row: dict) -> None:
    return None


def _same(row: dict) -> dict:
    return copy.deepcopy(row)


# Per case: what happens to rows 0-5 (None: the example is left out) and the expected result.
VALIDATE_CASES = {
    "all aligned": ([_rethought] * 6, EXIT_OK, {"aligned": 6}),
    "all unchanged": ([_same] * 6, EXIT_OK, {"unchanged": 6}),
    "failed rows are not rejections": ([_null, _null, *[_rethought] * 4], EXIT_OK,
                                       {"failed": 2, "aligned": 4}),
    "one byte off": ([*[_rethought] * 5, _one_byte_off], EXIT_FAILED, {"aligned": 5, "rejected": 1}),
    "one missing": ([*[_same] * 3, None, *[_same] * 2], EXIT_FAILED,
                    {"unchanged": 5, "rejected": 1}),
}


@pytest.mark.parametrize(("edits", "exit_code", "outcomes"), VALIDATE_CASES.values(),
                         ids=VALIDATE_CASES.keys())
def test_validate_exit_status_and_report(real_rows, tmp_path, capsys, edits, exit_code, outcomes):
    originals = [Example(f"{CONFIG}/train/{i}", CONFIG, "train", i, row)
                 for i, row in enumerate(real_rows)]
    aligned = [{**e.to_record(), "row": edit(e.row)} for e, edit in zip(originals, edits) if edit]
    write_jsonl_atomic(tmp_path / "original.jsonl", [e.to_record() for e in originals])
    write_jsonl_atomic(tmp_path / "aligned.jsonl", aligned)
    report_path = tmp_path / "report" / "report.jsonl"

    code = main(["validate", "--original", str(tmp_path / "original.jsonl"),
                 "--aligned", str(tmp_path / "aligned.jsonl"), "--mode", "A",
                 "--out", str(report_path)])

    assert code == exit_code
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 6 and summary["outcomes"] == outcomes
    report = _read(report_path)
    assert sorted(line["id"] for line in report) == sorted(e.id for e in originals)
    by_id = {line["id"]: line for line in report}
    for example, edit in zip(originals, edits):
        line = by_id[example.id]
        expected_outcome = {None: "rejected", _null: "failed", _same: "unchanged",
                            _rethought: "aligned", _one_byte_off: "rejected"}[edit]
        expected_codes = {None: ["ID_MISSING"], _one_byte_off: ["ASSISTANT_CONTENT_CHANGED"]}
        assert (line["outcome"], line["codes"]) == (expected_outcome, expected_codes.get(edit, []))


@pytest.mark.parametrize(("mode", "exit_code"), [("A", EXIT_OK), ("B", EXIT_FAILED)])
def test_validate_mode_b_bounds_the_user_message(real_rows, tmp_path, mode, exit_code):
    original = next(r for r in real_rows[1:] if find_source(r["messages"][1]["content"]).before.strip())
    aligned = copy.deepcopy(original)
    user = aligned["messages"][1]
    # Over the default bound of 200 characters and under 300; it asks for the plan's methods
    # (else Mode A's METHOD_UNEXPECTED) and for nothing the response does not do.
    added = ask_for_methods(turn_views(original)[0].delivered, "s") or "Be brief."
    while len(added) <= 200:
        added += " Name every premise."
    assert len(added) <= 300
    user["content"] += "\n\n" + added
    write_jsonl_atomic(tmp_path / "o.jsonl", [{**original, "source_id": "s"}])
    write_jsonl_atomic(tmp_path / "a.jsonl", [{**aligned, "source_id": "s"}])
    argv = ["validate", "--original", str(tmp_path / "o.jsonl"), "--aligned",
            str(tmp_path / "a.jsonl"), "--mode", mode]
    assert main(argv) == exit_code
    assert main([*argv, "--max-user-change", "300"]) == EXIT_OK
    # The instructions before the intro line cut: never Mode B, whatever the bound (whether
    # Mode A accepts it depends on the quality checks: is what the answer gives still asked for?).
    span = find_source(original["messages"][1]["content"])
    user["content"] = span.intro + span.source + span.after
    write_jsonl_atomic(tmp_path / "a.jsonl", [{**aligned, "source_id": "s"}])
    if mode == "B":
        assert main([*argv, "--max-user-change", "100000"]) == EXIT_FAILED


def test_validate_console_script_exit_status(real_rows_path, tmp_path):
    # The script of the interpreter running the tests, not whichever install PATH finds first.
    beside = Path(sys.executable).with_name("argalign")
    script = str(beside) if beside.exists() else shutil.which("argalign")
    if script is None:
        pytest.skip("the argalign console script is not installed on PATH")
    rows = [json.loads(line) for line in real_rows_path.read_text("utf-8").splitlines()]
    aligned = tmp_path / "aligned.jsonl"
    report = tmp_path / "report.jsonl"
    write_jsonl_atomic(aligned, [*rows[:5], _one_byte_off(rows[5])])
    argv = [script, "validate", "--original", str(real_rows_path), "--aligned", str(aligned),
            "--mode", "A", "--out", str(report)]
    failed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == EXIT_FAILED
    assert "ASSISTANT_CONTENT_CHANGED@2" in failed.stderr
    assert [(r["id"], r["outcome"]) for r in _read(report)] == [
        *((f"example_id={i}", "unchanged") for i in range(5)), ("example_id=5", "rejected")]

    write_jsonl_atomic(aligned, rows)
    passed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert passed.returncode == EXIT_OK, passed.stderr


def test_validate_input_errors_are_exit_codes_not_tracebacks(real_rows_path, tmp_path, caplog):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "row": \n', "utf-8")
    missing = tmp_path / "missing.jsonl"
    base = ["validate", "--mode", "A", "--original"]
    assert main([*base, str(missing), "--aligned", str(real_rows_path)]) == EXIT_CONFIG
    assert "missing.jsonl" in caplog.text
    assert main([*base, str(real_rows_path), "--aligned", str(bad)]) == EXIT_FAILED
    assert "bad.jsonl:1" in caplog.text


# --- prepare ------------------------------------------------------------------------------

def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _dataset_dir(root: Path, real_rows: list[dict], configs: tuple[str, ...],
                 splits: tuple[str, ...], per_split: int) -> Path:
    card = ["---", "configs:"]
    for config in configs:
        card += [f"- config_name: {config}", "  data_files:"]
        for split in splits:
            rows = [{**real_rows[k % len(real_rows)], "source_id": f"{config}-{split}-{k}"}
                    for k in range(per_split)]
            _write_rows(root / config / f"{split}.jsonl", rows)
            card += [f"  - split: {split}", f"    path: {config}/{split}.jsonl"]
    (root / "README.md").write_text("\n".join([*card, "---", ""]), "utf-8")
    return root


def test_prepare_command_writes_what_it_reports(real_rows, tmp_path, capsys):
    rows = [{**real_rows[k % 6], "source_id": f"id-{k}"} for k in range(20)]
    source = _write_rows(tmp_path / "src.jsonl", rows)
    argv = ["prepare", "--source", str(source), "--configs", CONFIG, "--splits", "train",
            "-n", "4", "--seed", "3", "--data", str(tmp_path / "out")]
    assert main(argv) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"out": str(tmp_path / "out" / "raw"), "source": str(source),
                       "counts": {f"{CONFIG}/train": {"rows": 20, "examples": 4, "rejected": 0}}}
    examples = _read(tmp_path / "out/raw" / CONFIG / "train.jsonl")
    assert [e["id"] for e in examples] == [f"id-{e['index']}" for e in examples]
    assert len(examples) == 4


@pytest.mark.parametrize("configs", [f"{CONFIGS[0]},{CONFIGS[1]}", f"{CONFIGS[0]} {CONFIGS[1]}"])
def test_prepare_command_refuses_several_subsets_of_one_jsonl(real_rows, tmp_path, configs):
    source = _write_rows(tmp_path / "src.jsonl", real_rows)
    argv = ["prepare", "--source", str(source), "--configs", configs, "--splits", "train",
            "--data", str(tmp_path / "out")]
    assert main(argv) == EXIT_CONFIG
    assert not (tmp_path / "out").exists()


def test_prepare_debug_draws_five_train_examples_into_data_debug(real_rows, tmp_path,
                                                                 monkeypatch):
    _dataset_dir(tmp_path / "ds", real_rows, CONFIGS, ("train", "validation"), per_split=9)
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "--source", "ds", "--debug", "-n", "50"]) == EXIT_OK

    raw = tmp_path / "data_debug" / "raw"
    assert not (tmp_path / "data").exists()
    manifest = json.loads((raw / "manifest.json").read_text("utf-8"))
    assert (manifest["n"], manifest["splits"], manifest["configs"]) == (5, ["train"], list(CONFIGS))
    for config in CONFIGS:
        assert sorted(p.name for p in (raw / config).iterdir()) == ["train.jsonl"]
        examples = _read(raw / config / "train.jsonl")
        assert len(examples) == 5 == len({e["id"] for e in examples})
        assert all(e["id"].startswith(f"{config}-train-") for e in examples)


def test_prepare_debug_keeps_an_explicit_data_folder(real_rows, tmp_path, monkeypatch):
    _write_rows(tmp_path / "src.jsonl", [{**r, "source_id": f"s{i}"} for i, r in
                                         enumerate(real_rows * 2)])
    monkeypatch.chdir(tmp_path)
    argv = ["prepare", "--source", "src.jsonl", "--configs", CONFIG, "--debug", "--data", "mine"]
    assert main(argv) == EXIT_OK
    assert len(_read(tmp_path / "mine/raw" / CONFIG / "train.jsonl")) == 5
    assert not (tmp_path / "data_debug").exists()


def test_prepare_debug_from_the_bundled_sample(tmp_path, monkeypatch):
    if not sample_dir().is_dir():
        pytest.skip(f"the bundled sample is not there yet: {sample_dir()}")
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "--source", "sample", "--debug"]) == EXIT_OK
    raw = tmp_path / "data_debug" / "raw"
    manifest = json.loads((raw / "manifest.json").read_text("utf-8"))
    assert (manifest["source"], manifest["n"], manifest["splits"]) == ("sample", 5, ["train"])
    for config in CONFIGS:
        assert {p.name for p in (raw / config).iterdir()} <= {"train.jsonl", "train.rejects.jsonl"}
        counts = manifest["counts"][f"{config}/train"]
        assert counts["examples"] + counts["rejected"] == min(5, counts["rows"])
        assert len(_read(raw / config / "train.jsonl")) == counts["examples"]


# --- one clear line, never a traceback (#12 items 12 and 16) -------------------------------

def _one_clear_line(caplog, capsys, *expected: str) -> None:
    err = capsys.readouterr().err + caplog.text
    assert "Traceback" not in err
    for text in expected:
        assert text in caplog.text, caplog.text


def _sample_source(tmp_path: Path, sample_rows: list[dict]) -> Path:
    return _write_rows(tmp_path / "src.jsonl", sample_rows[:3])


def test_a_data_folder_that_is_a_file_or_not_writable_is_one_line(tmp_path, sample_rows, caplog, capsys,
                                                                  monkeypatch):
    source = _sample_source(tmp_path, sample_rows)
    (tmp_path / "afile").write_text("x")
    argv = ["prepare", "--source", str(source), "--configs", CONFIG, "--splits", "train"]
    assert main([*argv, "--data", str(tmp_path / "afile")]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "configuration error", "afile")
    caplog.clear()

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    assert main([*argv, "--data", str(tmp_path / "locked")]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "Permission denied", "locked")


@pytest.mark.parametrize("line", ["42", "[1, 2]", '"text"', "null"])
def test_an_aligned_line_that_is_not_an_object_is_one_line(tmp_path, sample_rows, caplog, capsys, line):
    original = _write_rows(tmp_path / "o.jsonl", sample_rows[:2])
    aligned = tmp_path / "a.jsonl"
    aligned.write_text(json.dumps(sample_rows[0]) + "\n" + line + "\n", "utf-8")
    assert main(["validate", "--original", str(original), "--aligned", str(aligned), "--mode", "B"]) \
        == EXIT_FAILED
    _one_clear_line(caplog, capsys, "a.jsonl:2", "NOT_A_ROW")


def test_a_report_that_is_a_folder_is_one_line(tmp_path, sample_rows, caplog, capsys):
    original = _write_rows(tmp_path / "o.jsonl", sample_rows[:2])
    (tmp_path / "reports").mkdir()
    assert main(["validate", "--original", str(original), "--aligned", str(original), "--mode", "B",
                 "--out", str(tmp_path / "reports")]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "is a folder")


def _finished_by_hand(data: Path, sample_rows: list[dict]) -> Path:
    """A run with one result per raw example (a finished run, written directly)."""
    from argalign.stages.prepare import prepare

    prepare(source=str(_write_rows(data.parent / "s.jsonl", sample_rows[:2])), configs=[CONFIG],
            splits=["train"], n=None, seed=0, data=data)
    raw = _read(data / "raw" / CONFIG / "train.jsonl")
    results = data / "runs" / "r" / "results" / CONFIG / "train" / "B-m.jsonl"
    write_jsonl_atomic(results, [{"id": e["id"], "outcome": "unchanged", "mode": "B", "row": e["row"]}
                                 for e in raw])
    manifest = {"params": {"raw": {f"{CONFIG}/train": 1}}}
    (data / "runs" / "r" / "manifest.json").write_text(json.dumps(manifest))
    return data


def test_merged_that_is_a_file_and_a_bad_manifest_key_are_one_line(tmp_path, sample_rows, caplog, capsys):
    data = _finished_by_hand(tmp_path / "data", sample_rows)
    (data / "merged").write_text("not a folder")
    assert main(["merge", "--data", str(data)]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "configuration error", "merged")
    (data / "merged").unlink()
    (data / "runs" / "r" / "manifest.json").write_text(json.dumps({"params": {"raw": {"noslash": 1}}}))
    caplog.clear()
    assert main(["merge", "--data", str(data)]) == EXIT_FAILED
    _one_clear_line(caplog, capsys, "'noslash' is not a <config>/<split> key")


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "postgresql://u@127.0.0.1/db", "mlflow.db"])
def test_a_tracking_uri_that_is_not_sqlite_is_one_line(monkeypatch, caplog, capsys, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["compare"]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "MLFLOW_TRACKING_URI", "sqlite:///")


def test_compare_with_no_store_is_exit_2_and_creates_none(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["compare"]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "no MLflow store", "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/sub/dir/m.db")
    assert main(["compare", "--json"]) == EXIT_CONFIG
    _one_clear_line(caplog, capsys, "no MLflow store", "m.db")
    assert list(tmp_path.iterdir()) == []


def test_an_unexpected_error_is_one_line_with_its_type(tmp_path, sample_rows, caplog, capsys, monkeypatch):
    import argalign.stages.prepare

    def broken(**kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(argalign.stages.prepare, "prepare", broken)
    assert main(["prepare", "--source", "sample", "--data", str(tmp_path / "o")]) == EXIT_FAILED
    _one_clear_line(caplog, capsys, "unexpected error: KeyError", "-v")
