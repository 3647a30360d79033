"""The bundled sample dataset: it loads with `datasets`, its rows are valid, it covers every
conversation shape in every config, and the generator reproduces it byte for byte."""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from argalign.core.schema import MESSAGE_KEYS, parse_conversation, split_source
from argalign.stages.prepare import CONFIGS, SPLITS

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "make_sample.py"
CONFIG_SPLITS = [(c, s) for c in CONFIGS for s in SPLITS]
IMPERATIVE = re.compile(
    r"^(Analy[sz]e|Reconstruct|Annotate|Generate|Identify|Assess|Evaluate|Formali[sz]e|Create"
    r"|Provide|Summari[sz]e|Write|Explain|Check|Use|Map|Determine)\b"
)
VAGUE_MAX_CHARS = 60  # instruction text around the source text, introducer line excluded
SHAPES = ("tool round trip", "multi-turn", "argdown in thinking and content", "short answer",
          "formalization", "vague request, elaborate answer", "explicit request")


def sample_dir() -> Path:
    packaged = Path(str(importlib.resources.files("argalign") / "data" / "sample"))
    if (packaged / "README.md").is_file():
        return packaged
    return ROOT / "src" / "argalign" / "data" / "sample"


SAMPLE = sample_dir()


@functools.cache
def read_rows(config: str, split: str) -> tuple[dict, ...]:
    lines = (SAMPLE / config / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines)


def size(row: dict) -> int:
    return sum(len(v) for m in row["messages"] for v in m.values() if isinstance(v, str))


def shapes(row: dict) -> set[str]:
    """The shapes a row shows (see the module constants)."""
    messages = row["messages"]
    conversation = parse_conversation(row, row["source_id"])
    found = set()
    if any(m["role"] == "tool" for m in messages):
        found.add("tool round trip")
    if len(conversation.turns) > 1:
        found.add("multi-turn")
    assistant = [m for m in messages if m["role"] == "assistant"]
    if any("```argdown" in (m["thinking"] or "") for m in assistant) and any(
        "```argdown" in (m["content"] or "") for m in assistant
    ):
        found.add("argdown in thinking and content")
    if any(m["content"] and len(m["content"]) <= 20 and "\n" not in m["content"]
           for m in assistant):
        found.add("short answer")
    if any(marker in (m["content"] or "") for m in assistant
           for marker in ("\\forall", "\\rightarrow", "(check-sat)")):
        found.add("formalization")
    before, _, after = split_source(messages[1]["content"])
    instruction = before.strip().rpartition("\n")[0].strip() + after.strip()
    first_turn = conversation.turns[0]
    answer = messages[first_turn.assistant_indices[-1]]["content"] or ""
    elaborate = "```" in answer or "<span" in answer or "tool round trip" in found
    if len(instruction) < VAGUE_MAX_CHARS:
        if elaborate:
            found.add("vague request, elaborate answer")
    else:
        found.add("explicit request")
    return found


