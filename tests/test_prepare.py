"""prepare: seeded sampling, stable ids, lossless rows, rejects with reasons, streaming."""

from __future__ import annotations

import copy
import json
import tracemalloc
from pathlib import Path

import pytest

from argalign.core.errors import ConfigError
from argalign.core.jsonl import iter_jsonl
from argalign.core.schema import Example, parse_conversation
from argalign.stages.prepare import (
    CONFIGS,
    HUB_DATASET,
    choose,
    prepare,
    resolve_source,
    sample_dir,
)

CONFIG, SPLIT = "deepa2-aaac01-thinking", "train"



def _varied_rows(real_rows: list[dict], count: int) -> list[dict]:
    """``count`` real rows in turn; two in three get a ``source_id``, the others no id at all
    (their ``example_id``, repeated by the copies, is set to null)."""
    rows = []
    for k in range(count):
        row = copy.deepcopy(real_rows[k % len(real_rows)])
        row["example_id"] = None
        if k % 3:
            row["source_id"] = f"aaac01-{(k * 7919) % 10007:05d}"
        rows.append(row)
    return rows


def _write_source(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [record for _, record in iter_jsonl(path)]


def _prepare_jsonl(source: Path, out: Path, n: int | None, seed: int = 0):
    return prepare(source=str(source), configs=[CONFIG], splits=[SPLIT], n=n, seed=seed, data=out)


# --- choose -------------------------------------------------------------------------------

def test_choose_is_reproducible_and_seeded():
    first = choose(1000, 10, 3, CONFIG, SPLIT)
    assert first == choose(1000, 10, 3, CONFIG, SPLIT)
    assert len(first) == 10 and first <= set(range(1000))
    assert first != choose(1000, 10, 4, CONFIG, SPLIT)
    # Each (config, split) draws its own sample under the same seed.
    assert first != choose(1000, 10, 3, CONFIG, "validation")
    assert first != choose(1000, 10, 3, "deepa2-folly-thinking", SPLIT)


def test_choose_is_not_head_slicing():
    heads = [choose(50, 5, seed, CONFIG, SPLIT) == set(range(5)) for seed in range(10)]
    assert not any(heads)


@pytest.mark.parametrize(("total", "n", "expected"), [
    (5, None, 5), (5, 5, 5), (5, 9, 5), (5, 0, 0), (0, 3, 0), (5, 2, 2)])
def test_choose_sizes(total, n, expected):
    chosen = choose(total, n, 0, CONFIG, SPLIT)
    assert len(chosen) == expected and chosen <= set(range(total))


# --- prepare from a JSONL source -----------------------------------------------------------

def test_prepare_writes_layout_manifest_and_stable_ids(real_rows, tmp_path):
    rows = _varied_rows(real_rows, 40)
    source = _write_source(tmp_path / "src.jsonl", rows)
    result = _prepare_jsonl(source, tmp_path / "out", n=12, seed=7)

    raw = tmp_path / "out" / "raw"
    assert result.out == raw
    assert result.counts == {f"{CONFIG}/{SPLIT}": {"rows": 40, "examples": 12, "rejected": 0}}
    assert sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*")) == [
        CONFIG, f"{CONFIG}/{SPLIT}.jsonl", "manifest.json"]
    manifest = json.loads((raw / "manifest.json").read_text("utf-8"))
    assert manifest == {"source": str(source), "configs": [CONFIG], "splits": [SPLIT], "n": 12,
                        "seed": 7, "counts": result.counts}

    examples = _read(raw / CONFIG / f"{SPLIT}.jsonl")
    indices = [e["index"] for e in examples]
    assert set(indices) == choose(40, 12, 7, CONFIG, SPLIT)
    assert indices == sorted(indices), "examples are written in source order"
    for record in examples:
        source_row = rows[record["index"]]
        expected_id = source_row.get("source_id") or f"{CONFIG}/{SPLIT}/{record['index']}"
        assert record["id"] == expected_id
        assert (record["config"], record["split"]) == (CONFIG, SPLIT)
        assert record["row"] == source_row
    assert len({e["id"] for e in examples}) == 12
    # This seed draws rows of both kinds, so both id rules are exercised.
    assert {"source_id" in rows[i] for i in indices} == {True, False}


