"""Settings YAML: validation errors that name the key and the file; secrets only from the env."""

from __future__ import annotations

from pathlib import Path

import pytest

from argalign.core.errors import ConfigError
from argalign.models import config
from argalign.models.config import (
    ModelConfig,
    Settings,
    default_config_text,
    load_settings,
    resolve_api_base,
    resolve_api_key,
)

SECRET = "sk-test-0123456789-do-not-leak"

MINIMAL = """\
default_model: tiny
default_judge: tiny
models:
  tiny:
    model: openai/tiny
    local: {gguf: smollm2-135m}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def fresh_env(monkeypatch, tmp_path):
    """No key, no base URL and no .env: each test states the environment it needs."""
    for name in ("API_ENDPOINT_KEY", "OPENAI_BASE_URL"):
        monkeypatch.setenv(name, "unset")  # recorded, so the delete below is undone afterwards
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "_dotenv_loaded", False)


def test_packaged_default_loads_with_both_local_models():
    settings = load_settings()
    assert settings.default_model == settings.default_judge == "qwen2.5-coder-1.5b"
    for name in ("smollm2-135m", "qwen2.5-coder-1.5b"):
        cfg = settings.get(name)
        assert cfg.name == name
        assert cfg.local is not None and cfg.local.gguf == name
        assert cfg.structured_output == "json_schema"
        assert cfg.cache is False
    assert settings.get().name == settings.default_model


def test_the_settings_command_prints_the_packaged_default(capsys, tmp_path):
    from argalign.cli import main

    assert main(["settings"]) == 0
    printed = capsys.readouterr().out
    assert printed == default_config_text()
    (tmp_path / "mine.yaml").write_text(printed)
    assert load_settings(tmp_path / "mine.yaml") == load_settings()


@pytest.mark.parametrize(("local", "named"), [
    ("{gguf: no-such-model}", "unknown bundled model 'no-such-model'; known: smollm2-135m"),
    ("{gguf: smollm2-135m, server: vllm-local}", "unknown local server 'vllm-local'; known: llama.cpp"),
    ("{n_ctx: 4096}", "models.m.local: Value error, the llama.cpp server serves a GGUF file: set `gguf`"),
    ("{gguf: /no/such/dir/model.gguf}", "models.m.local.gguf: Value error, no GGUF file at /no/such"),
])
def test_a_local_model_names_a_registered_bundle_and_server(tmp_path, local, named):
    path = tmp_path / "s.yaml"
    path.write_text(f"default_model: m\ndefault_judge: m\nmodels:\n  m:\n"
                    f"    model: openai/m\n    local: {local}\n")
    with pytest.raises(ConfigError, match=named):
        load_settings(path)


def test_minimal_file_gets_defaults(tmp_path):
    cfg = load_settings(write(tmp_path, MINIMAL)).get("tiny")
    assert (cfg.concurrency, cfg.rpm, cfg.cache, cfg.structured_output) == (4, None, False, "none")
    assert cfg.alias == "tiny"
    assert cfg.local.port == 0


def test_a_local_gguf_file_is_served_from_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "default_model: m\nmodels:\n  m:\n    model: openai/m\n"
                           "    local: {gguf: models/mine.gguf}\n")
    cfg = load_settings(path).get("m")
    assert cfg.local.gguf == str(tmp_path.resolve() / "models" / "mine.gguf")
    assert config.model_fingerprint(cfg)["local"] == cfg.local.gguf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "colour: blue\n", "colour: unknown key"),
        (MINIMAL + "    temprature: 0.5\n", "models.tiny.temprature: unknown key"),
        (MINIMAL + "    local: {gguf: smollm2-135m, n_gpu: 1}\n", "models.tiny.local.n_gpu: unknown key"),
        (MINIMAL.replace("    model: openai/tiny\n", ""), "models.tiny.model: missing required key"),
        (MINIMAL.replace("default_judge: tiny", "default_judge: big"), "default_judge 'big' is not"),
        (MINIMAL + "    concurrency: 0\n", "models.tiny.concurrency: Input should be greater"),
        (MINIMAL.replace("smollm2-135m", "llama-70b"), "models.tiny.local.gguf"),
        (MINIMAL.replace("openai/tiny", "ollama/tiny"), "must start with 'openai/'"),
        (MINIMAL + "    api_base: http://x/v1\n", "drop `api_base`"),
        (MINIMAL + "    name: other\n", "must equal the key"),
        (MINIMAL.replace("  tiny:", '  "evil\\n# heading":'), "models.'evil\\n# heading'.name: "),
        (MINIMAL.replace("  tiny:", '  "a|b":'), "a model name is letters, digits and . _ : @ + -"),
        (MINIMAL.replace("  tiny:", '  "[x](javascript:alert(1))":'), "a model name is"),
        (MINIMAL.replace("  tiny:", '  "<script>":'), "a model name is"),
        (MINIMAL.replace("  tiny:", '  "a/b":'), "a model name is"),
        ("- just\n- a list\n", "expected a mapping"),
        ("models: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_file_names_the_key_and_the_file(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_the_default_judge_may_be_left_out_until_a_judge_is_asked_for(tmp_path):
    settings = load_settings(write(tmp_path, MINIMAL.replace("default_judge: tiny\n", "")))
    assert settings.default_judge is None
    assert settings.judge("tiny") == "tiny"
    with pytest.raises(ConfigError, match="set `default_judge`"):
        settings.judge()
    with pytest.raises(ConfigError, match="unknown model 'big'"):
        settings.judge("big")
    assert load_settings(write(tmp_path, MINIMAL)).judge() == "tiny"


ENDPOINT = """\
default_model: ollama
models:
  ollama:
    model: openai/qwen2.5:1.5b
    api_base: http://127.0.0.1:11434/v1
