"""``argalign optimize`` and ``compare`` end to end, against the fake OpenAI server.

One MLflow store (a SQLite file in a module temp dir) is shared by the tests here, because
creating a store costs seconds; LM calls are counted by the fake server's request stats.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import dspy
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from argalign import cli
from argalign.core.errors import ConfigError
from argalign.models import lm
from argalign.stages.optimize import OptimizeSpec, run_optimize
from argalign.stages.prepare import CONFIGS
from argalign.testing.argalign_responder import ArgalignResponder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer
from argalign.tracking import EXPERIMENT_OPTIMIZE

SECRETS = {"API_ENDPOINT_KEY": "sk-test-SECRET-abc123", "HF_TOKEN": "hf_SECRETtoken999"}
SPEC = OptimizeSpec(mode="A", optimizer="bootstrap", train=2, val=2, seed=0,
                    comparison="lexical", configs=[CONFIGS[0]], candidates=1)
PARAMS = ("mode", "task_model", "judge_model", "optimizer", "train", "val", "seed",
          "fingerprint", "budget_calls")
COMPONENTS = ("score", "forward", "backward", "invariant_pass_rate")
METRICS = (*(f"{when}_{c}" for when in ("baseline", "compiled") for c in COMPONENTS),
           "lm_calls", "input_tokens", "output_tokens", "wall_time_s")


def write_settings(path: Path, url: str) -> Path:
    """Task and judge on the fake server, both sending the key from API_ENDPOINT_KEY."""
    model = {"api_base": url, "api_key_env": "API_ENDPOINT_KEY", "structured_output": "none",
             "cache": False, "temperature": 0.0, "max_tokens": 512, "timeout_s": 10,
             "num_retries": 0}
    settings = {"models": {"task": {"model": "openai/fake-task", **model},
                           "judge": {"model": "openai/fake-judge", **model}},
                "default_model": "task", "default_judge": "judge"}
    path.write_text(json.dumps(settings), encoding="utf-8")  # JSON is YAML
    return path


def set_environment(mp: pytest.MonkeyPatch, home: Path) -> None:
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    mp.setenv("ARGALIGN_PROGRAMS_DIR", str(home / "programs"))
    for name, value in SECRETS.items():
        mp.setenv(name, value)
    mp.chdir(home)  # MLflow puts artifacts in ./mlruns beside a SQLite store
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")  # for the assertions' client


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAIServer(responder=ArgalignResponder()) as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory, fake) -> Path:
    home = tmp_path_factory.mktemp("optimize")
    write_settings(home / "settings.yaml", fake.url)
    return home


@pytest.fixture(scope="module")
def first(home, fake) -> dict:
    """The first compile in the store, with the LM calls it made and the keys it sent."""
    keys: list[str | None] = []
    models: list[str] = []
    real_build_lm = lm.build_lm

    def spy(*args, **kwargs):
        built = real_build_lm(*args, **kwargs)
        keys.append(built.kwargs.get("api_key"))
        models.append(built.model)
        return built

    with pytest.MonkeyPatch.context() as mp:
        set_environment(mp, home)
        mp.setattr(lm, "build_lm", spy)
        before = fake.stats.total
        result = run_optimize(SPEC, str(home / "settings.yaml"))
        return {"result": result, "requests": fake.stats.total - before, "keys": keys,
                "models": models}


@pytest.fixture(autouse=True)
def environment(offline_dspy, home, monkeypatch) -> None:
    set_environment(monkeypatch, home)


def run_of(fingerprint: str):
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT_OPTIMIZE)
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"params.fingerprint = '{fingerprint}'",
                              order_by=["attributes.start_time DESC"])
    assert runs, f"no MLflow run with fingerprint {fingerprint}"
    return runs[0]


def count_runs() -> int:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT_OPTIMIZE)
    return sum("mlflow.parentRunId" not in r.data.tags  # an optimization, not its evaluations
               for r in client.search_runs([experiment.experiment_id]))


def test_an_optimize_run_is_logged_with_its_program(first, home):
    result = first["result"]
    fp = result.fingerprint
    assert (result.reused, result.partial) == (False, False)
    assert first["requests"] == result.compile_calls + result.report_calls > 0
    # The lexical comparison asks no LM: the judge model is never built, nor fingerprinted.
    assert first["models"] == ["openai/fake-task"]

    program = Path(result.program_path)
    assert program == home / "programs" / f"A-bootstrap-{fp}.json"
    assert program.is_file()
    meta = json.loads((home / "programs" / f"A-bootstrap-{fp}.meta.json").read_text())
    assert (meta["fingerprint"], meta["mode"], meta["partial"]) == (fp, "A", False)
    assert meta["determined_by"]["judge_model"] is None
    assert set(meta["baseline"]) == set(meta["compiled"]) == set(COMPONENTS)
    # The models are fingerprinted as a run's are (model_fingerprint), output format included.
    assert meta["determined_by"]["task_model"] == {
        "name": "task", "model": "openai/fake-task", "temperature": 0.0, "max_tokens": 512,
        "structured_output": "none", "local": None}

    run = run_of(fp)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert {k: params[k] for k in PARAMS} == {
        "mode": "A", "task_model": "task", "judge_model": "", "optimizer": "bootstrap",
        "train": "2", "val": "2", "seed": "0", "fingerprint": fp, "budget_calls": "None"}
    metrics = run.data.metrics
    assert set(METRICS) <= set(metrics)
    for when in ("baseline", "compiled"):
        for c in COMPONENTS:
            assert metrics[f"{when}_{c}"] == pytest.approx(meta[when][c])
    assert metrics["lm_calls"] == first["requests"]
    # Every mean with its 95% interval over the valset; the delta paired by example.
    for name in ("baseline_score", "compiled_score", "delta_score", "baseline_forward",
                 "compiled_backward"):
        assert metrics[f"{name}_low"] <= metrics[name] <= metrics[f"{name}_high"], name
    assert metrics["input_tokens"] > 0 and metrics["output_tokens"] > 0
    assert metrics["wall_time_s"] > 0
    assert run.data.tags["partial"] == "False"

    client = MlflowClient()
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"program", "valset_scores.json", "dataset_ids.json", "tables"} <= top
    # The per-example tables, and one evaluation per program (a child run, the metric as the
    # scorer, its feedback on each example's trace).
    for when in ("baseline", "compiled"):
        table = mlflow.load_table(f"tables/valset_{when}.json", run_ids=[run.info.run_id])
        assert list(table["id"]) == meta["determined_by"]["val_ids"]
        assert list(table["score"]) == pytest.approx(
            [r["score"] for r in mlflow.artifacts.load_dict(
                f"runs:/{run.info.run_id}/valset_scores.json")[when]])
    children = client.search_runs([run.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert sorted(c.info.run_name for c in children) == ["baseline on the valset",
                                                         "compiled on the valset"]
    for child in children:
        assert child.data.metrics["mutual_predictability/mean"] == pytest.approx(
            meta[child.info.run_name.split()[0]]["score"])
        evaluated = mlflow.search_traces(run_id=child.info.run_id, return_type="list")
        assert len(evaluated) == 2 and all(
            any(a.name == "mutual_predictability" for a in t.info.assessments) for t in evaluated)
    files = {a.path for a in client.list_artifacts(run.info.run_id, "program")}
    assert files == {f"program/A-bootstrap-{fp}.json", f"program/A-bootstrap-{fp}.meta.json"}
    scores = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/valset_scores.json")
    for when in ("baseline", "compiled"):
        rows = scores[when]
        assert [r["id"] for r in rows] == meta["determined_by"]["val_ids"]
        assert all(r["feedback"] and r["gate"] == "pass" for r in rows)
        assert sum(r["score"] for r in rows) / len(rows) == pytest.approx(meta[when]["score"])
    ids = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/dataset_ids.json")
    assert ids == {"train": meta["determined_by"]["train_ids"],
                   "val": meta["determined_by"]["val_ids"]}
    assert len(ids["train"]) == len(ids["val"]) == 2
    assert all("/train/" in i for i in ids["train"]) and all("/validation/" in i for i in ids["val"])
    # The same draws as the run's input datasets (mlflow.log_input), one line per example.
    inputs = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
              for i in mlflow.get_run(run.info.run_id).inputs.dataset_inputs}
    assert set(inputs) == {"training", "validation"}
    for context, split in (("training", "train"), ("validation", "val")):
        dataset = inputs[context]
        assert dataset.source_type == "local" and dataset.digest
        assert json.loads(dataset.profile)["num_rows"] == len(ids[split])

    # mlflow.dspy.autolog: the reporting evaluation leaves one trace per program call
    # (compile traces are off by default), tied to the run. The winning program's valset rows
    # are reused, so the same program is not evaluated twice. (The judge's one-token readings
    # are plain LM calls, counted in report_calls above.)
    traces = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    roots = [t.data.spans[0].name for t in traces if t.data.spans]
    assert roots.count("ModeA.forward") >= len(ids["val"])


def test_a_second_identical_call_reuses_the_program_and_recompile_compiles_again(
        first, fake, home, capsys):
    fp = first["result"].fingerprint
    runs, before = count_runs(), fake.stats.total

    again = run_optimize(SPEC, str(home / "settings.yaml"))
    assert again.reused is True
    assert (again.fingerprint, again.program_path) == (fp, first["result"].program_path)
    assert again.compiled == first["result"].compiled

    code = cli.main(["optimize", "--mode", "A", "--optimizer", "bootstrap", "--train", "2",
                     "--val", "2", "--seed", "0", "--comparison", "lexical", "--candidates", "1",
                     "--configs", CONFIGS[0], "--settings", str(home / "settings.yaml")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["reused"], printed["fingerprint"]) == (True, fp)
    assert fake.stats.total == before  # zero LM calls
    assert count_runs() == runs  # and no MLflow run

    forced = run_optimize(dataclasses.replace(SPEC, recompile=True), str(home / "settings.yaml"))
    assert (forced.reused, forced.fingerprint) == (False, fp)
    assert fake.stats.total - before == forced.compile_calls + forced.report_calls > 0
    assert count_runs() == runs + 1


@pytest.mark.parametrize("change", [{"seed": 1}, {"train": 1}])
def test_a_changed_seed_or_train_size_changes_the_fingerprint(first, home, change):
    other = run_optimize(dataclasses.replace(SPEC, **change), str(home / "settings.yaml"))
    assert other.reused is False
    assert other.fingerprint != first["result"].fingerprint
    assert Path(other.program_path).is_file()


def test_the_budget_stops_the_compile_and_saves_a_partial_program(first, fake, home):
    before = fake.stats.total
    spec = dataclasses.replace(SPEC, budget_calls=2)
    result = run_optimize(spec, str(home / "settings.yaml"))

    assert result.partial is True
    assert 0 < result.compile_calls <= 2
    # The call that would have gone over the budget never reached the server.
    assert fake.stats.total - before == result.compile_calls + result.report_calls
    program = Path(result.program_path)
    assert program.is_file()
    assert json.loads(program.with_name(program.stem + ".meta.json").read_text())["partial"] is True
    run = run_of(result.fingerprint)
    assert run.info.status == "FINISHED"
    assert run.data.tags["partial"] == "True"
    assert run.data.params["budget_calls"] == "2"
    assert run.data.metrics["compile_lm_calls"] == result.compile_calls
    # Traced although this test runs inside a dspy.context (conftest's), unlike `first`.
    traces = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert any(t.data.spans and t.data.spans[0].name == "ModeA.forward"
               for t in traces)


def test_compare_lists_runs_with_baseline_compiled_and_delta(first, capsys):
    assert cli.main(["compare"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert {"run", "mode", "models", "optimizer", "baseline", "compiled", "delta",
            "lm_calls"} <= set(header)
    fp = first["result"].fingerprint
    assert any(f"A-bootstrap-{fp}" in line for line in lines[2:])

    assert cli.main(["compare", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["run"] == f"A-bootstrap-{fp}")
    result = first["result"]
    assert (row["mode"], row["models"], row["judge"], row["optimizer"]) == (
        "A", "task", None, "bootstrap")  # lexical: no judge
    assert row["baseline"] == pytest.approx(result.baseline["score"])
    assert row["compiled"] == pytest.approx(result.compiled["score"])
    assert row["delta"] == pytest.approx(row["compiled"] - row["baseline"])
    for column in ("baseline", "compiled", "delta"):
        assert row[f"{column}_low"] <= row[column] <= row[f"{column}_high"]
    assert row["lm_calls"] == first["requests"] and row["self_judged"] is False

    assert cli.main(["compare", "--experiment", "no-such-experiment"]) == 0
    assert capsys.readouterr().out.strip() == "(no runs)"


def test_compare_shows_intervals_and_warns_when_the_judge_is_the_task_model(first, capsys, caplog):
    from argalign import tracking

    params = {"mode": "B", "optimizer": "bootstrap", "task_model": "qwen", "judge_model": "qwen"}
    with tracking.start_run(EXPERIMENT_OPTIMIZE, "self-judged", params):
        tracking.log_metrics({"baseline_score": 0.2, "baseline_score_low": 0.1,
                              "baseline_score_high": 0.3, "compiled_score": 0.4,
                              "delta_score": 0.2, "delta_score_low": -0.05, "delta_score_high": 0.45})
    with caplog.at_level("WARNING"):
        assert cli.main(["compare"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("self-judged"))
    assert "0.200 [0.100, 0.300]" in line and "+0.200 [-0.050, +0.450]" in line
    assert "0.400 " in line  # no interval logged: the mean alone
    assert any("same model as task model and judge (self-judged)" in r.getMessage()
               for r in caplog.records)
    assert cli.main(["compare", "--json"]) == 0
    rows = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["self-judged"]["self_judged"] is True and rows["self-judged"]["compiled_low"] is None


def test_no_secret_from_the_environment_reaches_the_store(first, home):
    # The key was really sent: every model the run built carried it.
    assert first["keys"] and set(first["keys"]) == {SECRETS["API_ENDPOINT_KEY"]}
    mlflow.flush_trace_async_logging()
    files = [p for p in home.rglob("*") if p.is_file() and p.name != "settings.yaml"]
    assert any(p.name.startswith("mlflow.db") for p in files)
    assert any("mlruns" in p.parts for p in files) and any("programs" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS.values():
            assert secret.encode() not in data, f"{secret} found in {path}"


def test_a_bad_mode_or_optimizer_is_a_config_error_before_any_call(fake, home):
    before = fake.stats.total
    for change in ({"mode": "C"}, {"optimizer": "sgd"}):
        with pytest.raises(ConfigError):
            run_optimize(dataclasses.replace(SPEC, **change), str(home / "settings.yaml"))
    assert fake.stats.total == before


def test_only_a_comparison_that_asks_an_lm_needs_a_judge(fake, home):
    """Without ``default_judge`` a rule-based compile opens the task model alone; a judged one,
    or a reflecting optimizer, is refused before any call until a model is named."""
    from argalign.stages.optimize import _load

    settings = json.loads((home / "settings.yaml").read_text())
    del settings["default_judge"]
    path = home / "no-judge.yaml"
    path.write_text(json.dumps(settings))
    assert _load(SPEC, str(path)).model_names == ["task"]
    judged = dataclasses.replace(SPEC, comparison="hybrid")
    assert _load(dataclasses.replace(judged, judge="judge"), str(path)).model_names == ["task",
                                                                                         "judge"]
    before = fake.stats.total
    with pytest.raises(ConfigError, match="set `default_judge`"):
        run_optimize(judged, str(path))
    with pytest.raises(ConfigError, match="--reflection-model"):
        run_optimize(dataclasses.replace(SPEC, optimizer="gepa"), str(path))
    assert fake.stats.total == before


def test_mipro_without_optuna_is_a_config_error_before_any_call(fake, home, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else real_find_spec(name, *a))
    before = fake.stats.total
    with pytest.raises(ConfigError, match="optuna"):
        run_optimize(dataclasses.replace(SPEC, optimizer="mipro"), str(home / "settings.yaml"))
    assert fake.stats.total == before


@pytest.mark.slow
def test_mipro_smoke_within_a_tiny_budget(home):
    pytest.importorskip("optuna")
    with FakeOpenAIServer(responder=ArgalignResponder()) as server:
        write_settings(home / "mipro.yaml", server.url)
        spec = dataclasses.replace(SPEC, optimizer="mipro", budget_calls=40)
        result = run_optimize(spec, str(home / "mipro.yaml"))
        assert result.compile_calls <= 40
        assert server.stats.total == result.compile_calls + result.report_calls
    assert Path(result.program_path).is_file()


def test_gepa_mode_b_smoke_within_a_tiny_budget(home):
    # Short fields, so that Mode B's one-sentence clarification (<= 200 characters) passes.
    with FakeOpenAIServer(FakeConfig(output_words=15), responder=ArgalignResponder()) as server:
        write_settings(home / "gepa.yaml", server.url)
        spec = dataclasses.replace(SPEC, mode="B", optimizer="gepa", budget_calls=30)
        result = run_optimize(spec, str(home / "gepa.yaml"))
        assert server.stats.total == result.compile_calls + result.report_calls
    assert result.compile_calls <= 30
    assert result.baseline["invariant_pass_rate"] == 1.0
    assert Path(result.program_path).name == f"B-gepa-{result.fingerprint}.json"
    run = run_of(result.fingerprint)
    assert run.data.params["reflection_model"] == "judge"
    assert run.data.tags["partial"] == str(result.partial)


def test_the_budget_stop_gets_through_dspys_callback_runner():
    """DSPy's callback runner swallows an Exception from a callback; the budget's stop is a
    BaseException, so it reaches the optimizer through Predict, the adapter and the LM."""
    from dspy.utils import DummyLM
    from dspy.utils.callback import BaseCallback

    from argalign.stages.optimize import BudgetExhausted, CallBudget, budgeted

    class Failing(BaseCallback):
        def on_lm_start(self, call_id, instance, inputs):
            raise RuntimeError("an ordinary callback error")

    predict = dspy.Predict("question -> answer")
    swallowed = DummyLM([{"answer": "yes"}] * 3)
    swallowed.callbacks = [Failing()]
    with dspy.context(lm=swallowed):
        assert predict(question="q").answer == "yes"  # the ordinary error did not stop the call

    budget = CallBudget(2)
    lm = budgeted(DummyLM([{"answer": "yes"}] * 5), budget)
    with dspy.context(lm=lm):
        predict(question="a")
        predict(question="b")
        with pytest.raises(BudgetExhausted):
            predict(question="c")
    assert (budget.used, budget.exhausted, len(lm.history)) == (2, True, 2)


def test_the_budget_counts_the_tokens_of_the_call_that_ended_not_the_latest_entry():
    from types import SimpleNamespace

    from argalign.stages.optimize import CallBudget

    lm, budget = SimpleNamespace(history=[]), CallBudget(None)
    budget.on_lm_start("mine", lm, {})
    outputs = ["{}"]
    lm.history.append({"outputs": outputs, "usage": {"prompt_tokens": 11,
                                                     "completion_tokens": 7}})
    # Another thread's call on the same LM, recorded before this call's end callback.
    lm.history.append({"outputs": ["{}"], "usage": {"prompt_tokens": 900,
                                                    "completion_tokens": 900}})
    budget.on_lm_end("mine", outputs)
    budget.on_lm_start("failed", lm, {})
    budget.on_lm_end("failed", None, RuntimeError("boom"))
    assert (budget.used, budget.input_tokens, budget.output_tokens) == (2, 11, 7)
