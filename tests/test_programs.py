"""Programs: zero-shot fingerprints, and compiled state loaded from a path or an MLflow URI."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest

from argalign import tracking
from argalign.core.errors import ConfigError
from argalign.modes import make_mode, signatures
from argalign.modes.base import AlignConversation
from argalign.programs.store import (
    default_program,
    fingerprint,
    load_program,
    meta_path,
    programs_dir,
    zero_shot_id,
)

DEMO = {"system_prompt": "", "history": "", "original_request": "Analyse this.",
        "source_excerpt": "All men are mortal.", "answer": "An Argdown map.",
        "tool_calls": "none", "plan": "Map it.", "request": "Reconstruct it as Argdown."}


def save_program(mode: str, fp: str = "0123456789ab", *, with_meta: bool = True,
                 thinking: str = "blocks") -> Path:
    """A 'compiled' program without any LM: the zero-shot module with a demo and new words."""
    module = make_mode(mode, thinking=thinking)
    module.rewrite_thinking.signature = module.rewrite_thinking.signature.with_instructions(
        "Rewrite the opening and closing, tuned.")
    if mode == "A":
        module.rewrite_request.demos = [dspy.Example(**DEMO)]
    path = programs_dir() / f"{mode}-bootstrap-{fp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    if with_meta:
        meta_path(path).write_text(json.dumps({"fingerprint": fp, "mode": mode}), encoding="utf-8")
    return path


def test_fingerprint_is_short_and_ignores_key_order():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert len(fingerprint("x")) == 12
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_zero_shot_fingerprints_differ_by_mode_and_follow_the_instructions(monkeypatch):
    module_a, a = load_program("A")
    _, b = load_program("B")
    assert isinstance(module_a, AlignConversation) and module_a.mode == "A"
    assert a.startswith("zsA-") and b.startswith("zsB-")
    assert load_program("A")[1] == a  # stable
    assert load_program("A", thinking="full")[1] != a

    monkeypatch.setattr(signatures.RewriteRequest, "__doc__", "Mode A. Write a better request.")
    assert load_program("A")[1] != a
    assert load_program("B")[1] == b  # Mode B does not use RewriteRequest
    monkeypatch.setattr(signatures.RewriteThinkingForAnswer, "__doc__", "Mode B, reworded.")
    assert load_program("B")[1] != b


def test_load_program_from_a_path_restores_the_state_and_its_fingerprint():
    path = save_program("A")
    module, fp = load_program("A", str(path))
    assert fp == "0123456789ab"
    assert [dict(d) for d in module.rewrite_request.demos] == [DEMO]
    assert module.rewrite_thinking.signature.instructions == "Rewrite the opening and closing, tuned."

    meta_path(path).unlink()  # without its sidecar, the file's content names it
    _, by_content = load_program("A", str(path))
    assert by_content.startswith("file-") and by_content == load_program("A", str(path))[1]


@pytest.mark.parametrize("saved, asked", [("A", "B"), ("B", "A")])
@pytest.mark.parametrize("with_meta", [True, False])
def test_a_program_of_the_other_mode_is_refused(saved, asked, with_meta):
    path = save_program(saved, with_meta=with_meta)
    with pytest.raises(ConfigError, match=f"Mode {saved}|Mode {asked}"):
        load_program(asked, str(path))


def test_a_program_of_the_other_thinking_scope_is_refused():
    path = save_program("B", with_meta=False, thinking="full")
    with pytest.raises(ConfigError, match="predictors"):
        load_program("B", str(path))
    assert load_program("B", str(path), thinking="full")[1].startswith("file-")


def test_a_missing_or_broken_program_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_program("A", str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a program state"):
        load_program("A", str(broken))


def test_load_program_from_an_mlflow_artifact_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts in ./mlruns beside a SQLite store
    path = save_program("A", "feedfacecafe")
    with tracking.start_run(tracking.EXPERIMENT_OPTIMIZE, "a-program", {"mode": "A"}) as run:
        tracking.log_file(path, "program")
        tracking.log_file(meta_path(path), "program")
    run_id = run.info.run_id

    module, fp = load_program("A", f"runs:/{run_id}/program/{path.name}")
    assert fp == "feedfacecafe"
    assert [dict(d) for d in module.rewrite_request.demos] == [DEMO]
    assert load_program("A", f"runs:/{run_id}/program")[1] == "feedfacecafe"  # the folder
    with pytest.raises(ConfigError, match="Mode A"):
        load_program("B", f"runs:/{run_id}/program/{path.name}")
    with pytest.raises(ConfigError, match="cannot fetch"):
        load_program("A", f"runs:/{run_id}/program/missing.json")


# --- the default program of a run ---------------------------------------------------------

TASK = {"name": "task", "model": "openai/task", "temperature": 0.0, "max_tokens": 512,
        "structured_output": "none", "local": None}


def save_compiled(mode: str, fp: str, *, gain: float, task_model: dict | None = None,
                  thinking: str = "blocks", zero_shot: str | None = None,
                  kept: bool = False) -> Path:
    """A program and the meta ``argalign optimize`` writes beside it."""
    path = save_program(mode, fp, with_meta=False, thinking=thinking)
    zero = zero_shot or (zero_shot_id(make_mode(mode, thinking=thinking)))
    meta = {"fingerprint": fp, "mode": mode, "zero_shot_kept": kept,
            "baseline": {"score": 0.5}, "compiled": {"score": 0.5 + gain},
            "determined_by": {"task_model": task_model or TASK, "thinking": thinking,
                              "zero_shot": zero, "optimizer": "bootstrap"}}
    meta_path(path).write_text(json.dumps(meta), encoding="utf-8")
    return path


def test_the_default_program_is_the_best_compiled_for_the_mode_and_task_model(caplog):
    assert default_program("A", task_model=TASK) is None  # nothing compiled yet
    save_compiled("A", "aaaaaaaaaaa1", gain=0.05)
    best = save_compiled("A", "aaaaaaaaaaa2", gain=0.10)
    # Each of these would win on gain, and none may be taken:
    save_compiled("A", "bbbbbbbbbbb1", gain=0.5, task_model={**TASK, "temperature": 0.7})
    save_compiled("A", "bbbbbbbbbbb2", gain=0.5, task_model={**TASK, "name": "other"})
    save_compiled("A", "bbbbbbbbbbb3", gain=0.5, zero_shot="zsA-older")  # another prompt
    save_compiled("A", "bbbbbbbbbbb4", gain=0.5, kept=True)  # no candidate beat zero-shot
    save_compiled("A", "bbbbbbbbbbb5", gain=0.5, thinking="full")
    save_compiled("B", "bbbbbbbbbbb6", gain=0.5)  # the other mode
    (programs_dir() / "A-gepa-cccccccccccc.meta.json").write_text("{broken", encoding="utf-8")
    path, meta = default_program("A", task_model=TASK)
    assert path == best and meta["fingerprint"] == "aaaaaaaaaaa2"
    assert "A-gepa-cccccccccccc.meta.json is not a program's meta file" in caplog.text
    assert default_program("B", task_model=TASK)[0].name == "B-bootstrap-bbbbbbbbbbb6.json"


def test_a_compiled_program_that_scored_no_better_than_zero_shot_is_not_a_default():
    save_compiled("B", "aaaaaaaaaaa1", gain=0.0)
    save_compiled("B", "aaaaaaaaaaa2", gain=-0.1)
    assert default_program("B", task_model=TASK) is None