"""


@pytest.mark.parametrize(("line", "expected"), [
    ("    api_base: 127.0.0.1:11434/v1\n", "models.ollama.api_base: Value error, `api_base` must be an http"),
    ("    api_base: ftp://host/v1\n", "models.ollama.api_base: Value error, `api_base` must be an http"),
    ("    api_base: http:///v1\n", "models.ollama.api_base: Value error, `api_base` must be an http"),
    (f"    api_key_env: {SECRET}\n", "models.ollama.api_key_env: Value error, `api_key_env` is the NAME"),
])
def test_a_bad_endpoint_setting_names_the_model_and_the_field(tmp_path, line, expected):
    text = ENDPOINT.replace("    api_base: http://127.0.0.1:11434/v1\n", "") \
        if "api_base" in line else ENDPOINT
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text + line))
    assert expected in str(info.value)
    assert SECRET not in str(info.value)  # a key pasted as a name is not quoted back


def test_an_endpoint_the_user_starts_is_just_settings(tmp_path):
    cfg = load_settings(write(tmp_path, ENDPOINT)).get("ollama")
    assert (cfg.api_base, cfg.local, cfg.alias) == ("http://127.0.0.1:11434/v1", None,
                                                      "qwen2.5:1.5b")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "nope.yaml")


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match="smollm2-135m"):
        load_settings().get("gpt-9")


def remote(**overrides) -> ModelConfig:
    fields = {"name": "remote", "model": "openai/some-model", "api_key_env": "API_ENDPOINT_KEY"}
    return ModelConfig(**{**fields, **overrides})


def test_api_key_comes_from_the_named_env_var_and_never_shows(monkeypatch, fresh_env):
    monkeypatch.setenv("API_ENDPOINT_KEY", SECRET)
    settings = Settings(models={"remote": remote()}, default_model="remote",
                        default_judge="remote")
    assert resolve_api_key(settings.get("remote")) == SECRET
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(remote())):
        assert SECRET not in text
    assert "API_ENDPOINT_KEY" in settings.model_dump_json()


def test_api_key_from_dotenv_in_the_working_directory(tmp_path, fresh_env):
    (tmp_path / ".env").write_text(f"API_ENDPOINT_KEY={SECRET}\nOPENAI_BASE_URL=http://gw/v1\n")
    cfg = remote()
    assert resolve_api_key(cfg) == SECRET
    assert resolve_api_base(cfg) == "http://gw/v1"


def test_missing_key_names_the_variable(fresh_env):
    with pytest.raises(ConfigError, match="API_ENDPOINT_KEY"):
        resolve_api_key(remote())


def test_api_base_prefers_the_config_over_openai_base_url(monkeypatch, fresh_env):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env/v1")
    assert resolve_api_base(remote()) == "http://from-env/v1"
    assert resolve_api_base(remote(api_base="http://from-yaml/v1")) == "http://from-yaml/v1"
    assert resolve_api_base(remote(api_key_env=None)) == "http://from-env/v1"


def test_local_model_needs_no_key_and_ignores_openai_base_url(monkeypatch, fresh_env):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env/v1")
    cfg = load_settings().get("smollm2-135m")
    assert resolve_api_key(cfg) == "local"
    assert resolve_api_base(cfg) is None


def test_the_model_fingerprint_keeps_what_shapes_output_and_leaves_out_where_it_runs():
    base = config.ModelConfig(model="openai/m", api_base="http://a:1/v1", concurrency=2)
    moved = config.ModelConfig(model="openai/m", api_base="http://b:2/v1", concurrency=9, rpm=5,
                               timeout_s=3, num_retries=0, api_key_env="K")
    assert config.model_fingerprint(base) == config.model_fingerprint(moved)
    for change in ({"temperature": 0.0}, {"max_tokens": 9}, {"structured_output": "json_schema"},
                   {"model": "openai/other"}):
        other = config.ModelConfig(**{"model": "openai/m", **change})
        assert config.model_fingerprint(other) != config.model_fingerprint(base), change