def test_prepare_is_reproducible_and_depends_on_the_seed(real_rows, tmp_path):
    source = _write_source(tmp_path / "src.jsonl", _varied_rows(real_rows, 30))
    target = Path("raw") / CONFIG / f"{SPLIT}.jsonl"
    _prepare_jsonl(source, tmp_path / "a", n=5, seed=1)
    _prepare_jsonl(source, tmp_path / "b", n=5, seed=1)
    _prepare_jsonl(source, tmp_path / "c", n=5, seed=2)
    assert (tmp_path / "a" / target).read_bytes() == (tmp_path / "b" / target).read_bytes()
    ids = {p: {e["id"] for e in _read(tmp_path / p / target)} for p in "ac"}
    assert ids["a"] != ids["c"]


def test_prepare_does_not_take_the_head(real_rows, tmp_path):
    source = _write_source(tmp_path / "src.jsonl", _varied_rows(real_rows, 20))
    chosen = []
    for seed in range(5):
        _prepare_jsonl(source, tmp_path / "out", n=4, seed=seed)
        chosen.append({e["index"] for e in _read(tmp_path / "out" / "raw" / CONFIG / "train.jsonl")})
    assert any(indices != set(range(4)) for indices in chosen)
    assert len({frozenset(c) for c in chosen}) > 1


def test_prepared_rows_are_lossless_with_unknown_keys(real_rows, tmp_path):
    rows = []
    for i, row in enumerate(real_rows):
        row = copy.deepcopy(row)
        row["x_meta"] = {"origin": "test", "i": i, "none": None}
        for message in row["messages"]:
            message["x_score"] = [i, 0.5]
        rows.append(row)
    source = _write_source(tmp_path / "src.jsonl", rows)
    _prepare_jsonl(source, tmp_path / "out", n=None)
    examples = [Example.from_record(r) for r in _read(tmp_path / "out/raw" / CONFIG / "train.jsonl")]
    assert [e.row for e in examples] == rows
    for example, row in zip(examples, rows):
        conversation = parse_conversation(example.row, example.id)
        assert [m.model_dump() for m in conversation.messages] == row["messages"]
        for column in row:
            assert example.row[column] == row[column]


def test_a_rerun_replaces_outputs_and_stale_rejects(real_rows, tmp_path):
    source = _write_source(tmp_path / "src.jsonl", [*real_rows, {"messages": []}])
    _prepare_jsonl(source, tmp_path / "out", n=None)
    rejects = tmp_path / "out/raw" / CONFIG / "train.rejects.jsonl"
    assert len(_read(rejects)) == 1
    _write_source(source, real_rows)
    _prepare_jsonl(source, tmp_path / "out", n=None)
    assert not rejects.exists()
    assert len(_read(tmp_path / "out/raw" / CONFIG / "train.jsonl")) == 6
    assert sorted(p.name for p in rejects.parent.iterdir()) == ["train.jsonl"]


# --- bad input ----------------------------------------------------------------------------

def _bad_source(real_rows: list[dict]) -> tuple[list, dict[str, tuple]]:
    """Good and bad rows interleaved, and the (code, message index) each bad one must get."""
    good = [{**copy.deepcopy(r), "source_id": f"good-{i}"} for i, r in enumerate(real_rows)]

    def bad(base: int, source_id: str, edit) -> dict:
        row = {**copy.deepcopy(real_rows[base]), "source_id": source_id}
        edit(row["messages"])
        return row

    lines: list = [
        good[0],
        bad(1, "missing-key", lambda m: m[2].pop("thinking")),
        bad(2, "bad-tools", lambda m: m[0].update(tools="[{")),
        good[1],
        bad(0, "bad-tool-calls", lambda m: m[3].update(tool_calls=m[3]["tool_calls"][:-1])),
        bad(3, "unknown-role", lambda m: m[2].update(role="critic")),
        "NOT JSON",
        good[2],
        {"messages": [], "source_id": "empty-messages"},
        bad(4, "empty-assistant", lambda m: m[2].update(content=None, thinking=None)),
        bad(5, "no-user", lambda m: m.__delitem__(slice(1, None))),
        bad(5, "reply-before-user", lambda m: m.__delitem__(1)),
        good[3],
        {**copy.deepcopy(real_rows[4]), "source_id": "good-1"},
        ["a", "list"],
        good[4],
        good[5],
    ]
    expected = {
        "missing-key": ("MISSING_KEY", 2, "thinking"),
        "bad-tools": ("FIELD_NOT_JSON", 0, "tools"),
        "bad-tool-calls": ("FIELD_NOT_JSON", 3, "tool_calls"),
        "unknown-role": ("UNKNOWN_ROLE", 2, "critic"),
        "src.jsonl:8": ("LINE_NOT_JSON", None, "not valid JSON"),
        "empty-messages": ("EMPTY_MESSAGES", None, "empty"),
        "empty-assistant": ("EMPTY_ASSISTANT", 2, "no content"),
        "no-user": ("NO_USER_MESSAGE", None, "no user message"),
        "reply-before-user": ("NO_USER_BEFORE_REPLY", 1, "before any user"),
        "good-1": ("ID_DUPLICATE", None, "id"),
        f"{CONFIG}/{SPLIT}/14": ("NOT_AN_OBJECT", None, "list"),
    }
    return lines, expected


