"""A comparison, a server kind, an export format and an optimizer are each one new module and
one registry line.

Each test writes the new implementation as a module of its own (into ``tmp_path``, imported
from ``sys.path``) that imports only the extension point's base module, registers it with one
line (monkeypatched into the registry, as the import and the entry would be written), and runs
it through the public path: the CLI's choices, the settings, the stage.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from argalign import cli
from argalign.cli import EXIT_OK, main
from argalign.models import local_llm
from argalign.models.config import Settings
from argalign.models.lm import open_models
from argalign.programs import optimizers
from argalign.scoring import metrics
from argalign.stages import export
from argalign.stages.optimize import OptimizeSpec, run_optimize
from argalign.stages.prepare import CONFIGS
from argalign.testing.argalign_responder import ArgalignResponder, default_responder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer
from support import read_rows, write_settings

NewModule = Callable[[str, str], ModuleType]


@pytest.fixture
def new_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NewModule]:
    """Writes ``source`` as module ``name`` in ``tmp_path`` and imports it (gone afterwards)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def write(name: str, source: str) -> ModuleType:
        (folder / f"{name}.py").write_text(textwrap.dedent(source), "utf-8")
        names.append(name)
        return importlib.import_module(name)

    yield write
    for name in names:
        sys.modules.pop(name, None)


def imports_of(module: ModuleType) -> set[str]:
    """The argalign modules a plug-in module names in its ``from ... import`` lines."""
    lines = Path(module.__file__).read_text("utf-8").splitlines()
    return {line.split()[1] for line in lines if line.startswith("from argalign")}


# --- a comparison -------------------------------------------------------------------------------

COMPARISON = '''
    """A comparison that reads the request's length only (no LM)."""

    from argalign.scoring.comparison import Comparison, Parts


    class RequestLength(Comparison):
        name = "request-length"

        def parts(self, view):
            forward = min(len(view.request.split()) / 1000, 1.0)
            return Parts(forward, 1.0, None, f"the request has {len(view.request.split())} words")
'''


def test_a_new_comparison_is_one_module_and_one_registry_line(new_module, monkeypatch, tmp_path,
                                                               real_rows_path, capsys):
    module = new_module("comparison_request_length", COMPARISON)
    assert imports_of(module) == {"argalign.scoring.comparison"}
    monkeypatch.setitem(metrics.COMPARISONS, "request-length", module.RequestLength)

    row = read_rows(real_rows_path)[0]
    score = metrics.MutualPredictability("request-length").score(row)
    assert score.backward == 1.0 and score.coherence is None
    assert 0.0 < score.forward < 1.0 and score.score == pytest.approx((score.forward + 1.0) / 2)
    assert "the request has" in score.feedback

    # The CLI's choices read the registry; a comparison that asks no LM opens no judge.
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps(row) + "\n", "utf-8")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"default_model": "m", "models": {"m": {"model": "openai/m"}}}))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--in", str(source), "--out", str(out), "--comparison",
                 "request-length", "--settings", str(settings), "--no-track"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["judge"] is None
    (line,) = [json.loads(text) for text in out.read_text("utf-8").splitlines()]
    assert line["score"] == pytest.approx(score.score, abs=1e-4)


# --- a kind of local server ---------------------------------------------------------------------

SERVER = '''
    """A "server" that lends an endpoint someone else runs and logs what is asked of it."""

    from argalign.models.server import ModelServer


    class Lent(ModelServer):
        url = ""
        events = []

        def start(self):
            self.events.append(f"start {self.alias} n_ctx={self.cfg.n_ctx}")
            return self

        def stop(self):
            self.events.append("stop")

        @property
        def base_url(self):
            return self.url.removesuffix("/v1")
'''


def test_a_new_server_kind_is_one_module_and_one_registry_line(new_module, monkeypatch,
                                                               fake_server):
    module = new_module("server_lent", SERVER)
    assert imports_of(module) == {"argalign.models.server"}
    monkeypatch.setattr(module.Lent, "url", fake_server.url)
    monkeypatch.setitem(local_llm.SERVERS, "lent", module.Lent)

    settings = Settings.model_validate({
        "default_model": "m",
        "models": {"m": {"model": "openai/fake", "cache": False,
                         "local": {"server": "lent", "n_ctx": 2048}}}})
    with open_models(settings, ["m"]) as handles:
        assert module.Lent.events == ["start fake n_ctx=2048"]
        assert handles["m"].lm("Say something.")
    assert module.Lent.events == ["start fake n_ctx=2048", "stop"]
    assert fake_server.stats.total == 1
    with pytest.raises(ValueError, match="the lent server serves no GGUF file: drop `gguf`"):
        local_llm.LocalServerConfig(server="lent", gguf="smollm2-135m")


