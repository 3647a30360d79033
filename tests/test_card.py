"""The dataset card: its body is the Markdown template data/card.md with every slot filled."""

from __future__ import annotations

import re

import pytest
import yaml

from argalign.stages import card


def _stats() -> list[card.ConfigStats]:
    stats = card.ConfigStats("deepa2-aaac01-thinking")
    stats.add("train", {"mode": "A", "model": "price$5-model", "program": "zsA-1",
                        "scores": {"baseline": {"score": 0.25}, "aligned": {"score": 0.5}}})
    stats.outcomes = {"train": {"aligned": 1, "failed": 2}}
    return [stats]


def _scores() -> dict:
    from argalign.scoring.scoreboard import Scoreboard

    board = Scoreboard()
    board.add(config="deepa2-aaac01-thinking", mode="A", model="price$5-model", outcome="aligned",
              scores={"baseline": {"score": 0.25}, "aligned": {"score": 0.5}})
    for _ in range(2):
        board.add(config="deepa2-aaac01-thinking", mode="A", model="price$5-model", outcome="failed")
    return board.as_dict()


def test_every_slot_of_the_template_is_filled():
    text = card.render_card("org/argunauts-aligned", _stats(), row_columns=["source_id"],
                            scores=_scores())
    head, body = text.split("---\n", 2)[1:]
    assert yaml.safe_load(head)["configs"][0]["config_name"] == "deepa2-aaac01-thinking-aligned"
    assert "${" not in body and "$name" not in body
    assert body.startswith("\n# argunauts-aligned\n")
    assert "`price$5-model`" in body  # a value with a dollar sign is not taken for a slot
    assert ("| all rows | 1 | 2 | 1 | 0.250 [0.250, 0.250] | 0.500 [0.500, 0.500] "
            "| +0.250 [+0.250, +0.250] |") in body
    assert "| model `price$5-model` | 1 | 2 | 1 |" in body
    assert 'load_dataset("org/argunauts-aligned", "deepa2-aaac01-thinking-aligned")' in body


def test_the_card_text_is_the_template_file(monkeypatch):
    slots = set(re.findall(r"\$\{(\w+)\}", card._template()))
    assert {"name", "configs_table", "outcome_table", "score_table", "repo_id"} <= slots
    monkeypatch.setattr(card, "_template", lambda: "Card of ${name}: ${mix_text}\n")
    assert card.render_card("org/x", _stats()).endswith("\nCard of x: Mode A with `price$5-model`: 1\n")
    monkeypatch.setattr(card, "_template", lambda: "${no_such_slot}")
    with pytest.raises(KeyError):
        card.render_card("org/x", _stats())


HOSTILE = [  # (a model name from a results file, how the card writes it)
    ("evil\n# Injected heading", "evil \\# Injected heading"),
    ("a|b|c", "a\\|b\\|c"),
    ("# heading", "\\# heading"),
    ("[x](javascript:alert(1))", "\\[x\\]\\(javascript:alert\\(1\\)\\)"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert\\(1\\)&lt;/script&gt;"),
    ("a\\b & *c* _d_ ~e~ `f`\r\u2028g", "a\\\\b &amp; \\*c\\* \\_d\\_ \\~e\\~ \\`f\\`  g"),
]


def _card_with(model: str, program: str = "zsA-1") -> str:
    from argalign.scoring.scoreboard import Scoreboard

    stats = card.ConfigStats("deepa2-aaac01-thinking")
    stats.add("train", {"mode": "A", "model": model, "program": program})
    stats.outcomes = {"train": {"aligned": 1}}
    board = Scoreboard()
    board.add(config="deepa2-aaac01-thinking", mode="A", model=model, outcome="aligned",
              scores={"baseline": {"score": 0.25}, "aligned": {"score": 0.5}})
    return card.render_card("org/x", [stats], row_columns=[model], scores=board.as_dict())


def _cells(line: str) -> int:
    """Cells of a table line: the pipes that are not escaped."""
    return len(re.findall(r"(?<!\\)\|", line)) - 1 if line.startswith("|") else 0


@pytest.mark.parametrize("hostile, escaped", HOSTILE)
def test_a_hostile_model_name_is_escaped_and_injects_nothing(hostile, escaped):
    text = _card_with(hostile, program=hostile)
    plain = _card_with("benign", program="benign")
    lines, plain_lines = text.splitlines(), plain.splitlines()
    # The same lines, headings and table rows as with a plain name, each row with its cells.
    assert len(lines) == len(plain_lines)
    assert [line for line in lines if line.startswith("#")] == \
        [line for line in plain_lines if line.startswith("#")]
    assert [_cells(line) for line in lines] == [_cells(line) for line in plain_lines]
    # Exactly the expected rows, the name escaped (and no longer in a code span).
    assert f"| `deepa2-aaac01-thinking-aligned` | A | {escaped} | {escaped} | 1 |" in lines
    assert next(line for line in lines if line.startswith("| model ")).startswith(
        f"| model {escaped} | 1 | 1 |")
    assert f"Mix: Mode A with {escaped}: 1." in lines
    assert f"- {escaped}: kept from the source row." in lines
    # No link, image, tag or entity that the plain card does not have.
    for pattern in (r"(?<!\\)\]\(", "<", r"javascript:alert\(1\)\)", "&(?!lt;|gt;|amp;)"):
        assert len(re.findall(pattern, text)) == len(re.findall(pattern, plain)), pattern
    assert hostile not in text.replace(escaped, "")  # only ever written escaped


def test_a_plain_name_stays_in_a_code_span():
    text = _card_with("qwen2.5-coder_1.5b:Q4+x@y")
    assert "| `deepa2-aaac01-thinking-aligned` | A | `qwen2.5-coder_1.5b:Q4+x@y` | `zsA-1` | 1 |" in text


@pytest.mark.parametrize("name, escaped", [("a|b", "a\\|b"), ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;")])
def test_every_value_from_the_data_is_escaped(name, escaped):
    stats = card.ConfigStats(f"cfg{name}")
    stats.add(f"train{name}", {"mode": f"A{name}", "model": "m", "program": "p"})
    stats.outcomes = {f"train{name}": {f"odd{name}": 1}}
    text = card.render_card("org/x", [stats], skipped=[f"gone{name}"])
    body = text.split("---\n", 2)[2]
    code = re.search(r"```python\n(.*?)```", body, re.S).group(1)
    assert name not in body.replace(code, "")
    assert f"| cfg{escaped}-aligned | cfg{escaped} | 1 | 1 |" in body  # the configs table
    assert f"| config | split | odd{escaped} | published |" in body
    assert f"| config | source config | train{escaped} | rows |" in body
    assert f"Left out because no row was published: gone{escaped}." in body
    assert f"Mode A{escaped} with `m`: 1" in body
    # In the code block, a Python string literal (a quote or a backtick cannot end it).
    assert f'load_dataset("org/x", "cfg{name}-aligned")' in code
    assert 'load_dataset("org/x", "a\\"\\n\\u0060\\u0060\\u0060-aligned")' in card.render_card(
        'org/x', [card.ConfigStats('a"\n```')])
