"""DSPy language models from a :class:`~argalign.models.config.ModelConfig`, local or remote.

Every model is reached through the OpenAI-compatible route ``openai/<id>`` (DSPy 3.4 sends it
with its native lm15 engine, or LiteLLM when ``OPENAI_BASE_URL`` is set): a bundled model at a
:class:`~argalign.models.server.ModelServer` this module starts, a remote one (vLLM, OpenAI, ...) at
its ``api_base``. :func:`open_models` is the one entry point a run needs: it
starts the local servers, yields ``{name: (lm, adapter)}`` and stops them at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple

import dspy
import pydantic

from argalign.core.errors import ConfigError
from argalign.models import dspy_patches
from argalign.models.config import ModelConfig, Settings, resolve_api_base, resolve_api_key
from argalign.models.local_llm import SERVERS
from argalign.models.server import ModelServer

NO_KEY = "no-key"


def output_json_schema(signature: type[dspy.Signature]) -> dict[str, Any]:
    """The JSON schema of a signature's output fields: an object with each field, all required."""
    fields: dict[str, Any] = {
        name: (field.annotation, ...) for name, field in signature.output_fields.items()
    }
    model = pydantic.create_model(
        "Outputs", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    return model.model_json_schema()


def response_format_for(signature: type[dspy.Signature]) -> dict[str, Any]:
    """An OpenAI-style ``response_format`` that constrains the reply to the signature's outputs."""
    try:
        schema = output_json_schema(signature)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticInvalidForJsonSchema):
        return {"type": "json_object"}  # still JSON, only not field by field
    return {"type": "json_schema", "json_schema": {"name": "outputs", "schema": schema}}


class SchemaJSONAdapter(dspy.JSONAdapter):
    """A JSONAdapter that always sends the signature's output JSON schema as ``response_format``.

    DSPy's JSONAdapter sends a schema only to models its metadata catalog says support one, and
    a local ``openai/<alias>`` model is in no catalog, so nothing is sent and a small model (SmolLM2)
    answers with prose around its JSON. llama.cpp turns ``response_format: json_schema`` into a
    grammar (LLGuidance), so every reply is a JSON object with exactly the output fields, in
    order. vLLM honours the same field. A ``response_format`` passed explicitly to a predictor
    is left alone.
    """

    # Overrides JSONAdapter's private hook (dspy 3.4, pinned <3.5). tests/test_local_llm.py pins
    # both the wire (the schema is sent) and the DSPy behaviour replaced (JSONAdapter sends none).
    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any],
                                 signature: type[dspy.Signature]) -> None:
        lm_kwargs.setdefault("response_format", response_format_for(signature))


def adapter_for(model_cfg: ModelConfig) -> dspy.Adapter:
    """SchemaJSONAdapter when the model says ``structured_output: json_schema``, else JSONAdapter."""
    if model_cfg.structured_output == "json_schema":
        return SchemaJSONAdapter()
    return dspy.JSONAdapter()


def build_lm(model_cfg: ModelConfig, api_base_override: str | None = None) -> dspy.LM:
    """A ``dspy.LM`` for the model; a local model needs the ``api_base`` of its running server."""
    if model_cfg.local is not None and api_base_override is None:
        raise ConfigError(f"model {model_cfg.name!r} is local: start it with open_models() "
                          f"(or a LocalServer) and pass its api_base")
    dspy_patches.install()  # DSPy's per-call catalog scans and TypeAdapters, computed once
    api_base = api_base_override or resolve_api_base(model_cfg)
    api_key = resolve_api_key(model_cfg)
    if api_key is None and api_base is not None:
        # An endpoint with no api_key_env gets a placeholder, never the OPENAI_API_KEY the client
        # would otherwise pick up: a key goes only where the config sends it.
        api_key = NO_KEY
    client = {"api_base": api_base, "api_key": api_key}
    return dspy.LM(
        model_cfg.model,
        temperature=model_cfg.temperature,
        max_tokens=model_cfg.max_tokens,
        # DSPy caches calls on disk by default; the product turns that off (config `cache`)
        # because a retry after a bad sample must sample again, not replay the cached reply.
        cache=model_cfg.cache,
        num_retries=model_cfg.num_retries,
        timeout=model_cfg.timeout_s,
        **{key: value for key, value in client.items() if value is not None},
    )


