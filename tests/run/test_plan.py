"""The manifest: a resume with other parameters is refused, naming them; --force overrides."""

from __future__ import annotations

import json
import logging

import pytest

from argalign import cli
from argalign.core.errors import RunError
from argalign.modes import make_mode
from argalign.stages.run.runner import run_batch
from support import (
    CONFIG,
    make_rows,
    raw_ids,
    read_rows,
    results,
    run_options,
    write_raw,
    write_settings,
)

RUN = "fixed"


@pytest.fixture
def setup(tmp_path, real_rows_path, fake_server):
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      4, "m")})
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url,
                              models={"fake": {}, "other": {"model": "openai/other"}})
    first = run_batch(run_options(data, settings, modes=("A",), run_name=RUN))
    assert first.done == 4
    return data, settings


def _edit_raw(data):
    path = data / "raw" / CONFIG / "train.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")


@pytest.mark.parametrize(("change", "named"), [
    ({"seed": 1}, "seed: 0 -> 1"),
    ({"thinking": "full"}, "thinking"),
    ({"modes": ("A", "B")}, "modes"),
    ({"models": ("other",)}, "models.other"),
    ({"score": False}, "scoring.enabled: true -> false"),
    ({"comparison": "lexical"}, "scoring.comparison"),
    ("raw", f"raw.{CONFIG}/train"),
])
def test_changed_parameter_is_refused_and_named(setup, fake_server, change, named):
    data, settings = setup
    kwargs = {"modes": ("A",), "run_name": RUN}
    if change == "raw":
        _edit_raw(data)
    else:
        kwargs.update(change)
    calls = fake_server.stats.total
    with pytest.raises(RunError) as refused:
        run_batch(run_options(data, settings, **kwargs))
    assert named in str(refused.value) and "--force" in str(refused.value)
    assert fake_server.stats.total == calls  # refused before any LM call

    forced = run_batch(run_options(data, settings, force=True, **kwargs))
    manifest = json.loads((data / "runs" / RUN / "manifest.json").read_text())
    assert any(named in line for entry in manifest["forced"] for line in entry["differences"])
    ids = [r["id"] for r in results(data / "runs" / RUN)]
    assert len(ids) == len(set(ids))  # finished results kept, none twice
    assert set(raw_ids(data, CONFIG, "train")) <= set(ids) and forced.done == forced.total


def test_same_parameters_resume_and_cli_exit_code(setup, caplog):
    data, settings = setup
    args = ["run", "--data", str(data), "--settings", str(settings), "--modes", "A",
            "--run-name", RUN, "--no-track", "--no-progress"]
    assert cli.main(args) == 0
    with caplog.at_level(logging.ERROR, logger="argalign"):
        assert cli.main([*args, "--seed", "9"]) == 1
    assert "seed: 0 -> 9" in caplog.text
    assert cli.main([*args, "--seed", "9", "--force"]) == 0


def test_bad_options_are_configuration_errors(setup):
    data, settings = setup
    base = ["run", "--data", str(data), "--settings", str(settings), "--no-track"]
    assert cli.main([*base, "--models", "nope"]) == 2
    assert cli.main([*base, "--modes", "C"]) == 2
    assert cli.main([*base, "--configs", "no-such-config"]) == 2
    assert cli.main(["run", "--data", str(data / "missing"), "--settings", str(settings)]) == 2


def test_programs_option_takes_mode_equals_path(setup, tmp_path, capsys):
    from argalign.modes import make_mode

    data, settings = setup
    base = ["run", "--data", str(data), "--settings", str(settings), "--modes", "A", "--no-track",
            "--no-progress", "--run-name", "with-program"]
    assert cli.main([*base, "--programs", "C=x.json"]) == 2  # not a registered mode
    assert cli.main([*base, "--programs", "A=a.json", "--programs", "A=b.json"]) == 2
    assert cli.main([*base, "--programs", "A=a.json", "A=b.json"]) == 2
    assert cli.main([*base, "--programs", "a.json"]) == 2  # a usage error
    assert "MODE=PATH" in capsys.readouterr().err

    saved = tmp_path / "a=1.json"  # only the first "=" separates the mode
    make_mode("A").save(str(saved))
    assert cli.main([*base, "--programs", f"A={saved}"]) == 0
    manifest = json.loads((data / "runs" / "with-program" / "manifest.json").read_text())
    assert manifest["params"]["programs"]["A"].startswith("file-")


