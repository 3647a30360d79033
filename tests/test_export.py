"""export: ShareGPT that LLaMA-Factory accepts, and OpenAI chat JSONL with tool calls as objects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from argalign.cli import EXIT_OK, main
from argalign.core.errors import ConfigError, RowError
from argalign.core.jsonl import write_json_atomic, write_jsonl_atomic
from argalign.core.schema import parse_conversation
from argalign.stages.export import export
from argalign.stages.export_openai import to_openai
from argalign.stages.export_sharegpt import TOOL_RESPONSE_SEP, to_sharegpt
from argalign.stages.prepare import CONFIGS, SPLITS, sample_dir

# LLaMA-Factory's SharegptDatasetConverter: turn 0, 2, ... human/observation; 1, 3, ... gpt/function_call;
# an even number of turns. Its FunctionFormatter takes a leading think block off a function value.
ODD, EVEN = ("human", "observation"), ("gpt", "function_call")
THOUGHT = re.compile(r"<think>\n(.*?)\n</think>\n\n", re.DOTALL)


def llamafactory_accepts(conversations: list[dict]) -> bool:
    tags_ok = all(t["from"] in (ODD, EVEN)[i % 2] for i, t in enumerate(conversations))
    return tags_ok and len(conversations) > 0 and len(conversations) % 2 == 0 and all(
        isinstance(t["value"], str) for t in conversations)


def function_calls(value: str) -> list[dict]:
    calls = json.loads(THOUGHT.sub("", value, count=1))
    calls = calls if isinstance(calls, list) else [calls]
    assert all(set(c) == {"name", "arguments"} and isinstance(c["arguments"], dict) for c in calls)
    return calls


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def msg(role: str, content: str | None = None, **kw) -> dict:
    return {"content": content, "name": kw.get("name"), "role": role, "thinking": kw.get("thinking"),
            "tool_calls": kw.get("tool_calls"), "tools": kw.get("tools")}


def calls(*names: str) -> str:
    return json.dumps([{"type": "function", "function": {"name": n, "arguments": {"q": n}}} for n in names])


TOOLS = json.dumps([{"type": "function", "function": {"name": "lookup", "description": "Look up.",
                                                      "parameters": {"type": "object", "properties": {}}}}])
SYSTEM = msg("system", "Be brief.", tools=TOOLS)
TOOL_ROW = [SYSTEM, msg("user", "Check it."), msg("assistant", thinking="plan"),
            msg("assistant", tool_calls=calls("lookup")), msg("tool", '{"ok": 1}', name="lookup"),
            msg("assistant", "Done.", thinking="read result")]


# --- ShareGPT rules on small hand-made rows ----------------------------------------------

@pytest.mark.parametrize(("messages", "thinking", "tags"), [
    (TOOL_ROW, True, ["human", "function_call", "observation", "gpt"]),
    (TOOL_ROW, False, ["human", "function_call", "observation", "gpt"]),
    ([SYSTEM, msg("user", "Two."), msg("assistant", tool_calls=calls("lookup", "lookup")),
      msg("tool", "1", name="lookup"), msg("tool", "2", name="lookup"), msg("assistant", "Both.")],
     True, ["human", "function_call", "observation", "gpt"]),
    ([SYSTEM, msg("user", "a"), msg("assistant", "b"), msg("user", "c"), msg("assistant", "d", thinking="t")],
     True, ["human", "gpt", "human", "gpt"]),
    ([SYSTEM, msg("user", "a"), msg("assistant", "b"), msg("user", "dangling")], True, ["human", "gpt"]),
    ([msg("user", "a"), msg("assistant", thinking="only")], True, ["human", "gpt"]),
])
def test_sharegpt_rules(messages, thinking, tags):
    out = to_sharegpt({"messages": messages}, "r", thinking=thinking)
    conv = out["conversations"]
    assert [t["from"] for t in conv] == tags and llamafactory_accepts(conv)
    assert ("<think>" in json.dumps(conv)) == (thinking and any(m["thinking"] for m in messages))
    names = [c["function"]["name"] for m in messages if m["tool_calls"] for c in json.loads(m["tool_calls"])]
    for turn in conv:
        if turn["from"] == "function_call":
            assert [c["name"] for c in function_calls(turn["value"])] == names
    if messages[0]["role"] == "system":
        assert out["system"] == "Be brief."
        assert json.loads(out["tools"]) == [json.loads(TOOLS)[0]["function"]]


def test_thinking_only_message_is_folded_into_the_function_call():
    conv = to_sharegpt({"messages": TOOL_ROW}, "r")["conversations"]
    assert conv[1]["value"] == '<think>\nplan\n</think>\n\n{"name": "lookup", "arguments": {"q": "lookup"}}'
    assert conv[3]["value"] == "<think>\nread result\n</think>\n\nDone."
    dropped = to_sharegpt({"messages": TOOL_ROW}, "r", thinking=False)["conversations"]
    assert dropped[1]["value"] == '{"name": "lookup", "arguments": {"q": "lookup"}}'
    assert dropped[3]["value"] == "Done."


def test_several_tool_results_become_one_observation():
    messages = [msg("user", "Two."), msg("assistant", tool_calls=calls("a", "b")),
                msg("tool", "1", name="a"), msg("tool", "2", name="b"), msg("assistant", "ok")]
    conv = to_sharegpt({"messages": messages}, "r")["conversations"]
    assert conv[2] == {"from": "observation", "value": f"1{TOOL_RESPONSE_SEP}2"}
    assert function_calls(conv[1]["value"]) == [{"name": "a", "arguments": {"q": "a"}},
                                               {"name": "b", "arguments": {"q": "b"}}]


@pytest.mark.parametrize(("messages", "thinking", "code"), [
    ([msg("user", "a"), msg("assistant", "text", tool_calls=calls("x")), msg("tool", "1", name="x"),
      msg("assistant", "b")], True, "CONTENT_WITH_TOOL_CALLS"),
    ([msg("user", "a"), msg("assistant", tool_calls=calls("x")), msg("assistant", "no result")], True,
     "INVALID_SHAREGPT"),
    ([msg("user", "a"), msg("tool", "1", name="x"), msg("assistant", "b")], True, "INVALID_SHAREGPT"),
    ([msg("user", "a"), msg("assistant", thinking="only")], False, "INVALID_SHAREGPT"),
    ([msg("assistant", "first")], True, "NO_USER_BEFORE_REPLY"),
])
def test_rows_that_cannot_be_valid_sharegpt(messages, thinking, code):
    with pytest.raises(RowError) as caught:
        to_sharegpt({"messages": messages}, "r", thinking=thinking)
    assert caught.value.code == code


# --- the real rows and the sample --------------------------------------------------------

def test_sharegpt_export_of_the_real_rows(real_rows_path, tmp_path):
    summary = export(real_rows_path, tmp_path / "out", "sharegpt")
    rows = read_jsonl(tmp_path / "out" / real_rows_path.name)
    originals = read_jsonl(real_rows_path)
    assert summary.rows == len(rows) == len(originals) == 6 and summary.rejected == 0
    for row, original in zip(rows, originals):
        assert llamafactory_accepts(row["conversations"])
        assert set(row) == {"conversations", "system", "tools"}
        assert row["system"] == original["messages"][0]["content"]
        final = [m for m in original["messages"] if m["role"] == "assistant" and m["content"]][-1]
        assert row["conversations"][-1]["value"].endswith(final["content"])  # answers kept as they are
        assert row["conversations"][-1]["value"].startswith("<think>\n")
    tool_rows = [(r, o) for r, o in zip(rows, originals) if any(m["tool_calls"] for m in o["messages"])]
    assert tool_rows
    for row, original in tool_rows:
        tags = [t["from"] for t in row["conversations"]]
        assert "function_call" in tags and "observation" in tags
        fc = row["conversations"][tags.index("function_call")]["value"]
        source_calls = [c["function"] for m in original["messages"] if m["tool_calls"]
                        for c in json.loads(m["tool_calls"])]
        assert function_calls(fc) == [{"name": c["name"], "arguments": c["arguments"]} for c in source_calls]
        assert fc.startswith("<think>\n")  # the thinking-only message before the call, folded in
        tool_names = [t["name"] for t in json.loads(row["tools"])]
        assert {c["name"] for c in source_calls} <= set(tool_names)
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info == {f"argalign-{real_rows_path.stem}": {
        "file_name": real_rows_path.name, "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call"}}}


def test_sharegpt_drop_thinking_of_the_real_rows(real_rows_path, tmp_path):
    export(real_rows_path, tmp_path / "out", "sharegpt", keep_thinking=False)
    rows = read_jsonl(tmp_path / "out" / real_rows_path.name)
    assert len(rows) == 6 and all(llamafactory_accepts(r["conversations"]) for r in rows)
    assert "<think>" not in (tmp_path / "out" / real_rows_path.name).read_text()


def _sample_rows(real_rows_path: Path) -> dict[tuple[str, str], list[dict]]:
    files = {(c, s): sample_dir() / c / f"{s}.jsonl" for c in CONFIGS for s in SPLITS}
    if all(p.is_file() for p in files.values()):
        try:
            rows = {k: read_jsonl(p)[:3] for k, p in files.items()}
            if all(rows.values()):
                return rows
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    real = read_jsonl(real_rows_path)
    return {k: [real[i % 6], real[(i + 1) % 6]] for i, k in enumerate(files)}


def _cleaned(data: Path, real_rows_path: Path) -> int:
    """A cleaned folder of envelopes from the sample (valid rows only); returns the row count."""
    total = 0
    for (config, split), rows in _sample_rows(real_rows_path).items():
        rows = [row for i, row in enumerate(rows) if _is_row(row, str(i))]
        total += write_jsonl_atomic(data / "cleaned" / config / f"{split}.jsonl", [
            {"id": f"{config}/{split}/{i}", "config": config, "split": split, "index": i, "row": row,
             "provenance": {"mode": "A", "model": "m", "program": "p", "outcome": "aligned"}}
            for i, row in enumerate(rows)])
    _finish_clean(data / "cleaned")
    return total


def _finish_clean(cleaned: Path) -> None:
    """The clean step's summary.json, written last, naming every file with its row count."""
    write_json_atomic(cleaned / "summary.json", {"subsets": {
        f"{p.parent.name}/{p.stem}": {"aligned": len(read_jsonl(p))}
        for p in sorted(cleaned.glob("*/*.jsonl"))}})


