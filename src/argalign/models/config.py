"""Run settings: which language models exist and how to reach them, validated once from YAML.

A YAML file has ``models`` (a mapping from a short name to a :class:`ModelConfig`),
``default_model`` and, when a comparison asks a judge model, ``default_judge``. Secrets never
appear in it: a remote model names the environment variable that holds its key
(``api_key_env``), read only when a client is built. A server the user starts (vLLM, Ollama,
llama-server) is a model with ``api_base``; argalign starts nothing for it.
The packaged default is ``argalign/configs/default.yaml``; ``argalign settings > my.yaml``
prints it, to start your own file from. A model served locally nests a
:class:`argalign.models.local_llm.LocalServerConfig` (``local:``), defined beside the servers it names.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from argalign.core.errors import ConfigError
from argalign.models.local_llm import LocalServerConfig

# Env names the original pipeline used; API_ENDPOINT_KEY is the usual ``api_key_env``.
BASE_URL_ENV = "OPENAI_BASE_URL"
LOCAL_PROVIDER_PREFIX = "openai/"
# A model's short name is part of file names, run names and the dataset card.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ModelConfig(BaseModel):
    """One language model as DSPy/LiteLLM reaches it, local or remote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="filled in from the key under `models`")
    model: str = Field(description='DSPy/LiteLLM model string, e.g. "openai/smollm2-135m"')
    api_base: str | None = None
    api_key_env: str | None = Field(None, description="NAME of the env var holding the key")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, gt=0)
    concurrency: int = Field(4, ge=1, description="max requests in flight")
    rpm: int | None = Field(None, gt=0, description="max requests per minute; None = no limit")
    timeout_s: float = Field(120.0, gt=0)
    num_retries: int = Field(3, ge=0)
    # Off by default: DSPy's cache would return the same text when a sample is retried, so a
    # "retry with sampling" would silently be no retry at all.
    cache: bool = False
    structured_output: Literal["none", "json_schema"] = "none"
    local: LocalServerConfig | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if name and not MODEL_NAME.fullmatch(name):
            raise ValueError("a model name is letters, digits and . _ : @ + - (at most 100, "
                             "starting with a letter or digit): it names files and goes into "
                             f"the dataset card; got {name!r}")
        return name

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        # The value is not quoted back: a URL may carry a password (redact.scrub hides it later).
        if url is not None and not re.fullmatch(r"https?://[^/\s?#]+(/\S*)?", url):
            raise ValueError("`api_base` must be an http:// or https:// URL with a host, such as "
                             "http://127.0.0.1:8000/v1")
        return url

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        # Not quoted back either: a key pasted here by mistake must not reach a log.
        if name is not None and not ENV_NAME.fullmatch(name):
            raise ValueError("`api_key_env` is the NAME of an environment variable (letters, "
                             "digits, _), never the key itself")
        return name

    @model_validator(mode="after")
    def _check_local(self) -> ModelConfig:
        if self.local is None:
            return self
        if not self.model.startswith(LOCAL_PROVIDER_PREFIX):
            raise ValueError(f"a local model is served OpenAI-compatible: `model` must start with "
                             f"{LOCAL_PROVIDER_PREFIX!r}, got {self.model!r}")
        if self.api_base is not None or self.api_key_env is not None:
            raise ValueError("a local model gets its address from the server it starts: "
                             "drop `api_base` and `api_key_env`")
        return self

    @property
    def alias(self) -> str:
        """The model id the server is asked for: the model string without its provider prefix."""
        return self.model.split("/", 1)[-1]


def model_fingerprint(cfg: ModelConfig) -> dict[str, Any]:
    """What of a model shapes its output; endpoints, keys and throughput are left out, so
    moving to another server or changing ``concurrency`` keeps the same fingerprint."""
    return {"model": cfg.model, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens,
            "structured_output": cfg.structured_output,
            "local": cfg.local.gguf if cfg.local is not None else None}


