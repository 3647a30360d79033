"""argalign's answers on the generic fake server: rewrites, tampering and the judge's readings."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import dspy  # noqa: E402

from argalign.core.deliverables import TASKS  # noqa: E402
from argalign.modes.signatures import RewriteRequest, RewriteWholeThinking  # noqa: E402
from argalign.scoring.judge import LETTERS, letter_distribution  # noqa: E402
from argalign.testing.argalign_responder import ArgalignResponder  # noqa: E402
from argalign.testing.fake_openai import (  # noqa: E402
    TAMPER_MARKER,
    FakeConfig,
    FakeOpenAIServer,
    Responder,
)

REWRITE = {"system_prompt": "", "history": "", "source_excerpt": "A text.", "answer": "It holds.",
           "tool_calls": "none", "plan": "Step 1: read.",
           "original_request": "Assess [SOURCE TEXT: 120 characters] the   argument.",
           "delivers": f"Mainly: {TASKS['verdict']}.\nAlso more.",
           "methods": "reconstruct the argument\nformalize it"}
THINKING = {"request": "Assess it.", "position": "first reply", "thinking": "I read it.",
            "answer": "It holds."}


def _predict(server: FakeOpenAIServer, signature: type[dspy.Signature], **inputs) -> dspy.Prediction:
    lm = dspy.LM("openai/fake", api_base=server.url, api_key="x", cache=False, num_retries=0)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        return dspy.Predict(signature)(**inputs)


def _chat(url: str, body: dict) -> dict:
    request = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _reading(url: str, text: str) -> dict:
    body = {"model": "fake", "messages": [{"role": "user", "content": text}], "max_tokens": 1,
            "logprobs": True, "top_logprobs": 20}
    return _chat(url, body)["choices"][0]


def test_a_rewritten_request_keeps_the_original_and_asks_for_the_task():
    config = FakeConfig(output_words=6)
    with FakeOpenAIServer(config, responder=ArgalignResponder()) as server:
        request = _predict(server, RewriteRequest, **REWRITE).request
    assert request.startswith("Assess the argument. Answer the question. ")
    assert len(request.split()) == 3 + 3 + 6
    with FakeOpenAIServer(config) as server:  # the generic server: hashed words only
        assert len(_predict(server, RewriteRequest, **REWRITE).request.split()) == 6


def test_a_new_thinking_is_in_the_assistant_s_voice():
    with FakeOpenAIServer(FakeConfig(output_words=6), responder=ArgalignResponder()) as server:
        thinking = _predict(server, RewriteWholeThinking, **THINKING).new_thinking
    assert thinking.startswith("I note: ") and len(thinking.split()) == 2 + 6


def test_tamper_marks_the_fields_and_adds_a_row_message_s_keys():
    config = FakeConfig(output_words=6, fault="tamper", fail_first_n=1)
    with FakeOpenAIServer(config, responder=ArgalignResponder()) as server:
        lm = dspy.LM("openai/fake", api_base=server.url, api_key="x", cache=False, num_retries=0)
        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
            pred = dspy.Predict(RewriteWholeThinking)(**THINKING)
        raw = json.loads(lm.history[-1]["outputs"][0])
    # The prose gets the marker alone, other str fields a whole sentence.
    assert pred.new_thinking.endswith(f" {TAMPER_MARKER}.")
    assert {"content", "assistant_content", "messages", "role"} <= raw.keys()
    assert raw["assistant_content"].startswith(TAMPER_MARKER)


def test_a_logprobs_request_is_a_judge_reading_over_the_task_letters():
    with FakeOpenAIServer(responder=ArgalignResponder()) as server:
        choice = _reading(server.url, "Which task? A) ... B) ...")
        again = _reading(server.url, "Which task? A) ... B) ...")
        other = _reading(server.url, "Another text")
    (token,) = choice["logprobs"]["content"]
    top = token["top_logprobs"]
    assert choice["message"]["content"] == token["token"] == top[0]["token"]
    assert sorted(t["token"] for t in top) == list(LETTERS[: len(TASKS)])
    assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
    assert choice == again and choice != other  # a pure function of the prompt
    # The judge reads a full distribution from it, all of its mass on the option letters.
    output = {"text": choice["message"]["content"], "logprobs": choice["logprobs"]}
    probs, mass = letter_distribution(output, len(TASKS))
    assert abs(mass - 1.0) < 1e-9 and max(probs) == probs[LETTERS.index(token["token"])]


def test_a_custom_answer_keeps_argalign_s_readings_and_tampering():
    responder = ArgalignResponder(lambda fields, messages: {name: "fixed" for name in fields})
    assert isinstance(responder, Responder)
    with FakeOpenAIServer(responder=responder) as server:
        assert _chat(server.url, {"messages": [{"role": "user", "content": "x"}]}
                     )["choices"][0]["message"]["content"] == "fixed"
        assert len(_reading(server.url, "x")["message"]["content"]) == 1


def test_the_cli_serves_it_from_another_process():
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "argalign.testing.fake_openai", "--port", "0", "--responder",
           "argalign.testing.argalign_responder:ArgalignResponder"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        with FakeOpenAIServer(responder=ArgalignResponder()) as server:
            assert _reading(url, "Which task?") == _reading(server.url, "Which task?")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