def test_model_names_that_share_a_file_name_are_refused(tmp_path, real_rows_path, fake_server,
                                                        caplog):
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      2, "c")})
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url,
                              models={"x:y": {}, "x_y": {"model": "openai/other"}})
    # (A name with "/" is refused by the settings themselves; ":" is allowed and sanitized.)
    args = ["run", "--data", str(data), "--settings", str(settings), "--no-track", "--no-progress",
            "--modes", "A", "--models", "x:y", "x_y"]
    with caplog.at_level(logging.ERROR, logger="argalign"):
        assert cli.main(args) == 2
    assert "'x:y' and 'x_y'" in caplog.text and "A-x_y.jsonl" in caplog.text
    assert not (data / "runs").exists() and fake_server.stats.total == 0
    assert cli.main([*args[:-1], "--run-name", "one"]) == 0  # each alone is fine


def test_a_run_refused_at_start_writes_no_manifest(setup, monkeypatch, caplog):
    data, settings = setup
    base = ["run", "--data", str(data), "--settings", str(settings), "--no-progress",
            "--run-name", "refused"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///tmp/mlruns")
    with caplog.at_level(logging.ERROR, logger="argalign"):
        assert cli.main([*base, "--modes", "A"]) == 2
    assert "MLFLOW_TRACKING_URI" in caplog.text
    assert not (data / "runs" / "refused").exists()
    # so the next run of that name with other flags is a new run, not "other parameters"
    assert cli.main([*base, "--modes", "B", "--no-track"]) == 0


def test_a_run_takes_the_best_compiled_program_unless_told_none(tmp_path, real_rows_path, caplog):
    from argalign.cli.run import _mode_program
    from argalign.models.config import load_settings, model_fingerprint
    from argalign.programs.store import zero_shot_id
    from argalign.stages.run.plan import plan_run
    from test_programs import save_compiled

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      2, "p")})
    settings = write_settings(tmp_path / "settings.yaml", "http://127.0.0.1:9/v1",
                              models={"fake": {}, "other": {"model": "openai/other"}})
    task = {"name": "fake", **model_fingerprint(load_settings(str(settings)).get("fake"))}
    save_compiled("A", "feedfacecafe", gain=0.2, task_model=task)

    def program_ids(**changes):
        plan = plan_run(run_options(data, settings, modes=("A", "B"), **changes))
        return {mode: fp for mode, (_, fp) in plan.programs.items()}

    zero = {m: zero_shot_id(make_mode(m)) for m in "AB"}
    with caplog.at_level(logging.INFO, logger="argalign.stages.run.plan"):
        assert program_ids(models=("fake",)) == {"A": "feedfacecafe", "B": zero["B"]}
    assert "Mode A: taking the compiled program" in caplog.text
    assert "A-bootstrap-feedfacecafe.json" in caplog.text
    assert program_ids(models=("fake",), programs=dict([_mode_program("none")])) == zero
    assert program_ids(models=("fake",), programs=dict([_mode_program("A=none")])) == zero
    assert program_ids(models=("other",)) == zero  # compiled for another task model
    assert program_ids(models=("fake", "other")) == zero  # one program cannot fit both


# --- which modes and models a run takes when it is not told ------------------------------------

