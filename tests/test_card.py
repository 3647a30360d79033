"""The dataset card: its body is the Markdown template data/card.md with every slot filled."""

from __future__ import annotations

import re

import pytest
import yaml

from argalign import card


def _stats() -> list[card.ConfigStats]:
    stats = card.ConfigStats("deepa2-aaac01-thinking")
    stats.add("train", {"mode": "A", "model": "price$5-model", "program": "zsA-1",
                        "scores": {"baseline": {"score": 0.25}, "aligned": {"score": 0.5}}})
    stats.outcomes = {"train": {"aligned": 1, "failed": 2}}
    return [stats]


def _scores() -> dict:
    from argalign.scoreboard import Scoreboard

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