def _is_row(row: dict, row_id: str) -> bool:
    try:
        parse_conversation(row, row_id)
    except RowError:
        return False
    return True


def test_sharegpt_export_of_a_cleaned_folder(tmp_path, real_rows_path):
    data = tmp_path / "data"
    total = _cleaned(data, real_rows_path)
    summary = export(data, tmp_path / "out", "sharegpt")
    assert summary.rows + summary.rejected == total and summary.rows > 0
    assert len(summary.files) == 12
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert set(info) == {f"argalign-{c}-{s}" for c in CONFIGS for s in SPLITS}
    for entry in info.values():
        for row in read_jsonl(tmp_path / "out" / entry["file_name"]):
            assert llamafactory_accepts(row["conversations"])


def test_rejects_are_reported_not_dropped(tmp_path, real_rows_path, capsys):
    originals = read_jsonl(real_rows_path)
    tool_row = next(r for r in originals if any(m["tool_calls"] for m in r["messages"]))
    broken = json.loads(json.dumps(tool_row))
    next(m for m in broken["messages"] if m["tool_calls"])["content"] = "text beside the call"
    path = tmp_path / "in.jsonl"
    write_jsonl_atomic(path, [*originals, broken, {"messages": []}, ["not", "a", "row"]])
    code = main(["export", "--format", "sharegpt", "--in", str(path), "--out-dir", str(tmp_path / "out")])
    assert code == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["rejected"]) == (6, 3)
    rejects = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert [r["codes"] for r in rejects] == [["CONTENT_WITH_TOOL_CALLS"], ["EMPTY_MESSAGES"], ["NOT_A_ROW"]]
    assert all(r["stage"] == "export" for r in rejects)
    assert all(r["where"].startswith("in.jsonl:") and r["reason"] for r in rejects)