@pytest.fixture
def offline_hub(monkeypatch):
    """`datasets` reads the offline switches at import, so set the module constants too."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_readme_front_matter_declares_every_config_and_split():
    text = (SAMPLE / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert [c["config_name"] for c in front["configs"]] == list(CONFIGS)
    for config in front["configs"]:
        files = {f["split"]: f["path"] for f in config["data_files"]}
        assert list(files) == list(SPLITS)
        assert all((SAMPLE / path).is_file() for path in files.values())
    assert "not** that dataset" in text


@pytest.mark.parametrize("config", CONFIGS)
def test_every_split_loads_with_datasets(config, tmp_path, offline_hub):
    from datasets import load_dataset

    for split in SPLITS:
        ds = load_dataset(str(SAMPLE), config, split=split, cache_dir=str(tmp_path))
        assert len(ds) >= 8
        assert ds.column_names == ["source_id", "messages"]
        assert list(ds[0]["messages"][0]) == list(MESSAGE_KEYS)


@pytest.mark.parametrize("config", CONFIGS)
def test_streaming_gives_the_rows_of_the_file(config, tmp_path, offline_hub):
    from datasets import load_dataset

    ds = load_dataset(str(SAMPLE), config, split="train", streaming=True,
                      cache_dir=str(tmp_path))
    assert tuple(ds) == read_rows(config, "train")


@pytest.mark.parametrize(("config", "split"), CONFIG_SPLITS)
def test_rows_are_valid_conversations(config, split):
    rows = read_rows(config, split)
    assert len(rows) == 10
    for i, row in enumerate(rows):
        assert list(row) == ["source_id", "messages"]
        assert row["source_id"] == f"sample/{config}/{split}/{i:02d}"
        parse_conversation(row, row["source_id"])
        system, *rest = row["messages"]
        assert system["role"] == "system"
        tools = {t["function"]["name"] for t in json.loads(system["tools"])}
        for m in row["messages"]:
            assert list(m) == list(MESSAGE_KEYS)
        for m in rest:
            assert m["tools"] is None
            if m["tool_calls"] is not None:
                assert m["role"] == "assistant"
                for call in json.loads(m["tool_calls"]):
                    assert call["type"] == "function"
                    assert call["function"]["name"] in tools
                    assert isinstance(call["function"]["arguments"], dict)
            if m["role"] == "tool":
                assert m["name"] in tools
                json.loads(m["content"])
            else:
                assert m["name"] is None


@pytest.mark.parametrize(("config", "split"), CONFIG_SPLITS)
def test_split_source_finds_the_text_of_every_first_user_message(config, split):
    for row in read_rows(config, split):
        user = row["messages"][1]["content"]
        parts = split_source(user)
        assert parts is not None, row["source_id"]
        before, source, after = parts
        assert 400 <= len(source) <= 1200, row["source_id"]
        intro = before.rstrip("\n").rpartition("\n")[2]
        assert intro.endswith(":") and re.search(r"\btext\b", intro, re.I), intro
        assert after == "" or (after.startswith("\n\n") and "\n" not in after.strip()
                               and IMPERATIVE.match(after.strip())), after
        for paragraph in source.split("\n\n"):
            assert not IMPERATIVE.match(paragraph), paragraph[:60]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shape_occurs_in_every_config(config):
    rows = [row for split in SPLITS for row in read_rows(config, split)]
    seen = set().union(*(shapes(row) for row in rows))
    assert seen >= set(SHAPES), set(SHAPES) - seen
    single = [r for r in rows if [m["role"] for m in r["messages"]] == ["system", "user",
                                                                        "assistant"]]
    assert len(single) > len(rows) / 2


@pytest.mark.parametrize(("config", "split"), CONFIG_SPLITS)
def test_every_split_has_tool_multi_turn_and_flaw_rows(config, split):
    found = [shapes(row) for row in read_rows(config, split)]
    assert any("tool round trip" in s for s in found)
    assert any("multi-turn" in s for s in found)
    assert sum("vague request, elaborate answer" in s for s in found) >= 2
    assert sum("explicit request" in s for s in found) >= 5


@pytest.mark.parametrize("config", CONFIGS)
def test_no_source_text_is_shared_between_splits(config):
    texts = {split: {split_source(r["messages"][1]["content"])[1] for r in read_rows(config, split)}
             for split in SPLITS}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]


def test_conversations_are_small():
    sizes = [size(row) for config, split in CONFIG_SPLITS for row in read_rows(config, split)]
    assert max(sizes) < 6000


def test_tool_round_trip_uses_the_null_conventions_of_the_read_rows(real_data_path):
    def pattern(messages: list[dict]) -> list[tuple]:
        return [(m["role"], m["content"] is None, m["thinking"] is None, m["tool_calls"] is None)
                for m in messages]

    real = [json.loads(line) for line in real_data_path.read_text().splitlines()]
    real_tool = [pattern(r["messages"]) for r in real if any(m["role"] == "tool"
                                                            for m in r["messages"])]
    ours = {tuple(pattern(r["messages"])) for c, s in CONFIG_SPLITS for r in read_rows(c, s)
            if any(m["role"] == "tool" for m in r["messages"])}
    assert ours == {tuple(p) for p in real_tool}


def test_sample_does_not_copy_the_read_rows(real_data_path):
    real = [json.loads(line) for line in real_data_path.read_text().splitlines()]
    sentences = {s.strip() for r in real for m in r["messages"] if m["role"] == "user"
                 for s in re.split(r"[.!?]\s", m["content"]) if len(s.strip()) > 40}
    sample = "\n".join(m["content"] or "" for c, s in CONFIG_SPLITS for r in read_rows(c, s)
                       for m in r["messages"])
    assert sentences
    assert not [s for s in sentences if s in sample]


def test_generator_reproduces_the_files_byte_for_byte(tmp_path):
    if not GENERATOR.is_file():
        pytest.skip("scripts/make_sample.py is not shipped with an installed package")
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*")
                       if p.is_file() and p.suffix in (".jsonl", ".md"))
    assert written == committed
    for path in written:
        assert (tmp_path / path).read_bytes() == (SAMPLE / path).read_bytes(), path


def test_the_generator_takes_its_cases_from_the_data_file(tmp_path):
    """The case texts live in scripts/sample_cases.yaml: an edited case changes the output."""
    if not GENERATOR.is_file():
        pytest.skip("scripts/make_sample.py is not shipped with an installed package")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(GENERATOR, scripts / GENERATOR.name)
    cases = (GENERATOR.parent / "sample_cases.yaml").read_text("utf-8")
    assert cases.count("slug: ") == 16 and "AAAC01 = (" not in GENERATOR.read_text("utf-8")
    (scripts / "sample_cases.yaml").write_text(
        cases.replace("title: Cocamide DEA", "title: Cocamide DEA (edited)", 1), "utf-8")
    # The copy imports argalign from <copy>/src, which does not exist: the installed one is used.
    subprocess.run([sys.executable, str(scripts / GENERATOR.name), "--out", str(tmp_path / "out")],
                   check=True, capture_output=True)
    written = (tmp_path / "out" / CONFIGS[0] / "train.jsonl").read_text("utf-8")
    assert "Cocamide DEA (edited)" in written
