"""The fake OpenAI endpoint, driven by real DSPy clients over HTTP on 127.0.0.1."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import dspy  # noqa: E402
import pytest  # noqa: E402
from dspy.utils.exceptions import AdapterParseError, LMError  # noqa: E402

from argalign.testing.fake_openai import (  # noqa: E402
    TAMPER_MARKER,
    FakeConfig,
    FakeOpenAIServer,
    parse_prompt,
)

ADAPTERS = [dspy.JSONAdapter, dspy.ChatAdapter]


class Rewrite(dspy.Signature):
    """Rewrite the request so that the answer follows from it."""

    request: str = dspy.InputField(desc="the original request")
    a: str = dspy.OutputField(desc="the new request")
    b: str = dspy.OutputField(desc="why it changed")
    notes: list[str] = dspy.OutputField(desc="short notes")


def _lm(server: FakeOpenAIServer, **kwargs) -> dspy.LM:
    options = {"cache": False, "num_retries": 0} | kwargs
    return dspy.LM("openai/fake", api_base=server.url, api_key="x", **options)


def _predict(lm: dspy.LM, adapter: dspy.Adapter, request: str = "Tides?") -> dspy.Prediction:
    with dspy.context(lm=lm, adapter=adapter):
        return dspy.Predict(Rewrite)(request=request)


def _finish_reason(entry: dict) -> str:
    """DSPy keeps the raw response in history["response"]: an lm15 Response, or litellm's."""
    response = entry["response"]
    if hasattr(response, "finish_reason"):
        return response.finish_reason
    return response.choices[0].finish_reason