def test_export_of_the_whole_bundled_sample(tmp_path):
    if not all((sample_dir() / c / f"{s}.jsonl").is_file() for c in CONFIGS for s in SPLITS):
        pytest.skip("the bundled sample is not there yet")
    sharegpt = export(sample_dir(), tmp_path / "sharegpt", "sharegpt")
    openai = export(sample_dir(), tmp_path / "openai", "openai")
    assert sharegpt.rejected == openai.rejected == 0 and sharegpt.rows == openai.rows > 0
    tool_rows = 0
    for config in CONFIGS:
        for split in SPLITS:
            name = f"{config}/{split}.jsonl"
            originals = read_jsonl(sample_dir() / name)
            for original, sg, oa in zip(originals, read_jsonl(tmp_path / "sharegpt" / name),
                                        read_jsonl(tmp_path / "openai" / name)):
                assert llamafactory_accepts(sg["conversations"])
                if any(m["tool_calls"] for m in original["messages"]):
                    tool_rows += 1
                    tags = {t["from"] for t in sg["conversations"]}
                    assert {"function_call", "observation"} <= tags
                    assert all(isinstance(c["function"]["arguments"], str) for m in oa["messages"]
                               for c in m.get("tool_calls") or [])
    assert tool_rows > 0


# --- OpenAI ------------------------------------------------------------------------------

