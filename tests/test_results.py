"""Stage results: one JSON shape each (what the CLI prints and the summaries keep), and the one
table printer every command that prints a table uses."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from argalign.core.results import Table, subset_table, text_table
from argalign.programs.spec import OptimizeResult
from argalign.stages.clean import COLUMNS, CleanSummary
from argalign.stages.export import ExportedFile, ExportSummary
from argalign.stages.merge import MergedSubset, MergeSummary
from argalign.stages.publish import PublishSummary
from argalign.stages.report import ReportSummary
from argalign.stages.run.executor import Executor
from argalign.stages.run.summary import RunSummary, Session

# --- the table printer ---------------------------------------------------------------------


def test_numbers_are_right_aligned_text_left_and_none_is_blank():
    text = text_table(Table(["name", "n", "score", "note"],
                            [["a", 5, 0.5, None], ["longer", 120, 2.0, "x"]], rule=True))
    assert text.splitlines() == ["name      n  score  note",
                                 "------  ---  -----  ----",
                                 "a         5  0.500",
                                 "longer  120      2  x"]


def test_a_column_with_any_text_is_left_aligned_and_no_header_prints_rows_only():
    assert text_table(Table(None, [["CODE", 1], ["LONGER_CODE", "two"]])).splitlines() == [
        "CODE         1", "LONGER_CODE  two"]


def test_a_row_with_the_wrong_number_of_cells_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"every row needs 2 cells: \['a'\]"):
        text_table(Table(["x", "y"], [["a"]]))


def test_per_subset_counts_get_a_total_row():
    table = subset_table({"c/train": {"rows_in": 3, "aligned": 2},
                          "c/test": {"rows_in": 1}}, ("rows_in", "aligned"))
    assert table.header == ["subset", "rows_in", "aligned"]
    assert table.rows == [["c/train", 3, 2], ["c/test", 1, 0], ["total", 4, 2]]
    assert text_table(table).splitlines()[-1] == "total          4        2"


def test_clean_prints_every_column_and_the_total():
    counts = {c: 0 for c in (*COLUMNS, "checker_rejected")}
    summary = CleanSummary(run="r", subsets={"c/train": {**counts, "rows_in": 2, "aligned": 2}},
                           total={**counts, "rows_in": 2, "aligned": 2})
    header, *_, total = text_table(summary.as_table()).splitlines()
    assert header.split() == ["subset", *COLUMNS]
    assert total.split() == ["total", "2", "2", *["0"] * (len(COLUMNS) - 2)]


# --- one JSON shape per result ---------------------------------------------------------------


def _run_summary(**more) -> RunSummary:
    return RunSummary(run="r", total=2, done=1, extra=0, outcomes={"aligned": 1},
                      subsets={"c/train": {"total": 2, "done": 1, "aligned": 1}},
                      groups={"A-m": {"aligned": 1}}, tokens={"calls": 3, "input": 4, "output": 5},
                      latency_s_mean=0.5, **more)


def test_a_run_summary_keeps_its_keys_in_order_and_only_the_parts_that_were_there():
    plain = _run_summary()
    assert list(plain.as_dict()) == ["run", "total", "done", "extra", "outcomes", "subsets",
                                     "groups", "tokens", "latency_s_mean"]
    assert plain.stopped is None
    scored = _run_summary(scores={"over": "aligned"}, scoring={"calls": 2})
    assert list(scored.as_dict())[-2:] == ["scoring", "scores"]


def test_a_run_summary_with_its_session_ends_with_session_and_stopped():
    session = Session(outcomes=Counter(aligned=1, failed=1), elapsed_s=30.0, stopped="why",
                      startup_s=1.5, workers=2)
    summary = _run_summary(acceptance={"rows": 1}).with_session(session)
    out = summary.as_dict()
    assert list(out)[-3:] == ["acceptance", "session", "stopped"]
    assert out["session"] == {"conversations": 2, "outcomes": {"aligned": 1, "failed": 1},
                              "elapsed_s": 30.0, "conversations_per_minute": 4.0, "workers": 2,
                              "workers_startup_s": 1.5}
    assert out["stopped"] == summary.stopped == "why"
    assert "workers_startup_s" not in Session().as_dict()
    assert Session().as_dict()["conversations_per_minute"] == 0.0  # no time: no rate


def test_merge_summary_is_the_marker_shape():
    summary = MergeSummary(run="r", subsets={"c/train": MergedSubset(raw=3, merged=2,
                                                                     missing=["x"], extra=1)})
    assert summary.as_dict() == {"run": "r", "subsets": {"c/train": {
        "raw": 3, "merged": 2, "missing": ["x"], "extra": 1}}}


def test_publish_names_the_folder_of_a_dry_run_and_the_commit_of_an_upload():
    dry = PublishSummary(repo_id="o/x", private=True, dry_run=True, source="cleaned",
                         configs={"c-aligned": {"train": 2, "test": 1}}, folder="/tmp/f")
    assert list(dry.as_dict()) == ["repo_id", "private", "dry_run", "source", "folder",
                                   "configs", "rows", "skipped"]
    assert dry.rows == dry.as_dict()["rows"] == 3
    upload = PublishSummary(repo_id="o/x", private=False, dry_run=False, source="merged")
    assert upload.as_dict()["commit_url"] is None and "folder" not in upload.as_dict()


def test_export_counts_its_files_and_names_rejects_and_side_files_only_when_written():
    files = [ExportedFile("in/a.jsonl", "out/a.jsonl", 2, 1),
             ExportedFile("in/b.jsonl", None, 0, 3)]
    summary = ExportSummary(format="sharegpt", thinking="keep", out="out", files=files,
                            tokens={"rows": 2}, rejects="out/rejects.jsonl",
                            side_files={"dataset_info": "out/dataset_info.json"})
    out = summary.as_dict()
    assert list(out) == ["format", "thinking", "out", "files", "rows", "rejected", "tokens",
                         "rejects", "dataset_info"]
    assert (out["rows"], out["rejected"]) == (2, 4)
    assert out["files"][1] == {"in": "in/b.jsonl", "out": None, "rows": 0, "rejected": 3}
    bare = ExportSummary(format="openai", thinking="drop", out="o", files=[], tokens={})
    assert "rejects" not in bare.as_dict() and bare.rows == 0


def test_report_prints_its_size_as_bytes():
    report = ReportSummary(out="r.html", run="r", examples=3, size=10, plots=["a.png"])
    assert report.as_dict() == {"out": "r.html", "run": "r", "examples": 3, "bytes": 10,
                                "plots": ["a.png"]}


def test_an_optimize_result_reads_its_metadata_and_prints_what_the_cli_always_printed():
    meta = {"fingerprint": "f", "partial": False, "baseline": {"score": 0.1},
            "compiled": {"score": 0.2}, "compile_calls": 4, "report_calls": 2,
            "output_tokens": 9, "wall_s": 1.0, "zero_shot_kept": False, "compile": {"n": 1}}
    result = OptimizeResult.of(meta, "p.json", reused=True)
    assert (result.fingerprint, result.compiled, result.meta["compile"]) == ("f", {"score": 0.2},
                                                                            {"n": 1})
    assert list(result.as_dict()) == ["program_path", "fingerprint", "reused", "partial",
                                      "baseline", "compiled", "compile_calls", "report_calls",
                                      "output_tokens", "wall_s"]
    old = OptimizeResult.of({"fingerprint": "f"}, "p.json", reused=True)  # saved long ago
    assert old.compile_calls is None and old.as_dict()["wall_s"] is None
    json.dumps(result.as_dict())  # JSON as it is


# --- the batch executor --------------------------------------------------------------------


def _plan(workers: int) -> SimpleNamespace:
    options = SimpleNamespace(workers=workers, max_errors=None)
    return SimpleNamespace(options=options, work={}, settings=None, store=SimpleNamespace(name="r"),
                           judge=None, programs={})


def test_both_batch_executors_have_what_the_runner_uses():
    from argalign.stages.run.processes import ProcessBatch
    from argalign.stages.run.runner import _Batch

    threads = _Batch(_plan(1), {}, writer=None)
    processes = ProcessBatch(_plan(2), {}, writer=None)
    for batch in (threads, processes):
        assert isinstance(batch, Executor)
        assert (batch.stopped, batch.startup_s) == (None, None)
        assert not batch.stop.is_set() and batch.results.empty()