# --- an export format ---------------------------------------------------------------------------

EXPORT_FORMAT = '''
    """Alpaca rows for LLaMA-Factory: the first request and the final answer of a conversation."""

    from argalign.core.errors import RowError
    from argalign.core.schema import parse_conversation
    from argalign.stages.export_format import Format, dataset_info_writer


    def to_alpaca(row, row_id, *, thinking=True):
        messages = parse_conversation(row, row_id).messages
        request = next((m.content for m in messages if m.role == "user"), None)
        answer = next((m.content for m in reversed(messages)
                       if m.role == "assistant" and m.content), None)
        if not request or not answer:
            raise RowError(row_id, "NO_ANSWER", "no request or no final answer")
        return {"instruction": request, "output": answer}


    ALPACA = Format(to_alpaca, lambda row: [row["instruction"], row["output"]],
                    dataset_info_writer({"formatting": "alpaca",
                                         "columns": {"prompt": "instruction", "response": "output"}}))
'''


def test_a_new_export_format_is_one_module_and_one_registry_line(new_module, monkeypatch,
                                                                 tmp_path, real_rows_path, capsys):
    module = new_module("export_alpaca", EXPORT_FORMAT)
    assert imports_of(module) == {"argalign.core.errors", "argalign.core.schema",
                                  "argalign.stages.export_format"}
    monkeypatch.setitem(export.CONVERTERS, "alpaca", module.ALPACA)

    out = tmp_path / "out"
    assert main(["export", "--in", str(real_rows_path), "--out-dir", str(out),
                 "--format", "alpaca"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    originals = read_rows(real_rows_path)
    assert summary["format"] == "alpaca" and summary["rows"] == len(originals)
    assert summary["tokens"]["rows"] == len(originals)
    exported = read_rows(out / real_rows_path.name)
    assert [set(row) for row in exported] == [{"instruction", "output"}] * len(originals)
    assert exported[0]["instruction"] == originals[0]["messages"][1]["content"]
    info = json.loads((out / "dataset_info.json").read_text("utf-8"))
    assert info == {f"argalign-{real_rows_path.stem}": {
        "file_name": real_rows_path.name, "formatting": "alpaca",
        "columns": {"prompt": "instruction", "response": "output"}}}


# --- an optimizer -------------------------------------------------------------------------------

OPTIMIZER = '''
    """One candidate: every instruction of the starting program with a sentence appended."""

    from argalign.programs.optimizer import Optimizer

    SENTENCE = "Name every analysis the plan carries out."


    class Appended(Optimizer):
        def search(self, student, trainset, valset):
            candidate = self.starting_program(student).deepcopy()
            for _, predictor in candidate.named_predictors():
                predictor.signature = predictor.signature.with_instructions(
                    predictor.signature.instructions + " " + SENTENCE)
            self.notes["appended"] = SENTENCE
            self.score_on_valset(candidate, valset)
'''


def test_a_new_optimizer_is_one_module_and_one_registry_line(new_module, monkeypatch, tmp_path):
    module = new_module("optimizer_appended", OPTIMIZER)
    assert imports_of(module) == {"argalign.programs.optimizer"}
    monkeypatch.setitem(optimizers.OPTIMIZERS, "appended", module.Appended)
    args = cli.build_parser().parse_args(["optimize", "--mode", "B", "--optimizer", "appended"])
    assert args.optimizer == "appended"

    spec = OptimizeSpec(mode="B", optimizer="appended", train=2, val=2, seed=0,
                        comparison="lexical", configs=[CONFIGS[0]], candidates=1, gold=False,
                        recompile=True)
    sent: list[str] = []

    def responder(fields, messages):
        sent.append("\n".join(str(m.get("content")) for m in messages))
        return default_responder(fields, messages, words=15)

    with FakeOpenAIServer(FakeConfig(output_words=15),
                          responder=ArgalignResponder(responder)) as server:
        settings = write_settings(tmp_path / "settings.json", server.url)
        result = run_optimize(spec, str(settings))
    compiled = result.meta["compile"]
    assert compiled["appended"] == module.SENTENCE
    assert len(compiled["candidates"]) == 1  # its candidate, scored on the valset
    assert any(module.SENTENCE in prompt for prompt in sent)  # the candidate asked the LM
    assert result.meta["determined_by"]["optimizer"] == "appended"
    assert result.partial is False and result.compile_calls > 0
