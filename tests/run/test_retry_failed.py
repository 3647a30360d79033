"""``run --retry-failed``: realign the failed and not_improved examples, keep every other result."""

from __future__ import annotations

import json

import pytest

from argalign.stages.run import store
from argalign.stages.run.plan import plan_run
from argalign.stages.run.runner import run_batch
from argalign.testing.argalign_responder import ArgalignResponder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer
from support import (
    CONFIG,
    FAIL_MARKER,
    make_rows,
    mark_failing,
    read_rows,
    responder,
    results,
    run_options,
    write_raw,
    write_settings,
)


def switchable():
    """The usual fake answers; unusable ones for FAILME rows while ``state["broken"]``."""
    state = {"broken": True}

    def respond(fields, messages):
        if not state["broken"]:
            messages = [{**m, "content": str(m.get("content")).replace(FAIL_MARKER, "")}
                        for m in messages]
        return responder(fields, messages)

    return respond, state


def lines_of(run_dir) -> dict[str, str]:
    """id -> the exact result line."""
    out = {}
    for path in sorted((run_dir / "results").glob("*/*/*.jsonl")):
        for line in path.read_text().splitlines():
            out[json.loads(line)["id"]] = line
    return out


def test_only_failed_examples_are_aligned_again(tmp_path, real_rows_path):
    rows = make_rows(read_rows(real_rows_path), 6, "r")
    for k in (1, 4):
        rows[k] = {**mark_failing(rows[k]), "source_id": rows[k]["source_id"]}
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    run_dir = data / "runs" / "r"
    respond, state = switchable()
    with FakeOpenAIServer(FakeConfig(), responder=ArgalignResponder(respond)) as server:
        settings = write_settings(tmp_path / "s.yaml", server.url)
        options = run_options(data, settings, run_name="r", accept_if_better=False)
        first = run_batch(options)
        assert first.outcomes["failed"] == 2
        before = lines_of(run_dir)

        # A plain resume keeps the failures: nothing to do, no LM call.
        calls = server.stats.total
        assert run_batch(options).outcomes["failed"] == 2
        assert server.stats.total == calls

        state["broken"] = False  # the cause is fixed
        again = run_batch(run_options(data, settings, run_name="r", retry_failed=True,
                                       accept_if_better=False))
        assert server.stats.total > calls

    assert again.done == again.total == 6
    assert again.outcomes["failed"] == 0 and again.outcomes["aligned"] == 6
    after = lines_of(run_dir)
    assert sorted(after) == sorted(before)  # one result per id, none lost
    retried = {"r-001", "r-004"}
    for row_id, line in before.items():
        if row_id in retried:
            assert json.loads(after[row_id])["outcome"] == "aligned"
        else:
            assert after[row_id] == line  # every other result kept byte for byte
    history = [json.loads(line) for line in (run_dir / "retried.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in history) == sorted(retried)
    assert all(r["outcome"] == "failed" for r in history)
    assert sum(1 for r in results(run_dir)) == 6


def _result(row_id: str, outcome: str) -> dict:
    kept = outcome in ("aligned", "unchanged")  # a record of these carries its row
    return {"id": row_id, "outcome": outcome, "mode": "A", "model": "fake", "codes": [],
            "reason": "", "row": {"messages": []} if kept else None}


def test_the_plan_takes_up_failed_and_not_improved_only(tmp_path, real_rows_path, fake_server):
    rows = make_rows(read_rows(real_rows_path), 6, "p")
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    outcomes = ["aligned", "unchanged", "failed", "rejected", "not_improved"]  # p-005: none
    result_file = data / "runs" / "p" / "results" / CONFIG / "train" / "A-fake.jsonl"
    result_file.parent.mkdir(parents=True)
    result_file.write_text("".join(json.dumps(_result(f"p-{k:03d}", o)) + "\n"
                                   for k, o in enumerate(outcomes)))

    plain = plan_run(run_options(data, settings, run_name="p", modes=("A",)))
    assert sorted(e.entry.id for q in plain.work.values() for e in q) == ["p-005"]
    assert plain.retry == {}

    plan = plan_run(run_options(data, settings, run_name="p", modes=("A",), retry_failed=True))
    assert sorted(e.entry.id for q in plan.work.values() for e in q) == ["p-002", "p-004", "p-005"]
    assert plan.retry == {f"{CONFIG}/train": {"p-002", "p-004"}}
    assert sorted(plan.done) == ["p-000", "p-001", "p-003"]
    assert result_file.read_text().count("\n") == 5  # planning writes nothing


def test_taking_out_results_survives_a_kill_between_its_two_writes(tmp_path, monkeypatch):
    path = tmp_path / "results" / "A-fake.jsonl"
    path.parent.mkdir()
    records = [_result("a", "aligned"), _result("b", "failed"), _result("c", "not_improved")]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    archive = tmp_path / "retried.jsonl"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands for a kill after the archive was synced

    monkeypatch.setattr(store, "write_jsonl_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        store.take_out_results([path], {"b", "c"}, archive)
    assert path.read_text().count("\n") == 3  # the result file is untouched
    assert archive.read_text().count("\n") == 2
    monkeypatch.undo()

    assert store.take_out_results([path], {"b", "c"}, archive) == 2
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a"]
    assert sorted(json.loads(line)["id"] for line in archive.read_text().splitlines()) == [
        "b", "c"]  # not archived twice
    assert store.take_out_results([path], {"b", "c"}, archive) == 0
