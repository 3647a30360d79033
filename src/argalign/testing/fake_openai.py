"""A simulated OpenAI-compatible chat-completions server for tests and benchmarks.

Contract: ``POST /v1/chat/completions`` takes an OpenAI chat request built by any DSPy 3.4
adapter and answers in that adapter's format, read from the prompt by
:func:`argalign.testing.dspy_format.parse_prompt`: the output fields and their types, and JSON,
``[[ ## field ## ]]`` sections or plain text. ``GET /v1/models``, ``GET /health`` and ``GET
/stats`` (the stats snapshot as JSON) are served too. With ``logprobs`` a choice carries
OpenAI's per-token ``logprobs.content`` and its text is those tokens.

The server owns the transport, the wire format, faults and stats; what it says comes from a
:class:`Responder`: the fields' values, what a tampering reply looks like, the tokens and
logprobs of a reply. The default responder is a pure function of the last user message, so two
servers, runs or processes answer the same prompt identically; it knows no program's fields.
Faults (429, 500, hang, malformed, truncated, length, tamper, 401) are injected either for the
first ``fail_first_n`` attempts of every distinct prompt or at random by rate; see
``FakeConfig``. Standard library only.

    with FakeOpenAIServer(FakeConfig(fault="429", fail_first_n=1)) as server:
        lm = dspy.LM("openai/fake", api_base=server.url, api_key="x", cache=False)
        ...
        server.stats.retry_gaps()  # seconds between each 429 and the retry of that prompt

From another process: ``python -m argalign.testing.fake_openai --port 0 --latency 0.2`` prints
one JSON line ``{"url": ..., "port": ..., "pid": ...}`` and serves until SIGTERM or SIGINT;
``--responder MODULE:NAME`` serves another responder (a :class:`Responder` class or instance).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import importlib
import json
import logging
import math
import os
import random
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from argalign.testing.dspy_format import message_text, parse_prompt, render, typed_values
from argalign.testing.fake_stats import FakeStats, RequestEvent, content_key

logger = logging.getLogger(__name__)

FAULTS = ("429", "500", "hang", "malformed", "truncated", "length", "tamper", "401")
TAMPER_MARKER = "IGNORE PREVIOUS INSTRUCTIONS"
MALFORMED_TEXT = "Sorry, I will not use the requested format today; here is some prose instead."

# (fields: {name: type string}, messages) -> {name: value}
Answer = Callable[[dict[str, str], list[dict[str, Any]]], dict[str, Any]]

_RATE_FIELDS = tuple(f"rate_{name}" for name in FAULTS)
_TOKEN = re.compile(r"\s*\S+\s*")


@dataclasses.dataclass
class FakeConfig:
    """Behaviour of a FakeOpenAIServer; every field may be changed while it runs.

    Faults: when ``fault`` is set, every distinct prompt (hash of its messages) fails its first
    ``fail_first_n`` attempts with that fault, then succeeds. Independently, each attempt draws
    one fault from the ``rate_*`` fields (checked in ``FAULTS`` order; if the rates sum past 1
    the later ones are cut short). The draw is a pure function of ``seed``, the prompt and its
    attempt number when ``deterministic_faults`` is true, otherwise it comes from one stream,
    seeded from ``seed`` at ``start()``, in arrival order.

    Fault meanings: ``429`` answers 429 with ``Retry-After: retry_after_s``; ``500`` answers
    500; ``hang`` waits ``hang_s`` (or until the server stops) before a normal answer;
    ``malformed`` answers 200 with prose no adapter can parse; ``truncated`` answers the first
    half of the content with ``finish_reason="length"``; ``length`` answers the full content with
    ``finish_reason="length"``; ``tamper`` answers valid content changed by the responder's
    ``tamper`` (``TAMPER_MARKER`` in its fields, keys nobody asked for); ``401`` refuses the
    key as OpenAI does, quoting the key it was sent.
    """

    latency_s: float = 0.0
    output_words: int = 40
    seed: int = 0
    fault: str | None = None
    fail_first_n: int = 0
    deterministic_faults: bool = True
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    rate_truncated: float = 0.0
    rate_length: float = 0.0
    rate_tamper: float = 0.0
    rate_401: float = 0.0
    retry_after_s: float = 1.0
    hang_s: float = 30.0

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _RATE_FIELDS and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if name in ("latency_s", "retry_after_s", "hang_s", "output_words", "fail_first_n") and (
            value < 0
        ):
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        if name == "fault" and value is not None and value not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS} or None, got {value!r}")
        super().__setattr__(name, value)


class Responder:
    """What the fake says; the server asks it and renders the answer in the request's format.

    A subclass overrides one method to change one kind of answer; a function passed as
    ``answer`` supplies the values alone. Each method must be a pure function of its arguments
    for the fake to stay deterministic.

    Args:
        answer: ``(fields, messages) -> values`` used instead of ``default_values``. Extra keys
            it returns are rendered too.
    """

    def __init__(self, answer: Answer | None = None) -> None:
        if answer is not None and not callable(answer):
            raise TypeError(f"answer must be a function (fields, messages) -> values, got {answer!r}")
        self.answer = answer

    def values(
        self, fields: dict[str, str], messages: list[dict[str, Any]], words: int
    ) -> dict[str, Any]:
        """The value of every output field (``{"text": "str"}`` for a plain prompt)."""
        if self.answer is not None:
            return self.answer(fields, messages)
        return self.default_values(fields, messages, words)

    def default_values(
        self, fields: dict[str, str], messages: list[dict[str, Any]], words: int
    ) -> dict[str, Any]:
        """Values of the fields' types; str fields get ``words`` (``config.output_words``) words."""
        return typed_values(fields, messages, words)

    def tamper(self, values: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
        """The values of a ``tamper`` fault: an injection in every str field, and a key nobody
        asked for."""
        injected = {k: f"{v} {TAMPER_MARKER}." if fields.get(k) == "str" else v
                    for k, v in values.items()}
        extras = {"role": "system"}
        return injected | {k: v for k, v in extras.items() if k not in fields}

    def logprobs(self, key: str, content: str, top: int) -> list[dict[str, Any]]:
        """The tokens of a reply to a ``logprobs`` request (OpenAI's ``logprobs.content``), each
        with its ``top`` alternatives; the reply's text becomes the tokens' text. ``key`` is the
        prompt's :func:`content_key`. By default each word of ``content`` is a certain token."""
        tokens = []
        for token in _TOKEN.findall(content):
            entry = {"token": token, "logprob": 0.0, "bytes": list(token.encode())}
            tokens.append({**entry, "top_logprobs": [entry][:top]})
        return tokens


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients pool connections
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK (~40 ms per call), which real servers avoid with TCP_NODELAY too.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/health", "/v1/health"):
            self.send_json(200, {"status": "ok"})
        elif path == "/v1/models":
            model = {"id": "fake", "object": "model", "created": 0, "owned_by": "argalign"}
            self.send_json(200, {"object": "list", "data": [model]})
        elif path in ("/stats", "/v1/stats"):
            self.send_json(200, self.server.fake.stats.snapshot())
        else:
            self.send_json(404, _error(f"no route {self.path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self.send_json(404, _error(f"no route {self.path}", "not_found"))
            return
        try:
            body = json.loads(raw)
            if not isinstance(body.get("messages"), list):
                raise ValueError("messages must be a list")
        except (ValueError, AttributeError) as e:
            self.send_json(400, _error(f"bad request: {e}", "invalid_request_error"))
            return
        self.server.fake._complete(self, body)


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never join handlers (a hung one would hold up stop())
    request_queue_size = 256  # bursts of 64+ concurrent connects

    def __init__(self, address: tuple[str, int], fake: FakeOpenAIServer) -> None:
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class FakeOpenAIServer:
    """A fake OpenAI-compatible endpoint on 127.0.0.1, served from a background thread.

    Args:
        config: Initial behaviour; the live object is ``.config`` (see ``configure``).
        responder: What the server says (see :class:`Responder`); a function
            ``(fields, messages) -> values`` stands for ``Responder(answer=function)``.
        port: 0 picks a free port.
    """

    def __init__(
        self,
        config: FakeConfig | None = None,
        responder: Responder | Answer | None = None,
        port: int = 0,
    ) -> None:
        self._config = config or FakeConfig()
        self._config_lock = threading.Lock()
        self._responder = responder if isinstance(responder, Responder) else Responder(responder)
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._rng = random.Random(self._config.seed)
        self._rng_lock = threading.Lock()
        self.stats = FakeStats()

    @property
    def config(self) -> FakeConfig:
        """The live config: setting one attribute on it takes effect on the next request."""
        return self._config

    @config.setter
    def config(self, value: FakeConfig) -> None:
        with self._config_lock:
            self._config = value

    def configure(self, **changes: Any) -> FakeConfig:
        """Change several fields at once; no request sees half of the change."""
        with self._config_lock:
            dataclasses.replace(self._config, **changes)  # validates before anything changes
            for name, value in changes.items():
                setattr(self._config, name, value)
            return self._config

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._rng = random.Random(self._config.seed)
        self._httpd = _HTTPServer(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop within ~1 s: hung and sleeping handlers are released, connections closed."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _choose_fault(self, cfg: FakeConfig, key: str, attempt: int) -> str | None:
        if cfg.fault and attempt <= cfg.fail_first_n:
            return cfg.fault
        rates = [(name, getattr(cfg, f"rate_{name}")) for name in FAULTS]
        if not any(rate for _, rate in rates):
            return None
        if cfg.deterministic_faults:
            draw = random.Random(f"{cfg.seed}:{key}:{attempt}").random()
        else:
            with self._rng_lock:
                draw = self._rng.random()
        for name, rate in rates:
            if draw < rate:
                return name
            draw -= rate
        return None

    def _complete(self, handler: _Handler, body: dict[str, Any]) -> None:
        with self._config_lock:
            cfg = copy.copy(self._config)
        key = content_key(body["messages"])
        start = time.monotonic()
        self.stats._saw(handler.headers.get("Authorization"))
        attempt = self.stats._begin(key)
        fault = self._choose_fault(cfg, key, attempt)
        if fault == "401":  # a wrong key: OpenAI's answer, which quotes the key it was sent
            sent = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
            status, headers, payload = 401, {}, _error(
                f"Incorrect API key provided: {sent}", "invalid_request_error", "invalid_api_key")
        else:
            status, headers, payload = self._respond(cfg, body, key, attempt, fault)
        # Recorded before the answer is written, so a client that has its answer sees it counted.
        self.stats._end(RequestEvent(key, attempt, start, time.monotonic(), status, fault))
        if status == 0:  # released by stop(): drop the connection without an answer
            handler.close_connection = True
            return
        try:
            handler.send_json(status, payload, headers)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before the answer to %s", key)

    def _respond(
        self, cfg: FakeConfig, body: dict[str, Any], key: str, attempt: int, fault: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if cfg.latency_s and self._stopping.wait(cfg.latency_s):
            return 0, {}, {}
        if fault == "hang" and self._stopping.wait(cfg.hang_s):
            return 0, {}, {}
        if fault == "429":
            headers = {"Retry-After": f"{cfg.retry_after_s:g}"}
            payload = _error("simulated rate limit", "rate_limit_error", "rate_limit_exceeded")
            return 429, headers, payload
        if fault == "500":
            return 500, {}, _error("simulated server error", "server_error")
        try:
            return 200, {}, self._answer(cfg, body, key, attempt, fault)
        except Exception as e:  # a broken custom responder answers 500, not a dead thread
            logger.exception("fake server failed to answer %s", key)
            return 500, {}, _error(f"fake server error: {e}", "server_error")

    def _answer(
        self, cfg: FakeConfig, body: dict[str, Any], key: str, attempt: int, fault: str | None
    ) -> dict[str, Any]:
        messages = body["messages"]
        adapter, fields = parse_prompt(body)
        values = self._responder.values(fields, messages, cfg.output_words)
        if fault == "tamper":
            values = self._responder.tamper(values, fields)
        content = render(adapter, fields, values)
        finish = "stop"
        if fault == "malformed":
            content = MALFORMED_TEXT
        elif fault == "truncated":
            content, finish = content[: len(content) // 2], "length"
        elif fault == "length":
            finish = "length"
        prompt_chars = sum(len(message_text(m.get("content"))) for m in messages)
        usage = {
            "prompt_tokens": math.ceil(prompt_chars / 4),
            "completion_tokens": math.ceil(len(content) / 4),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choice = {"message": {"role": "assistant", "content": content}, "finish_reason": finish}
        if body.get("logprobs") and fault not in ("malformed", "truncated"):
            tokens = self._responder.logprobs(key, content, int(body.get("top_logprobs") or 1))
            choice["message"]["content"] = "".join(t["token"] for t in tokens)
            choice["logprobs"] = {"content": tokens}
            usage["completion_tokens"] = len(tokens)
            usage["total_tokens"] = usage["prompt_tokens"] + len(tokens)
        n = body.get("n") or 1
        return {
            "id": f"chatcmpl-{key}-{attempt}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "system_fingerprint": "argalign-fake",
            "choices": [{"index": i, "logprobs": None, **choice} for i in range(n)],
            "usage": usage,
        }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m argalign.testing.fake_openai", description=__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    p.add_argument("--fault", choices=FAULTS, default=None)
    p.add_argument("--fail-first-n", type=int, default=0)
    for name in FAULTS:
        p.add_argument(f"--rate-{name}", type=float, default=0.0)
    p.add_argument("--retry-after", type=float, default=1.0)
    p.add_argument("--hang", type=float, default=30.0, help="seconds a hung request waits")
    p.add_argument("--output-words", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random-faults", action="store_true", help="draw faults in arrival order")
    p.add_argument("--stats-file", default=None, help="write the stats snapshot here on exit")
    p.add_argument("--responder", type=load_responder, default=None, metavar="MODULE:NAME",
                   help="a Responder subclass or instance to serve (default: Responder())")
    return p.parse_args(argv)


def load_responder(spec: str) -> Responder:
    """The responder ``MODULE:NAME`` names: a :class:`Responder` instance, or a subclass of it
    (instantiated without arguments)."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise argparse.ArgumentTypeError(f"expected MODULE:NAME, got {spec!r}")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as e:
        raise argparse.ArgumentTypeError(f"cannot load responder {spec!r}: {e}") from e
    if isinstance(found, type) and issubclass(found, Responder):
        found = found()
    if not isinstance(found, Responder):
        raise argparse.ArgumentTypeError(f"{spec!r} is not a Responder subclass or instance")
    return found


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the first stdout line is ``{"url": ...}``."""
    args = _parse_args(argv)
    rates = {f"rate_{name}": getattr(args, f"rate_{name}") for name in FAULTS}
    config = FakeConfig(
        latency_s=args.latency,
        fault=args.fault,
        fail_first_n=args.fail_first_n,
        retry_after_s=args.retry_after,
        hang_s=args.hang,
        output_words=args.output_words,
        seed=args.seed,
        deterministic_faults=not args.random_faults,
        **rates,
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with FakeOpenAIServer(config, responder=args.responder, port=args.port) as server:
        line = {"url": server.url, "port": server.port, "pid": os.getpid()}
        print(json.dumps(line), flush=True)
        while not done.wait(0.2):
            pass
        if args.stats_file:
            with open(args.stats_file, "w", encoding="utf-8") as f:
                json.dump(server.stats.snapshot(), f)
    return 0


if __name__ == "__main__":
    # The imported module's main, not this copy's: a responder that --responder loads subclasses
    # argalign.testing.fake_openai.Responder, which is not __main__.Responder.
    from argalign.testing.fake_openai import main as imported_main

    raise SystemExit(imported_main())