def test_a_mode_that_does_not_opt_in_leaves_the_default_run_as_it_was(tmp_path, real_rows_path,
                                                                      monkeypatch):
    """Registering a Mode C keeps the default run's modes and name (so it still resumes);
    a run joins C when it names it, and every default run once C opts in."""
    from argalign.core.policies import USER_CHANGE, UserChange
    from argalign.modes import MODES, ModeA
    from argalign.stages.run import plan as run_plan
    from argalign.stages.run.plan import plan_run

    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      2, "d")})
    settings = write_settings(tmp_path / "settings.yaml", "http://127.0.0.1:9/v1")
    before = plan_run(run_options(data, settings))

    class ModeC(ModeA):
        mode = "C"

    monkeypatch.setitem(MODES, "C", ModeC)
    monkeypatch.setitem(USER_CHANGE, "C", UserChange.APPEND)
    after = plan_run(run_options(data, settings))
    assert (after.store.name, after.params["modes"]) == (before.store.name, ["A", "B"])
    assert after.params == before.params
    assert plan_run(run_options(data, settings, modes=("C",))).params["modes"] == ["C"]

    monkeypatch.setattr(run_plan, "DEFAULT_MODES", ("A", "B", "C"))  # the opt-in
    joined = plan_run(run_options(data, settings))
    assert joined.params["modes"] == ["A", "B", "C"] and joined.store.name != before.store.name


def _without_default_judge(path):
    settings = json.loads(path.read_text())
    del settings["default_judge"]
    path.write_text(json.dumps(settings))
    return path


def test_a_rule_based_comparison_starts_no_judge_and_needs_none(tmp_path, real_rows_path,
                                                                fake_server, monkeypatch):
    """``structural`` and ``lexical`` score every example without a judge model: none is named
    in the settings, a named one is never built (its key is not even read), and the manifest
    records none."""
    from argalign.core.errors import ConfigError
    from argalign.testing.argalign_responder import ArgalignResponder
    from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer

    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("JUDGE_KEY", raising=False)
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      2, "j")})
    with FakeOpenAIServer(FakeConfig(output_words=12),
                          responder=ArgalignResponder()) as judge_server:
        settings = _without_default_judge(write_settings(
            tmp_path / "settings.yaml", fake_server.url,
            models={"fake": {}, "judge": {"model": "openai/judge", "api_base": judge_server.url,
                                          "api_key_env": "JUDGE_KEY"}}))
        summary = run_batch(run_options(data, settings, modes=("A",), comparison="structural",
                                        run_name="rules"))
        assert summary.done == 2
        assert all(r["scores"]["baseline"] for r in results(data / "runs" / "rules")
                   if r["outcome"] in ("aligned", "not_improved"))
        manifest = json.loads((data / "runs" / "rules" / "manifest.json").read_text())
        assert manifest["params"]["scoring"] == {"enabled": True, "comparison": "structural"}

        run_batch(run_options(data, settings, modes=("A",), comparison="lexical", judge="judge",
                              run_name="named-judge"))
        assert judge_server.stats.total == 0

        calls = fake_server.stats.total
        with pytest.raises(ConfigError, match="set `default_judge`"):
            run_batch(run_options(data, settings, modes=("A",), run_name="asks-a-judge"))
        assert fake_server.stats.total == calls  # refused before any LM call
        monkeypatch.setenv("JUDGE_KEY", "sk-judge")
        run_batch(run_options(data, settings, modes=("A",), judge="judge", run_name="judged"))
        assert judge_server.stats.total > 0


def test_a_rule_based_run_recorded_with_its_unused_judge_still_resumes(tmp_path, real_rows_path,
                                                                       fake_server):
    """Runs made before the judge was left out recorded it for ``structural`` too."""
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path),
                                                                      2, "r")})
    settings = write_settings(tmp_path / "settings.yaml", fake_server.url)
    options = run_options(data, settings, modes=("A",), comparison="structural", run_name="old")
    run_batch(options)
    path = data / "runs" / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["params"]["scoring"].update(judge="fake", judge_model={"model": "openai/fake"})
    path.write_text(json.dumps(manifest))
    assert run_batch(options).done == 2  # no "other parameters"
    assert "judge" not in json.loads(path.read_text())["params"]["scoring"]