class Settings(BaseModel):
    """Every model a run may use and which ones are the defaults.

    ``default_judge`` may be left out: only a comparison that asks an LM (``uses_lm``) needs a
    judge, and :meth:`judge` says so when there is none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelConfig] = Field(min_length=1)
    default_model: str
    default_judge: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_models(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            return data
        models = {}
        for key, cfg in data["models"].items():
            if isinstance(cfg, ModelConfig):
                cfg = cfg.model_dump()
            if isinstance(cfg, dict):
                if cfg.get("name") not in (None, "", key):
                    raise ValueError(f"models.{key}: `name` is {cfg['name']!r}, it must equal the key")
                cfg = {**cfg, "name": key}
            models[key] = cfg
        return {**data, "models": models}

    @model_validator(mode="after")
    def _check_defaults(self) -> Settings:
        for role in ("default_model", "default_judge"):
            name = getattr(self, role)
            if name is not None and name not in self.models:
                raise ValueError(f"{role} {name!r} is not one of the models: {sorted(self.models)}")
        return self

    def get(self, name: str | None = None) -> ModelConfig:
        """The named model, or the default model; a ConfigError lists the known names."""
        name = name or self.default_model
        if name not in self.models:
            raise ConfigError(f"unknown model {name!r}; configured: {', '.join(sorted(self.models))}")
        return self.models[name]

    def judge(self, name: str | None = None) -> str:
        """The named judge model, or ``default_judge``; a ConfigError when neither is set."""
        name = name or self.default_judge
        if name is None:
            raise ConfigError("the comparison asks a judge model and none is named: name one on "
                              "the command line or set `default_judge` in the settings")
        self.get(name)
        return name


def default_config_text() -> str:
    """The packaged default YAML."""
    return resources.files("argalign").joinpath("configs/default.yaml").read_text("utf-8")


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a settings YAML; None loads the packaged default."""
    where = str(path) if path is not None else "argalign/configs/default.yaml (packaged)"
    try:
        text = Path(path).read_text("utf-8") if path is not None else default_config_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {where}: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with `models`, `default_model` (and "
                          f"`default_judge`), got {type(data).__name__}")
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{where}: invalid settings:\n{_describe(e)}") from e


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        # A key with a line break in it is quoted, so the message stays one line per problem.
        loc = ".".join(str(part) if str(part).isprintable() else repr(part)
                       for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        elif item["type"] == "missing":
            lines.append(f"  {loc}: missing required key")
        else:
            lines.append(f"  {loc}: {item['msg']}")
    return "\n".join(lines)


_dotenv_loaded = False


def load_env() -> None:
    """Read the ``.env`` of the working directory (or a parent) into the environment, once;
    variables already set win. The one place that reads ``.env``: model keys, HF_TOKEN."""
    # Lazily, never at import: importing argalign must not read files or the environment.
    # From the working directory up: by default python-dotenv would search upward from *this*
    # file, i.e. from site-packages, and miss the user's project .env.
    global _dotenv_loaded
    if not _dotenv_loaded:
        from dotenv import find_dotenv, load_dotenv

        load_dotenv(find_dotenv(usecwd=True), override=False)
        _dotenv_loaded = True


def resolve_api_key(model_cfg: ModelConfig) -> str | None:
    """The API key from the env var named by ``api_key_env`` (``.env`` is read first, once).

    A local model needs no key and gets the placeholder ``"local"``; a remote model without
    ``api_key_env`` gets None and leaves it to the client's own defaults.
    """
    if model_cfg.local is not None:
        return "local"
    if model_cfg.api_key_env is None:
        return None
    load_env()
    key = os.environ.get(model_cfg.api_key_env)
    if not key:
        raise ConfigError(f"model {model_cfg.name!r} needs an API key in the environment variable "
                          f"{model_cfg.api_key_env} (or in a .env file); it is not set")
    return key


def resolve_api_base(model_cfg: ModelConfig) -> str | None:
    """``api_base`` from the config, else ``OPENAI_BASE_URL`` for a remote model, else None."""
    if model_cfg.api_base is not None or model_cfg.local is not None:
        return model_cfg.api_base
    load_env()
    return os.environ.get(BASE_URL_ENV) or None
