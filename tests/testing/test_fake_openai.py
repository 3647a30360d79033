"""The fake OpenAI endpoint, driven by real DSPy clients over HTTP on 127.0.0.1."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import ast  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
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

from argalign.testing.dspy_format import parse_prompt  # noqa: E402
from argalign.testing.fake_openai import (  # noqa: E402
    TAMPER_MARKER,
    FakeConfig,
    FakeOpenAIServer,
    Responder,
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
        assert pred.a.endswith(f" {TAMPER_MARKER}.") and TAMPER_MARKER in pred.b
        assert TAMPER_MARKER not in json.dumps(pred.notes)  # only str fields are tampered with
        raw = json.loads(lm.history[-1]["outputs"][0])
        assert raw["role"] == "system"


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


def test_cli_refuses_a_responder_it_cannot_load():
    cmd = [sys.executable, "-m", "argalign.testing.fake_openai", "--responder"]
    for spec, error in [("no_colon", "expected MODULE:NAME"),
                        ("argalign.testing.fake_openai:FakeConfig", "not a Responder")]:
        proc = subprocess.run([*cmd, spec], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and error in proc.stderr, proc.stderr


# The generic server: these modules may import each other and nothing else of argalign.
GENERIC = ("fake_openai", "dspy_format", "fake_stats")
TESTING = Path(__file__).resolve().parents[2] / "src" / "argalign" / "testing"


def _argalign_imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(f"argalign.testing.{node.module}" if node.level else (node.module or ""))
    return {name for name in names if name.split(".")[0] == "argalign"}


def _code_strings(tree: ast.AST) -> set[str]:
    """The words of every string constant but docstrings: what the code matches and writes."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr)}
    return {word for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings
            for word in re.findall(r"\w+", node.value)}


def _argalign_names() -> set[str]:
    """argalign's field names and labels: its signatures' fields, task and method labels (less
    the plain words the fake writes as filler)."""
    from argalign.core.deliverables import TASKS
    from argalign.modes import signatures
    from argalign.scoring import readings
    from argalign.scoring.judge import METHOD_OPTIONS
    from argalign.testing.dspy_format import _VOCABULARY

    names = set(TASKS) | set(METHOD_OPTIONS)
    for module in (signatures, readings):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, dspy.Signature):
                names |= set(cls.input_fields) | set(cls.output_fields)
    return names - set(_VOCABULARY)


def test_the_generic_server_knows_no_argalign_name():
    names = _argalign_names()
    allowed = {f"argalign.testing.{module}" for module in GENERIC}
    for module in GENERIC:
        tree = ast.parse((TESTING / f"{module}.py").read_text("utf-8"))
        assert _argalign_imports(tree) <= allowed, module
        assert not _code_strings(tree) & names, module
    # The check sees argalign's names where they are.
    responder = ast.parse((TESTING / "argalign_responder.py").read_text("utf-8"))
    assert {"original_request", "new_thinking", "opening"} <= _code_strings(responder) & names
    assert "argalign.core.deliverables" in _argalign_imports(responder)


class Recipe(dspy.Signature):
    """Suggest a dish for the ingredients."""

    ingredients: str = dspy.InputField()
    dish: str = dspy.OutputField()
    minutes: int = dspy.OutputField()


class Kitchen(Responder):
    """A responder that knows one program: dishes by their first ingredient."""

    def default_values(self, fields, messages, words):
        ingredient = (messages[-1]["content"].partition("[[ ## ingredients ## ]]")[2].split()
                      or ["water"])[0]
        return {"dish": f"{ingredient} soup", "minutes": 20}

    def tamper(self, values, fields):
        return values | {"dish": f"{values['dish']} {TAMPER_MARKER}"}

    def logprobs(self, key, content, top):
        entries = [{"token": t, "logprob": -0.1, "bytes": list(t.encode())} for t in ("yes", "no")]
        return [{**entries[0], "top_logprobs": entries[:top]}]


@pytest.mark.parametrize("adapter_cls", ADAPTERS)
def test_a_custom_responder_answers_any_program(adapter_cls):
    with FakeOpenAIServer(responder=Kitchen()) as server:
        lm = _lm(server)
        with dspy.context(lm=lm, adapter=adapter_cls()):
            pred = dspy.Predict(Recipe)(ingredients="leek potato")
        assert (pred.dish, pred.minutes) == ("leek soup", 20)
        server.configure(fault="tamper", fail_first_n=1)
        with dspy.context(lm=lm, adapter=adapter_cls()):
            pred = dspy.Predict(Recipe)(ingredients="pumpkin")
        assert pred.dish == f"pumpkin soup {TAMPER_MARKER}"
        body = {"model": "fake", "messages": [{"role": "user", "content": "ok?"}],
                "logprobs": True, "top_logprobs": 2}
        request = urllib.request.Request(f"{server.url}/chat/completions",
                                         data=json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            choice = json.loads(response.read())["choices"][0]
        assert choice["message"]["content"] == "yes"
        assert [t["token"] for t in choice["logprobs"]["content"][0]["top_logprobs"]] == ["yes", "no"]


def test_a_function_supplies_the_values_alone():
    def echo(fields, messages):
        return {name: messages[-1]["content"] for name in fields}

    with FakeOpenAIServer(responder=echo) as server:
        status, _, body = _post(server, "echo me")
        assert status == 200 and body["choices"][0]["message"]["content"] == "echo me"
    with pytest.raises(TypeError, match=r"function \(fields, messages\) -> values"):
        FakeOpenAIServer(responder="echo")


def test_default_logprobs_are_the_reply_s_words_each_certain():
    with FakeOpenAIServer(FakeConfig(output_words=5)) as server:
        plain = _post(server, "words please")[2]["choices"][0]["message"]["content"]
        body = {"model": "fake", "messages": [{"role": "user", "content": "words please"}],
                "logprobs": True}
        request = urllib.request.Request(f"{server.url}/chat/completions",
                                         data=json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
    tokens = answer["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == answer["choices"][0]["message"]["content"] == plain
    assert len(tokens) == 5 == answer["usage"]["completion_tokens"]
    assert all(t["logprob"] == 0.0 and len(t["top_logprobs"]) == 1 for t in tokens)
