"""Input and output paths of the file commands (align, score, validate, report): an output that
is an input, an input that is no regular file, a JSON array for JSON Lines (#21 items 1, 2, 9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from argalign.cli import EXIT_CONFIG, main
from argalign.stages.prepare import CONFIGS
from support import write_settings

CONFIG = CONFIGS[0]
# Settings whose model is a closed local port: a regression that gets as far as the model
# fails there, and never starts the packaged default's local server.
SETTINGS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def dead_model(tmp_path_factory):
    SETTINGS["path"] = str(write_settings(tmp_path_factory.mktemp("settings") / "dead.yaml",
                                          "http://127.0.0.1:9/v1"))


@pytest.fixture
def no_hang():
    """Fail a test that blocks (a FIFO opened, /dev/zero read) instead of hanging the suite."""
    def stop(signum, frame):
        raise TimeoutError("the command blocked on its input")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _refused(caplog, *expected: str) -> None:
    assert "Traceback" not in caplog.text
    for text in expected:
        assert text in caplog.text, caplog.text


# --- an output that is one of the inputs (item 1) ------------------------------------------

def _score(*argv: str) -> list[str]:
    return ["score", "--comparison", "lexical", "--settings", SETTINGS["path"], *argv]


def _align(*argv: str) -> list[str]:
    return ["align", "--mode", "B", "--settings", SETTINGS["path"], *argv]


OVERWRITES = {
    "align --out = --in": lambda p: _align("--in", p["rows"], "--out", p["rows"]),
    "align --out a symlink to --in": lambda p: _align("--in", p["rows"], "--out", p["link"]),
    "align --out = --settings": lambda p: _align("--in", p["rows"], "--out", p["settings"],
                                                 "--settings", p["settings"]),
    "score --out = --in": lambda p: _score("--in", p["rows"], "--out", p["rows"]),
    "score --out = --original": lambda p: _score("--in", p["aligned"], "--original", p["rows"],
                                                 "--out", p["rows"]),
    "score --out a hard link to --in": lambda p: _score("--in", p["rows"], "--out", p["hard"]),
    "align --out in a data folder's raw tree": lambda p: _align("--in", p["rows"], "--out",
                                                                p["raw_new"]),
    "score --out in a data folder's runs tree": lambda p: _score("--in", p["rows"], "--out",
                                                                 p["runs_new"]),
}


@pytest.mark.parametrize("case", OVERWRITES)
def test_an_output_that_is_an_input_is_refused_before_anything_is_written(
        tmp_path, sample_rows, caplog, case):
    rows = _rows(tmp_path / "rows.jsonl", sample_rows[:2])
    aligned = _rows(tmp_path / "aligned.jsonl", sample_rows[:2])
    settings = write_settings(tmp_path / "my.yaml", "http://127.0.0.1:9/v1")
    (tmp_path / "link.jsonl").symlink_to(rows)
    os.link(rows, tmp_path / "hard.jsonl")
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "manifest.json").write_text("{}")
    (data / "runs" / "r").mkdir(parents=True)
    paths = {"rows": rows, "aligned": aligned, "settings": settings, "link": tmp_path / "link.jsonl",
             "hard": tmp_path / "hard.jsonl", "raw_new": data / "raw" / CONFIG / "new.jsonl",
             "runs_new": data / "runs" / "r" / "scores.jsonl"}
    before = {p: p.read_bytes() for p in (rows, aligned, settings)}
    listing = sorted(tmp_path.rglob("*"))

    assert main(OVERWRITES[case]({k: str(v) for k, v in paths.items()})) == EXIT_CONFIG

    _refused(caplog, "--out")
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(tmp_path.rglob("*")) == listing


def _finished_run(data: Path, sample_rows: list[dict]) -> dict[str, Path]:
    from argalign.core.jsonl import write_jsonl_atomic
    from argalign.stages.prepare import prepare

    prepare(source=str(_rows(data.parent / "s.jsonl", sample_rows[:2])), configs=[CONFIG],
            splits=["train"], n=None, seed=0, data=data)
    raw = data / "raw" / CONFIG / "train.jsonl"
    results = data / "runs" / "r" / "results" / CONFIG / "train" / "B-m.jsonl"
    records = [json.loads(line) for line in raw.read_text("utf-8").splitlines()]
    write_jsonl_atomic(results, [{"id": e["id"], "outcome": "unchanged", "mode": "B", "row": e["row"]}
                                 for e in records])
    manifest = {"params": {"raw": {f"{CONFIG}/train": len(records)}}}
    (data / "runs" / "r" / "manifest.json").write_text(json.dumps(manifest))
    return {"raw": raw, "results": results, "merged": data / "merged" / "report.html",
            "cleaned": data / "cleaned" / CONFIG / "x.html"}


@pytest.mark.parametrize("target", ["raw", "results", "merged", "cleaned"])
def test_report_refuses_a_page_inside_the_data_folders_trees(tmp_path, sample_rows, caplog, target):
    data = tmp_path / "data"
    paths = _finished_run(data, sample_rows)
    before = {p: p.read_bytes() for p in (paths["raw"], paths["results"])}

    assert main(["report", "--data", str(data), "--page", str(paths[target])]) == EXIT_CONFIG

    _refused(caplog, "--page", str(paths[target]))
    assert {p: p.read_bytes() for p in before} == before
    assert not (data / "merged").exists() and not (data / "cleaned").exists()
    assert not (data / "report.html").exists()


# --- an input that is no regular file (item 9) ---------------------------------------------

def _fifo(tmp_path: Path) -> str:
    path = tmp_path / "fifo.jsonl"
    os.mkfifo(path)
    return str(path)


NOT_FILES = {
    "validate --original": lambda good, bad, out: ["validate", "--mode", "B", "--original", bad,
                                                   "--aligned", good],
    "validate --aligned": lambda good, bad, out: ["validate", "--mode", "B", "--original", good,
                                                  "--aligned", bad],
    "align --in": lambda good, bad, out: _align("--in", bad, "--out", out),
    "score --in": lambda good, bad, out: _score("--in", bad, "--out", out),
    "score --original": lambda good, bad, out: _score("--in", good, "--original", bad, "--out", out),
}


@pytest.mark.parametrize("kind", ["fifo", "a symlink to a fifo"])
@pytest.mark.parametrize("case", NOT_FILES)
def test_an_input_that_is_not_a_regular_file_is_refused_without_opening_it(
        tmp_path, sample_rows, caplog, no_hang, case, kind):
    good = str(_rows(tmp_path / "rows.jsonl", sample_rows[:2]))
    bad = _fifo(tmp_path)
    if kind.startswith("a symlink"):
        (tmp_path / "link.jsonl").symlink_to(bad)
        bad = str(tmp_path / "link.jsonl")
    out = tmp_path / "out.jsonl"

    assert main(NOT_FILES[case](good, bad, str(out))) == EXIT_CONFIG

    _refused(caplog, case.split()[1], bad, "not a regular file")
    assert not out.exists()


def _limited() -> None:
    """Before the CLI starts: a bounded address space, so a read of /dev/zero fails fast."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.parametrize("case", NOT_FILES)