class Handle(NamedTuple):
    """What a run needs to call one model: the LM and the adapter to use with it."""

    lm: dspy.LM
    adapter: dspy.Adapter


@contextmanager
def open_models(settings: Settings, names: Iterable[str]) -> Iterator[dict[str, Handle]]:
    """Start the local servers the named models need; yield ``{name: (lm, adapter)}``.

    Each local model gets its own server (models with the same ``local`` block and alias share
    one); all are stopped when the block ends, also on error.
    """
    with ExitStack() as stack:
        servers: dict[tuple[Any, str], ModelServer] = {}
        handles: dict[str, Handle] = {}
        for name in dict.fromkeys(names):
            cfg = settings.get(name)
            api_base = None
            if cfg.local is not None:
                key = (cfg.local, cfg.alias)
                if key not in servers:
                    server = SERVERS[cfg.local.server](cfg.local, cfg.alias)
                    servers[key] = stack.enter_context(server)
                api_base = servers[key].api_base
            handles[name] = Handle(build_lm(cfg, api_base), adapter_for(cfg))
        yield handles


def usage_from_history(lm: dspy.BaseLM, start_index: int = 0) -> dict[str, int]:
    """Calls and tokens in ``lm.history[start_index:]``: ``{calls, input_tokens, output_tokens}``.

    Take ``len(lm.history)`` before a step and pass it as ``start_index`` after. History keeps
    at most ``dspy.settings.max_history_size`` entries (10,000) and drops the oldest; for
    per-prediction usage under threads use ``dspy.configure(track_usage=True)`` and
    ``prediction.get_lm_usage()`` instead.
    """
    calls = input_tokens = output_tokens = 0
    for entry in lm.history[start_index:]:
        calls += 1
        usage = entry.get("usage") or {}
        input_tokens += int(usage.get("prompt_tokens") or 0)
        output_tokens += int(usage.get("completion_tokens") or 0)
    return {"calls": calls, "input_tokens": input_tokens, "output_tokens": output_tokens}


def call_entry(lm: Any, outputs: Any, recent: int = 16) -> dict[str, Any] | None:
    """The history entry an LM call recorded, found by the very ``outputs`` it returned
    (DSPy keeps them in the entry); None when history is off. Matched by identity, so another
    thread's call on the same LM, recorded in between, is never taken for it."""
    entries = list(getattr(lm, "history", None) or [])[-recent:]
    return next((e for e in reversed(entries) if e.get("outputs") is outputs), None)


def finish_reason(entry: dict[str, Any]) -> str | None:
    """Why the reply in a history entry ended: "stop", "length" (truncated by max_tokens), ...

    DSPy keeps the provider response under ``entry["response"]``: an lm15 ``Response`` with a
    normalised ``finish_reason`` on the native route, a LiteLLM ``ModelResponse`` with
    ``choices[i].finish_reason`` on the LiteLLM route, or a sequence of them (n > 1). With several
    choices, "length" wins so a truncation is never hidden.
    """
    response = entry.get("response")
    items = response if isinstance(response, (list, tuple)) else [response]
    reasons: list[str] = []
    for item in items:
        if isinstance(getattr(item, "finish_reason", None), str):
            reasons.append(item.finish_reason)
            continue
        choices = item.get("choices") if isinstance(item, dict) else getattr(item, "choices", None)
        for choice in choices or ():
            reason = (choice.get("finish_reason") if isinstance(choice, dict)
                      else getattr(choice, "finish_reason", None))
            if isinstance(reason, str):
                reasons.append(reason)
    if "length" in reasons:
        return "length"
    return reasons[0] if reasons else None