def _post(server: FakeOpenAIServer | str, content: str) -> tuple[int, dict, dict]:
    """One raw chat request; ``server`` may be a base URL."""
    url = server if isinstance(server, str) else server.url
    body = {"model": "fake", "messages": [{"role": "user", "content": content}]}
    request = urllib.request.Request(
        f"{url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


@pytest.mark.parametrize("adapter_cls", ADAPTERS)
def test_any_signature_parses_and_is_deterministic(adapter_cls):
    outputs = []
    for _ in range(2):  # two servers: nothing may depend on process state
        with FakeOpenAIServer(FakeConfig(output_words=12)) as server:
            lm = _lm(server)
            pred = _predict(lm, adapter_cls())
            outputs.append(dict(pred))
            entry = lm.history[-1]
            assert _finish_reason(entry) == "stop"
            assert entry["usage"]["prompt_tokens"] > 100
            assert entry["usage"]["completion_tokens"] > 0
            assert server.stats.by_status == {200: 1}
    first, second = outputs
    assert first == second
    assert len(first["a"].split()) == 12 and first["a"] != first["b"]
    assert len(first["notes"]) == 3 and all(isinstance(n, str) for n in first["notes"])


def test_fields_and_format_are_read_from_the_prompt():
    class Typed(dspy.Signature):
        """Score it."""

        text: str = dspy.InputField()
        label: str = dspy.OutputField()
        score: float = dspy.OutputField()
        count: int = dspy.OutputField()
        ok: bool = dspy.OutputField()

    expected = {"label": "str", "score": "float", "count": "int", "ok": "bool"}
    for adapter, fmt in [(dspy.JSONAdapter(), "json"), (dspy.ChatAdapter(), "chat")]:
        messages = adapter.format(Typed, [], {"text": "hi"})
        assert parse_prompt({"messages": messages}) == (fmt, expected)
    assert parse_prompt({"messages": [{"role": "user", "content": "hi"}]})[0] == "plain"


def test_429_then_success_after_retry_after():
    with FakeOpenAIServer(FakeConfig(fault="429", fail_first_n=1, retry_after_s=1)) as server:
        lm = _lm(server, num_retries=1)
        start = time.monotonic()
        pred = _predict(lm, dspy.JSONAdapter())
        elapsed = time.monotonic() - start
        assert pred.a
        assert server.stats.by_status == {429: 1, 200: 1}
        assert server.stats.by_fault == {"429": 1}
        assert list(server.stats.attempts.values()) == [2]
        # DSPy's own retry loop waits for the Retry-After hint before the second attempt.
        (gap,) = server.stats.retry_gaps(429)
        assert 0.9 <= gap < 2.0 and elapsed >= 0.9
        status, headers, body = _post(server, "a fresh prompt fails first too")
        assert status == 429 and headers["Retry-After"] == "1"
        assert body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("fault", ["truncated", "length"])
def test_length_faults_are_visible_in_history(fault):
    with FakeOpenAIServer(FakeConfig(fault=fault, fail_first_n=1)) as server:
        lm = _lm(server)
        if fault == "truncated":  # the cut falls inside `b`, so `notes` is missing
            with pytest.raises(AdapterParseError):
                _predict(lm, dspy.JSONAdapter())
        else:
            assert _predict(lm, dspy.JSONAdapter()).notes
        assert _finish_reason(lm.history[-1]) == "length"
        assert server.stats.by_fault == {fault: 1}


@pytest.mark.parametrize("adapter_cls", ADAPTERS)
def test_malformed_answers_fail_to_parse(adapter_cls):
    config = FakeConfig(fault="malformed", fail_first_n=9)
    with FakeOpenAIServer(config) as server, pytest.raises(AdapterParseError):
        _predict(_lm(server), adapter_cls())


def test_tamper_keeps_fields_valid_and_adds_extra_keys():
    with FakeOpenAIServer(FakeConfig(fault="tamper", fail_first_n=1)) as server:
        lm = _lm(server)
        pred = _predict(lm, dspy.JSONAdapter())
        assert set(pred.keys()) == {"a", "b", "notes"}
        assert TAMPER_MARKER in pred.a
        raw = json.loads(lm.history[-1]["outputs"][0])
        assert {"content", "assistant_content", "messages", "role"} <= raw.keys()


def test_hang_times_out_and_stop_is_prompt():
    server = FakeOpenAIServer(FakeConfig(fault="hang", fail_first_n=1, hang_s=30)).start()
    try:
        start = time.monotonic()
        with pytest.raises(LMError):
            _predict(_lm(server, timeout=1), dspy.JSONAdapter())
        assert time.monotonic() - start < 3
        assert server.stats.in_flight == 1  # still hanging on the server side
    finally:
        start = time.monotonic()
        server.stop()
        stop_s = time.monotonic() - start
    assert stop_s < 1.5
    # Released by stop(), never answered; the released handler thread records that after stop()
    # returns, so give it a moment on a loaded machine.
    deadline = time.monotonic() + 5
    while server.stats.by_status != {0: 1} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stats.by_status == {0: 1}


def test_concurrent_requests_overlap():
    n = 16
    with FakeOpenAIServer(FakeConfig(latency_s=0.2)) as server:
        lm = _lm(server)
        _predict(lm, dspy.JSONAdapter(), "warm up")  # engine and connection setup
        server.stats.reset()
        barrier = threading.Barrier(n)
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            barrier.wait()
            try:
                _predict(lm, dspy.JSONAdapter(), f"request {i}")
            except BaseException as e:  # reported below, not lost in the thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        assert not errors
        assert server.stats.by_status == {200: n}
        assert server.stats.max_in_flight == n
        assert 0.2 <= elapsed < 0.8, elapsed


def test_rate_faults_are_deterministic_per_prompt():
    config = FakeConfig(rate_500=0.3, rate_429=0.2, seed=7)
    runs = []
    for _ in range(2):
        with FakeOpenAIServer(config) as server:
            runs.append([_post(server, f"prompt {i}")[0] for i in range(40)])
    assert runs[0] == runs[1]
    assert {200, 429, 500} <= set(runs[0])


def test_config_changes_at_runtime_and_is_validated():
    with pytest.raises(ValueError):
        FakeConfig(rate_429=1.5)
    with pytest.raises(ValueError):
        FakeConfig(fault="teapot")
    with FakeOpenAIServer() as server:
        assert _post(server, "x")[0] == 200
        server.config.rate_500 = 1.0
        assert _post(server, "y")[0] == 500
        server.configure(rate_500=0.0, fault="429", fail_first_n=1, retry_after_s=2)
        status, headers, _ = _post(server, "z")
        assert (status, headers["Retry-After"]) == (429, "2")
        with pytest.raises(ValueError):
            server.configure(rate_500=0.5, latency_s=-1)
        assert server.config.rate_500 == 0.0  # a rejected change changes nothing


def test_cli_prints_url_and_stops_on_sigterm(tmp_path):
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    stats_file = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "argalign.testing.fake_openai", "--port", "0"]
    cmd += ["--fault", "500", "--fail-first-n", "1", "--stats-file", str(stats_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=5) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        assert _post(url, "hi")[0] == 500
        assert _post(url, "hi")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    stats = json.loads(stats_file.read_text())
    assert stats["by_status"] == {"500": 1, "200": 1}