def test_openai_export_keeps_tool_calls_as_objects(real_rows_path, tmp_path):
    summary = export(real_rows_path, tmp_path / "out", "openai")
    rows = read_jsonl(tmp_path / "out" / real_rows_path.name)
    originals = read_jsonl(real_rows_path)
    assert summary.rows == 6
    for row, original in zip(rows, originals):
        assert row["tools"] == json.loads(original["messages"][0]["tools"])
        assert row["messages"][-1]["content"] == original["messages"][-1]["content"]
        assert all(m.get("reasoning_content") for m in row["messages"] if m["role"] == "assistant")
        if not any(m["tool_calls"] for m in original["messages"]):
            continue
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant", "tool", "assistant"]  # thinking-only merged
        call_message, tool_message = row["messages"][2], row["messages"][3]
        assert call_message["content"] is None
        source = json.loads(next(m["tool_calls"] for m in original["messages"] if m["tool_calls"]))
        for call, src in zip(call_message["tool_calls"], source):
            assert set(call) == {"id", "type", "function"} and call["type"] == "function"
            assert call["function"]["name"] == src["function"]["name"]
            assert json.loads(call["function"]["arguments"]) == src["function"]["arguments"]
        assert tool_message["tool_call_id"] == call_message["tool_calls"][0]["id"]
        assert tool_message["name"] == call_message["tool_calls"][0]["function"]["name"]


def test_openai_drop_thinking_and_tool_call_ids():
    out = to_openai({"messages": TOOL_ROW}, "r", thinking=False)
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert not any("reasoning_content" in m for m in out["messages"])
    assert out["messages"][3]["tool_call_id"] == out["messages"][2]["tool_calls"][0]["id"] == "call_0"
    assert out["tools"] == json.loads(TOOLS)
    kept = to_openai({"messages": TOOL_ROW}, "r")
    assert kept["messages"][2]["reasoning_content"] == "plan"
    assert kept["messages"][4]["reasoning_content"] == "read result"


