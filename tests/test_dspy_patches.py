"""The memoized DSPy lookups give DSPy's own answers, computed once."""

from __future__ import annotations

from typing import Annotated

import dspy
import pydantic
import pytest
from dspy.adapters import utils as adapter_utils
from dspy.clients import capabilities, costs, model_metadata

from argalign.models import dspy_patches
from argalign.models.config import ModelConfig
from argalign.models.lm import build_lm


def test_building_an_lm_installs_both_lookups_in_every_module_that_calls_them():
    build_lm(ModelConfig(name="fake", model="openai/fake", api_base="http://127.0.0.1:9/v1"))
    assert dspy_patches.install() is True  # idempotent
    memoized = model_metadata.model_info
    assert hasattr(memoized, "__wrapped__")
    assert capabilities.model_info is memoized and costs.model_info is memoized
    assert hasattr(adapter_utils.TypeAdapter, "cache_info")


def test_model_info_is_computed_once_per_key_and_handed_out_as_a_copy():
    seen = []

    def original(provider, model, *, namespaces=None):
        seen.append((provider, model, namespaces))
        return {"supports_response_schema": True, "nested": {"a": [1]}}

    model_info = dspy_patches.memoize_model_info(original)
    first = model_info("openai", "m")
    first["nested"]["a"].append(2)
    assert model_info("openai", "m") == {"supports_response_schema": True, "nested": {"a": [1]}}
    model_info("openai", "m", namespaces=["x"])
    model_info("openai", "m", namespaces=("x",))
    model_info("openai", "other")
    assert [s[:2] for s in seen] == [("openai", "m"), ("openai", "m"), ("openai", "other")]


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4o-mini"), ("openai", "fake"),
                                             ("openai", "qwen2.5-coder-1.5b-instruct")])
def test_model_info_answers_as_dspy_does(provider, model):
    dspy_patches.install()
    original = model_metadata.model_info.__wrapped__
    assert model_metadata.model_info(provider, model) == original(provider, model)
    assert model_metadata.model_info(provider, model) == original(provider, model)


class _Point(pydantic.BaseModel):
    x: int
    label: str


class _Opaque:
    def __str__(self) -> str:
        return "opaque"


@pytest.mark.parametrize("value", ["plain text", 3, 2.5, None, True, ["a", "b"], {"k": [1, "v"]},
                                   _Point(x=1, label="p"), _Opaque()])
def test_serialize_for_json_gives_the_same_value_with_one_adapter_per_type(value):
    dspy_patches.install()
    expected = pydantic.TypeAdapter(type(value)).dump_python(value, mode="json", fallback=str) \
        if not isinstance(value, _Opaque) else "opaque"
    before = adapter_utils.TypeAdapter.cache_info()
    assert adapter_utils.serialize_for_json(value) == expected
    assert adapter_utils.serialize_for_json(value) == expected
    after = adapter_utils.TypeAdapter.cache_info()
    if not isinstance(value, _Opaque):  # pydantic has no schema for it: DSPy's str() fallback
        assert after.hits > before.hits  # the second call reused the first one's adapter


def test_an_unhashable_annotation_still_gets_an_adapter():
    make = dspy_patches.memoize_type_adapter(pydantic.TypeAdapter)
    unhashable = Annotated[int, ["metadata in a list"]]
    with pytest.raises(TypeError):
        hash(unhashable)
    assert make(unhashable).validate_python("3") == 3
    assert make(list[str]) is make(list[str])


def test_a_reply_is_parsed_the_same_through_the_memoized_adapters():
    dspy_patches.install()

    class Sig(dspy.Signature):
        """Say it."""

        question: str = dspy.InputField()
        answer: str = dspy.OutputField()
        count: int = dspy.OutputField()

    lm = dspy.utils.DummyLM([{"answer": "yes", "count": "3"}], adapter=dspy.JSONAdapter())
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict(Sig)(question="q?")
    assert (prediction.answer, prediction.count) == ("yes", 3)