def test_dev_zero_is_refused_without_reading_it(tmp_path, sample_rows, case):
    # In a child with bounded memory: a regression reads /dev/zero until the limit, not for ever.
    good = str(_rows(tmp_path / "rows.jsonl", sample_rows[:2]))
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "argalign.cli", *NOT_FILES[case](good, "/dev/zero", str(out))]

    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=_limited, cwd=tmp_path)

    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{case.split()[1]} /dev/zero: not a regular file" in done.stderr
    assert not out.exists()


# --- a JSON array instead of JSON Lines (item 2) -------------------------------------------

ARRAYS = {
    "align": lambda array, good, out: (_align("--in", array, "--out", out), "--in"),
    "score": lambda array, good, out: (_score("--in", array, "--out", out), "--in"),
    "score --original": lambda array, good, out: (
        _score("--in", good, "--original", array, "--out", out), "--original"),
    "validate --original": lambda array, good, out: (
        ["validate", "--mode", "B", "--original", array, "--aligned", good], "--original"),
    "validate --aligned": lambda array, good, out: (
        ["validate", "--mode", "B", "--original", good, "--aligned", array], "--aligned"),
    "prepare": lambda array, good, out: (
        ["prepare", "--source", array, "--configs", CONFIG, "--splits", "train", "--data", out],
        "--source"),
}


@pytest.mark.parametrize("case", ARRAYS)
def test_a_json_array_is_refused_with_a_fix_that_keeps_the_file(tmp_path, sample_rows, caplog, case):
    array = tmp_path / "rows.jsonl"
    array.write_text(json.dumps(sample_rows[:2], indent=2), "utf-8")
    good = str(_rows(tmp_path / "good.jsonl", sample_rows[:2]))
    out = tmp_path / "out"
    argv, flag = ARRAYS[case](str(array), good, str(out))

    assert main(argv) == EXIT_CONFIG

    _refused(caplog, flag, "JSON array", "jq -c '.[]' rows.jsonl > rows.lines.jsonl")
    assert "> rows.jsonl" not in caplog.text
    assert not out.exists()


def test_the_json_array_fix_names_a_jsonl_file_beside_a_json_one(tmp_path):
    from argalign.core.errors import ConfigError
    from argalign.core.jsonl import refuse_json_array

    array = tmp_path / "rows.json"
    array.write_text("  \n[{}]", "utf-8")
    with pytest.raises(ConfigError, match=r"jq -c '\.\[\]' rows\.json > rows\.jsonl"):
        refuse_json_array(array, "--in")