@pytest.mark.parametrize("layout", ["folder", "data folder", "file"])
def test_export_refuses_to_overwrite_its_input(tmp_path, sample_rows, layout):
    from argalign.cli import EXIT_CONFIG

    cleaned = tmp_path / "data" / "cleaned"
    source = cleaned / CONFIGS[0] / "train.jsonl"
    write_jsonl_atomic(source, sample_rows[:3])
    before = source.read_bytes()
    inp, out = {"folder": (cleaned, cleaned), "data folder": (tmp_path / "data", cleaned),
                "file": (source, cleaned)}[layout]
    for _ in range(2):  # a second run used to leave 0-byte files
        assert main(["export", "--format", "openai", "--in", str(inp), "--out-dir", str(out)]) == EXIT_CONFIG
        assert source.read_bytes() == before


@pytest.mark.parametrize("fmt", ["sharegpt", "openai"])
def test_a_lone_surrogate_rejects_its_row_not_the_file(tmp_path, sample_rows, fmt):
    rows = [dict(r) for r in sample_rows[:3]]
    rows[1] = json.loads(json.dumps(rows[1]))
    rows[1]["messages"][-1]["thinking"] = "Half an emoji: \ud83d"
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), "ascii")
    summary = export(source, tmp_path / "out", fmt)
    assert (summary.rows, summary.rejected) == (2, 1)
    (reject,) = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert reject["codes"] == ["INVALID_TEXT"] and reject["where"] == "in.jsonl:2"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["in.jsonl", "rejects.jsonl", "dataset_info.json"])