def _write_with_raw_line(path: Path, lines: list) -> None:
    """Like _write_source, but a str is written as it is, and a blank line comes first."""
    text = "\n"  # a blank line: skipped, so row indices and line numbers differ by one
    for line in lines:
        text += (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
    path.write_text(text, "utf-8")


def test_bad_rows_are_rejected_with_reasons_and_good_rows_kept(real_rows, tmp_path):
    lines, expected = _bad_source(real_rows)
    source = tmp_path / "src.jsonl"
    _write_with_raw_line(source, lines)
    result = _prepare_jsonl(source, tmp_path / "out", n=None)

    subset = tmp_path / "out/raw" / CONFIG
    examples = _read(subset / "train.jsonl")
    rejects = _read(subset / "train.rejects.jsonl")
    assert [e["id"] for e in examples] == [f"good-{i}" for i in range(6)]
    assert {r["id"]: (r["codes"], r["message_index"]) for r in rejects} == {
        k: ([v[0]], v[1]) for k, v in expected.items()}
    assert all(r["stage"] == "prepare" and r["outcome"] == "rejected" for r in rejects)
    for reject in rejects:
        assert expected[reject["id"]][2] in reject["reason"], reject
        assert (reject["config"], reject["split"]) == (CONFIG, SPLIT)
        line = lines[reject["index"]]
        assert reject["row"] == (None if isinstance(line, str) else line)
    # Nothing is silently dropped: every row is an example or a reject, exactly once.
    assert result.counts[f"{CONFIG}/{SPLIT}"] == {"rows": 17, "examples": 6, "rejected": 11}
    assert sorted(r["index"] for r in [*examples, *rejects]) == list(range(17))


@pytest.mark.parametrize("seed", range(4))
def test_examples_plus_rejects_equal_the_chosen_rows(real_rows, tmp_path, seed):
    lines, _ = _bad_source(real_rows)
    source = tmp_path / "src.jsonl"
    _write_with_raw_line(source, lines)
    result = _prepare_jsonl(source, tmp_path / "out", n=7, seed=seed)
    subset = tmp_path / "out/raw" / CONFIG
    rejects_path = subset / "train.rejects.jsonl"
    done = _read(subset / "train.jsonl") + (_read(rejects_path) if rejects_path.exists() else [])
    assert sorted(r["index"] for r in done) == sorted(choose(17, 7, seed, CONFIG, SPLIT))
    counts = result.counts[f"{CONFIG}/{SPLIT}"]
    assert counts["examples"] + counts["rejected"] == 7


# --- sources ------------------------------------------------------------------------------

def test_resolve_source(tmp_path):
    (tmp_path / "f.jsonl").write_text("{}\n")
    assert resolve_source(str(tmp_path)).kind == "dir"
    assert resolve_source(str(tmp_path / "f.jsonl")).kind == "jsonl"
    for name in (None, "", "sample"):
        assert resolve_source(name).kind == "sample"
    # Tests run with HF_HUB_OFFLINE=1: a Hub id falls back to the bundled sample.
    assert resolve_source(HUB_DATASET).kind == "sample"
    assert resolve_source(HUB_DATASET).label == "sample"


@pytest.mark.parametrize("source", ["no/such/path.jsonl", "./missing", "/abs/missing", "plain"])
def test_a_source_that_is_neither_path_nor_hub_id_is_a_config_error(source):
    with pytest.raises(ConfigError):
        resolve_source(source)


def test_a_jsonl_source_holds_one_subset_and_nothing_is_written(real_rows, tmp_path):
    source = _write_source(tmp_path / "src.jsonl", real_rows)
    with pytest.raises(ConfigError):
        prepare(source=str(source), configs=list(CONFIGS[:2]), splits=[SPLIT], n=2, seed=0,
                data=tmp_path / "out")
    with pytest.raises(ConfigError):
        prepare(source=str(source), configs=[CONFIG], splits=["train", "test"], n=2, seed=0,
                data=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _write_dataset_dir(root: Path, real_rows: list[dict], configs: list[str],
                       splits: list[str], per_split: int) -> Path:
    """A local dataset folder with a README that declares its configs (as on the Hub)."""
    card = ["---", "configs:"]
    for c, config in enumerate(configs):
        card += [f"- config_name: {config}", "  data_files:"]
        for s, split in enumerate(splits):
            rows = _varied_rows(real_rows, per_split + c + s)[c + s:]
            for row in rows:  # the same columns in every row, so the schema is uniform
                row.setdefault("source_id", None)
            path = root / config / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_source(path, rows)
            card += [f"  - split: {split}", f"    path: {config}/{split}.jsonl"]
    (root / "README.md").write_text("\n".join([*card, "---", ""]), "utf-8")
    return root


def test_prepare_from_a_dataset_folder(real_rows, tmp_path):
    configs, splits = list(CONFIGS[:2]), ["train", "validation"]
    folder = _write_dataset_dir(tmp_path / "ds", real_rows, configs, splits, per_split=8)
    result = prepare(source=str(folder), configs=configs, splits=splits, n=3, seed=0,
                     data=tmp_path / "out")
    for config in configs:
        for split in splits:
            examples = _read(tmp_path / "out/raw" / config / f"{split}.jsonl")
            assert result.counts[f"{config}/{split}"] == {"rows": 8, "examples": 3, "rejected": 0}
            assert len({e["id"] for e in examples}) == 3
            source = _read(folder / config / f"{split}.jsonl")
            for e in examples:
                assert e["row"] == source[e["index"]]
                assert e["id"] == (source[e["index"]]["source_id"]
                                   or f"{config}/{split}/{e['index']}")


def test_prepare_from_the_bundled_sample(tmp_path):
    if not sample_dir().is_dir():
        pytest.skip(f"the bundled sample is not there yet: {sample_dir()}")
    first = prepare(source="sample", configs=[CONFIG], splits=["train"], n=3, seed=0,
                    data=tmp_path / "a")
    again = prepare(source="sample", configs=[CONFIG], splits=["train"], n=3, seed=0,
                    data=tmp_path / "b")
    assert first.source == "sample" and first.counts == again.counts
    counts = first.counts[f"{CONFIG}/train"]
    assert counts["examples"] + counts["rejected"] == min(3, counts["rows"])
    path = Path("raw") / CONFIG / "train.jsonl"
    assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    examples = _read(tmp_path / "a" / path)
    assert len({e["id"] for e in examples}) == len(examples) == counts["examples"]
    for e in examples:
        parse_conversation(e["row"], e["id"])


# --- streaming ----------------------------------------------------------------------------

def test_prepare_streams_a_large_source(real_rows, tmp_path):
    per_row = sum(len(json.dumps(r)) for r in real_rows[1:]) / len(real_rows[1:])
    count = int(11e6 / per_row)
    source = _write_source(tmp_path / "big.jsonl", _varied_rows(real_rows[1:], count))
    size = source.stat().st_size
    assert size > 10_000_000
    tracemalloc.start()
    try:
        result = _prepare_jsonl(source, tmp_path / "out", n=10, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.counts[f"{CONFIG}/{SPLIT}"] == {"rows": count, "examples": 10, "rejected": 0}
    # A few rows in memory at a time (the biggest is ~60 kB), never the file.
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte file"


# --- a source that cannot be read is an error, never the sample (#12 item 1) ---------------

@pytest.fixture
def fake_hub(monkeypatch):
    """A Hub API on 127.0.0.1 that knows one dataset; huggingface_hub is pointed at it."""
    import http.server
    import threading

    import huggingface_hub.constants as hf_constants

    known = "someorg/known"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            found = self.path.startswith(f"/api/datasets/{known}")
            body = json.dumps({"id": known} if found else {"error": "Repository not found"})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            if not found:
                self.send_header("X-Error-Code", "RepoNotFound")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield known
    server.shutdown()


def test_a_missing_local_file_is_an_error_not_the_sample(tmp_path, monkeypatch):
    from argalign.cli import EXIT_CONFIG, main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for source in ("in/myrows.jsonl", "in/myrows", "rows.jsonl", "my/rows.jsonl"):
        with pytest.raises(ConfigError, match="no such file or folder"):
            resolve_source(source)
        assert main(["prepare", "--source", source, "--configs", CONFIG, "--splits", SPLIT,
                     "--data", "out"]) == EXIT_CONFIG
    assert not (tmp_path / "out").exists()


def test_a_mistyped_hub_id_is_an_error_naming_it(fake_hub):
    assert resolve_source(fake_hub) == resolve_source(fake_hub)
    assert resolve_source(fake_hub).kind == "hub"
    with pytest.raises(ConfigError, match="someorg/typo.*no such dataset"):
        resolve_source("someorg/typo")


def test_only_the_default_hub_id_falls_back_to_the_sample_when_offline(caplog):
    # conftest sets HF_HUB_OFFLINE=1
    with caplog.at_level("WARNING"):
        assert resolve_source(HUB_DATASET).kind == "sample"
    assert "not reachable" in caplog.text
    with pytest.raises(ConfigError, match="someorg/other.*not reachable"):
        resolve_source("someorg/other")


def test_an_unreachable_hub_is_offline_but_other_failures_are_errors(monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def refused(self, repo_id, **kwargs):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(HfApi, "dataset_info", refused)
    assert resolve_source(HUB_DATASET).kind == "sample"
    with pytest.raises(ConfigError, match="not reachable"):
        resolve_source("someorg/other")

    def broken(self, repo_id, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(HfApi, "dataset_info", broken)
    with pytest.raises(ConfigError, match="KeyError"):
        resolve_source(HUB_DATASET)


def test_prepare_refuses_a_source_that_is_its_own_output(sample_rows, tmp_path):
    out = tmp_path / "data"
    first = _prepare_jsonl(_write_source(tmp_path / "src.jsonl", sample_rows), out, n=None)
    assert first.counts[f"{CONFIG}/{SPLIT}"]["examples"] == len(sample_rows)
    raw = out / "raw" / CONFIG / f"{SPLIT}.jsonl"
    before = raw.read_bytes()
    with pytest.raises(ConfigError, match="overwrite the input"):
        _prepare_jsonl(raw, out, n=None)
    assert raw.read_bytes() == before
    folder = tmp_path / "ds"
    _write_source(folder / CONFIG / f"{SPLIT}.jsonl", sample_rows)
    for inside in (folder, folder / "sub"):
        with pytest.raises(ConfigError, match="overlaps"):
            prepare(source=str(folder), configs=[CONFIG], splits=[SPLIT], n=None, seed=0, data=inside)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        CONFIG, f"{CONFIG}/{SPLIT}.jsonl"]


# --- hostile sources (#12 items 6, 11, 12, 13, 14, 16) -------------------------------------

def _rows_out(out: Path) -> list[dict]:
    return [e["row"] for e in _read(out / "raw" / CONFIG / f"{SPLIT}.jsonl")]


def test_a_folder_source_gives_rows_back_exactly_as_they_went_in(sample_rows, tmp_path):
    rows = copy.deepcopy(sample_rows[:4])
    rows[0]["score"] = 1              # a column only one row has, and an int
    rows[1]["weight"] = 1.0           # a float stays a float
    rows[2]["tags"] = {"b": [1, None], "a": True}
    folder = tmp_path / "ds"
    _write_source(folder / CONFIG / f"{SPLIT}.jsonl", rows)
    prepare(source=str(folder), configs=[CONFIG], splits=[SPLIT], n=None, seed=0, data=tmp_path / "o")
    out = (tmp_path / "o" / "raw" / CONFIG / f"{SPLIT}.jsonl").read_text("utf-8").splitlines()
    assert [json.dumps(json.loads(line)["row"], ensure_ascii=False) for line in out] == [
        json.dumps(r, ensure_ascii=False) for r in rows]


def test_a_bad_row_in_a_folder_goes_to_the_rejects_file(sample_rows, tmp_path):
    folder = tmp_path / "ds"
    path = folder / CONFIG / f"{SPLIT}.jsonl"
    path.parent.mkdir(parents=True)
    lines = [json.dumps(r) for r in sample_rows[:3]]
    lines.insert(1, '{"messages": [{"role": "user", "content": 5}], "score": "x"}')
    lines.insert(2, "{this is not json" + "x" * 20_000)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    result = prepare(source=str(folder), configs=[CONFIG], splits=[SPLIT], n=None, seed=0,
                     data=tmp_path / "o")
    assert result.counts[f"{CONFIG}/{SPLIT}"] == {"rows": 5, "examples": 3, "rejected": 2}
    rejects = _read(tmp_path / "o" / "raw" / CONFIG / f"{SPLIT}.rejects.jsonl")
    assert [(r["index"], r["codes"]) for r in rejects] == [(1, ["MISSING_KEY"]), (2, ["LINE_NOT_JSON"])]
    assert rejects[1]["line"].startswith("{this is not json") and rejects[1]["line_truncated"]
    assert 9_000 < len(rejects[1]["line"]) <= 10_000


def test_a_folder_of_parquet_files_and_a_declared_config(sample_rows, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(sample_rows[:3]), folder / "data" / "tr-0.parquet")
    pq.write_table(pa.Table.from_pylist(sample_rows[3:5]), folder / "data" / "tr-1.parquet")
    (folder / "README.md").write_text(
        f"---\nconfigs:\n- config_name: {CONFIG}\n  data_files:\n  - split: {SPLIT}\n"
        "    path: data/tr-*.parquet\n---\n# card\n", "utf-8")
    result = prepare(source=str(folder), configs=[CONFIG], splits=[SPLIT], n=None, seed=0,
                     data=tmp_path / "o")
    assert result.counts[f"{CONFIG}/{SPLIT}"] == {"rows": 5, "examples": 5, "rejected": 0}
    assert _rows_out(tmp_path / "o") == sample_rows[:5]
    with pytest.raises(ConfigError, match="no config 'other'.*declares"):
        prepare(source=str(folder), configs=["other"], splits=[SPLIT], n=None, seed=0, data=tmp_path / "p")
    with pytest.raises(ConfigError, match="has no split 'test'"):
        prepare(source=str(folder), configs=[CONFIG], splits=["test"], n=None, seed=0, data=tmp_path / "p")


def test_an_empty_source_folder_is_an_error_naming_what_was_looked_for(tmp_path):
    from argalign.cli import EXIT_CONFIG, main

    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=f"no data file for config '{CONFIG}' split '{SPLIT}'"):
        prepare(source=str(tmp_path / "empty"), configs=[CONFIG], splits=[SPLIT], n=None, seed=0,
                data=tmp_path / "o")
    assert main(["prepare", "--source", str(tmp_path / "empty"), "--configs", CONFIG,
                 "--splits", SPLIT, "--data", str(tmp_path / "o")]) == EXIT_CONFIG


def test_a_lone_surrogate_rejects_its_row_only(sample_rows, tmp_path):
    rows = copy.deepcopy(sample_rows[:3])
    rows[1]["messages"][1]["content"] += "\ud83d"
    source = tmp_path / "src.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), "ascii")  # "\\ud83d" is legal JSON
    result = _prepare_jsonl(source, tmp_path / "o", n=None)
    assert result.counts[f"{CONFIG}/{SPLIT}"] == {"rows": 3, "examples": 2, "rejected": 1}
    (reject,) = _read(tmp_path / "o" / "raw" / CONFIG / f"{SPLIT}.rejects.jsonl")
    assert (reject["codes"], reject["message_index"], reject["index"]) == (["INVALID_TEXT"], 1, 1)
    assert reject["row"] == rows[1]  # kept, as its \\u escape
    assert not list((tmp_path / "o").rglob("*.partial"))


@pytest.mark.parametrize("content, match", [
    ("", "no example.*empty"),
    ("\n\n", "no example.*empty"),
    ('{"messages": []}\n{"no": 1}\n', "no example.*2 rejected"),
])
def test_a_prepare_that_yields_nothing_is_an_error(tmp_path, content, match):
    from argalign.cli import EXIT_FAILED, main
    from argalign.core.errors import RunError

    source = tmp_path / "src.jsonl"
    source.write_text(content, "utf-8")
    with pytest.raises(RunError, match=match):
        _prepare_jsonl(source, tmp_path / "o", n=None)
    assert not (tmp_path / "o" / "raw" / "manifest.json").exists()
    assert main(["prepare", "--source", str(source), "--configs", CONFIG, "--splits", SPLIT,
                 "--data", str(tmp_path / "o")]) == EXIT_FAILED


def test_a_json_array_is_refused_with_the_fix(sample_rows, tmp_path):
    source = tmp_path / "rows.json"
    source.write_text(json.dumps(sample_rows[:2], indent=1), "utf-8")
    with pytest.raises(ConfigError, match="JSON array, not JSON Lines.*jq -c"):
        _prepare_jsonl(source, tmp_path / "o", n=None)
    source.write_text(json.dumps(sample_rows[:2]), "utf-8")  # on one line
    with pytest.raises(ConfigError, match="JSON array"):
        _prepare_jsonl(source, tmp_path / "o", n=None)


@pytest.mark.parametrize("argv, match", [
    (["-n", "0"], "at least 1"), (["-n", "-1"], "at least 1"),
    (["--configs", "../../x"], "--configs '../../x'"), (["--configs", "a/b"], "--configs 'a/b'"),
    (["--splits", ".."], "--splits '..'"), (["--configs", ""], "--configs is empty"),
])
def test_bad_arguments_are_one_clear_line_and_write_nothing(sample_rows, tmp_path, argv, match,
                                                            monkeypatch, caplog, capsys):
    from argalign.cli import EXIT_CONFIG, main

    monkeypatch.chdir(tmp_path)
    source = _write_source(tmp_path / "src.jsonl", sample_rows[:2])
    args = ["prepare", "--source", str(source), "--configs", CONFIG, "--splits", SPLIT, "--data", "o"]
    for flag, value in zip(argv[::2], argv[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == EXIT_CONFIG
    assert match in caplog.text + capsys.readouterr().err  # -n: refused by the parser
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["src.jsonl"]


def test_an_interrupted_prepare_keeps_the_old_subsets_and_leaves_no_manifest(sample_rows, tmp_path,
                                                                            monkeypatch):
    import argalign.stages.prepare as prep
    from argalign.stages.run.store import raw_subsets

    rows = [*sample_rows[:3], {"no": "messages"}]
    folder = tmp_path / "ds"
    for split in ("train", "test"):
        _write_source(folder / CONFIG / f"{split}.jsonl", rows)
    out = tmp_path / "o"
    prepare(source=str(folder), configs=[CONFIG], splits=["train", "test"], n=None, seed=0, data=out)
    before = {p: p.read_bytes() for p in (out / "raw" / CONFIG).iterdir()}
    assert len(before) == 4 and len(raw_subsets(out)) == 2

    real_iter = prep.iter_rows

    def dies_on_test(source, config, split):
        for k, item in enumerate(real_iter(source, config, split)):
            if split == "test" and k == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(prep, "iter_rows", dies_on_test)
    with pytest.raises(KeyboardInterrupt):
        prepare(source=str(folder), configs=[CONFIG], splits=["train", "test"], n=2, seed=1, data=out)
    assert not (out / "raw" / "manifest.json").exists()
    with pytest.raises(ConfigError, match="did not finish"):
        raw_subsets(out)
    test_files = {p: b for p, b in before.items() if p.name.startswith("test")}
    assert {p: p.read_bytes() for p in test_files} == test_files  # old test subset and rejects intact
    assert not list(out.rglob("*.partial"))