@pytest.mark.parametrize("fmt", ["sharegpt", "openai"])
def test_an_export_with_every_row_rejected_writes_only_the_rejects(tmp_path, fmt):
    source = tmp_path / "train.jsonl"
    write_jsonl_atomic(source, [{"messages": []}, ["not", "a", "row"]])
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").write_text("{}")  # an earlier export's: it would name no file
    assert main(["export", "--format", fmt, "--in", str(source), "--out-dir", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["rejects.jsonl"]
    assert len(read_jsonl(out / "rejects.jsonl")) == 2


def test_a_file_with_every_row_rejected_is_left_out_of_the_export(tmp_path, sample_rows):
    folder = tmp_path / "rows"
    write_jsonl_atomic(folder / CONFIGS[0] / "train.jsonl", sample_rows[:2])
    write_jsonl_atomic(folder / CONFIGS[0] / "test.jsonl", [{"messages": []}])
    summary = export(folder, tmp_path / "out", "sharegpt")
    assert summary.rows == 2 and summary.rejected == 1
    assert not (tmp_path / "out" / CONFIGS[0] / "test.jsonl").exists()
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert [entry["file_name"] for entry in info.values()] == [f"{CONFIGS[0]}/train.jsonl"]


# --- through LLaMA-Factory's loader (tests/llamafactory.py) -----------------------------------

def _eighteen(tmp_path: Path, real_rows_path: Path) -> tuple[Path, list[dict]]:
    """The bundled sample's first row of every (config, split) and the six realistic rows, as a
    cleaned folder (the 18 rows a first pipeline run and the shared data give)."""
    rows = [read_jsonl(sample_dir() / c / f"{s}.jsonl")[0] for c in CONFIGS for s in SPLITS]
    rows += read_jsonl(real_rows_path)
    path = tmp_path / "cleaned" / "all" / "train.jsonl"
    write_jsonl_atomic(path, rows)
    _finish_clean(path.parent.parent)
    return path.parent.parent, rows


@pytest.mark.parametrize("thinking", ["keep", "drop"])
def test_sharegpt_rows_load_unchanged_through_llamafactory(tmp_path, real_rows_path, thinking):
    from llamafactory import load_folder

    cleaned, rows = _eighteen(tmp_path, real_rows_path)
    summary = export(cleaned, tmp_path / "out", "sharegpt", keep_thinking=thinking == "keep")
    assert (summary.rows, summary.rejected) == (18, 0)
    (loaded,) = load_folder(tmp_path / "out", tmp_path / "cache").values()
    assert loaded.skipped == [] and len(loaded.rows) == 18
    for row, original in zip(loaded.rows, rows):
        messages = original["messages"]
        assert row["system"] == messages[0]["content"]
        answer = row["turns"][-1]["content"]
        assert answer.endswith(messages[-1]["content"])  # the final answer, byte for byte
        assert ("<think>" in answer) == (thinking == "keep" and bool(messages[-1]["thinking"]))
        roles = [t["role"] for t in row["turns"]]
        if any(m["tool_calls"] for m in messages):
            assert roles == ["user", "function", "observation", "assistant"]
            assert row["tools"] and json.loads(row["tools"])
        else:
            assert set(roles) == {"user", "assistant"}


def test_openai_export_loads_through_llamafactory_with_its_dataset_info(tmp_path, real_rows_path):
    from llamafactory import load_folder

    cleaned, rows = _eighteen(tmp_path, real_rows_path)
    export(cleaned, tmp_path / "out", "openai")
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    (entry,) = info.values()
    assert entry["formatting"] == "openai"
    assert entry["tags"]["observation_tag"] == "tool" and entry["tags"]["function_tag"] == "function_call"
    (loaded,) = load_folder(tmp_path / "out", tmp_path / "cache").values()
    assert loaded.skipped == [] and len(loaded.rows) == 18
    tool_rows = [row for row, original in zip(loaded.rows, rows)
                 if any(m["tool_calls"] for m in original["messages"])]
    assert tool_rows
    for row in tool_rows:
        assert [t["role"] for t in row["turns"]] == ["user", "function", "observation", "assistant"]


def test_the_openai_tags_of_llamafactorys_readme_lose_the_tool_row(tmp_path, real_rows_path):
    from llamafactory import load_folder

    cleaned, _ = _eighteen(tmp_path, real_rows_path)
    export(cleaned, tmp_path / "out", "openai")
    info_path = tmp_path / "out" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    for entry in info.values():  # the tags LLaMA-Factory's README gives for this format
        entry["tags"] = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"}
    info_path.write_text(json.dumps(info))
    with pytest.raises(KeyError, match="tool"):
        load_folder(tmp_path / "out", tmp_path / "cache")


# --- token lengths -------------------------------------------------------------------------

def test_export_reports_the_longest_row_and_the_cutoff_it_needs(tmp_path, real_rows_path, caplog):
    cleaned, rows = _eighteen(tmp_path, real_rows_path)
    with caplog.at_level("INFO", logger="argalign.stages.export"):
        summary = export(cleaned, tmp_path / "out", "sharegpt")
    tokens = summary.tokens
    assert tokens["tokenizer"].startswith("cl100k_base") and tokens["rows"] == 18
    tool_index = next(i for i, r in enumerate(rows) if any(m["tool_calls"] for m in r["messages"]))
    longest = max(range(18), key=lambda i: len(json.dumps(rows[i])))
    assert tokens["longest"]["where"] == f"all/train.jsonl:{longest + 1}"
    assert tokens["cutoff_len"] >= tokens["longest"]["tokens"] * 1.15
    assert tokens["cutoff_len"] % 1024 == 0
    if len(json.dumps(rows[tool_index])) > 60_000:  # the real tool row: ~18k tokens
        assert tokens["longest"]["tokens"] > 15_000 and tokens["over_default_cutoff"] >= 1
    assert any("set cutoff_len >=" in r.getMessage() for r in caplog.records)


def test_a_tokenizer_file_counts_exactly(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    row = {"messages": [msg("system", "one two"), msg("user", "a b c"), msg("assistant", "d e f g")]}
    write_jsonl_atomic(tmp_path / "in.jsonl", [row])
    summary = export(tmp_path / "in.jsonl", tmp_path / "out", "sharegpt",
                     tokenizer=tmp_path / "tokenizer.json")
    # Words of the system prompt and the two turns, plus 10 for the template around each.
    assert summary.tokens["longest"]["tokens"] == 2 + 3 + 4 + 10 * 3
    assert summary.tokens["tokenizer"] == "tokenizer.json" and summary.tokens["cutoff_len"] == 1024
    with pytest.raises(ConfigError, match="tokenizer"):
        export(tmp_path / "in.jsonl", tmp_path / "out2", "sharegpt", tokenizer=tmp_path / "missing.json")
