"""The ``llama.cpp`` kind of local server: one GGUF file served in-process by llama.cpp
(xllamacpp) on 127.0.0.1; several may run at once, one per model."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from typing import Any

from argalign.core.errors import RunError
from argalign.models.gguf import gguf_path
from argalign.models.server import ModelServer, ServerConfig

log = logging.getLogger(__name__)

# Plain urllib with proxies off: a proxy from the environment must never see 127.0.0.1 traffic.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalServer(ModelServer):
    """One GGUF file served by llama.cpp at ``http://127.0.0.1:PORT/v1`` while in a ``with``.

    The server runs in this process (native threads, no subprocess); leaving the block, or
    :meth:`stop`, shuts it down and frees the model. Stopping twice is harmless.
    """

    needs_gguf = True

    def __init__(self, cfg: ServerConfig, alias: str, *, startup_timeout_s: float = 300.0):
        super().__init__(cfg, alias)
        self.startup_timeout_s = startup_timeout_s
        self._server: Any = None
        self._address: str | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (llama.cpp's own endpoints such as ``/health`` live here)."""
        if self._address is None:
            raise RunError(f"local server {self.alias!r} is not running")
        return self._address

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def start(self) -> LocalServer:
        if self._server is not None:
            return self
        path = gguf_path(self.cfg.gguf)
        import xllamacpp  # heavy native library: imported only when a server is started

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.model_alias = {self.alias}
        params.hostnames = ["127.0.0.1"]
        params.port = self.cfg.port
        params.n_ctx = self.cfg.n_ctx
        params.n_parallel = self.cfg.n_parallel
        if self.cfg.threads is not None:
            params.cpuparams.n_threads = self.cfg.threads
            params.cpuparams_batch.n_threads = self.cfg.threads
        # llama.cpp writes its own log to stderr: errors only, unless we are debugging.
        params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else 1
        start = time.monotonic()
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as e:
            raise RunError(f"llama.cpp could not serve {path} on 127.0.0.1:{self.cfg.port or 'any'} "
                           f"({e}); is the port taken or the file damaged?") from e
        self._address = self._server.listening_address.rstrip("/")
        try:
            self._wait_healthy(start + self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info("serving %s as %r at %s (n_ctx=%d, n_parallel=%d) after %.1fs", path.name,
                 self.alias, self.api_base, self.cfg.n_ctx, self.cfg.n_parallel,
                 time.monotonic() - start)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        delay = 0.05
        while True:
            try:
                with _opener.open(self.base_url + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                reason = e
            else:
                reason = None
            if time.monotonic() > deadline:
                raise RunError(f"local server {self.alias!r} at {self.base_url} was not healthy "
                               f"within {self.startup_timeout_s:.0f}s (last: {reason})")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def stop(self) -> None:
        """Shut the server down and free the model (waits for requests in flight)."""
        server, self._server = self._server, None
        if server is None:
            return
        # xllamacpp has no stop(): dropping the last reference runs the C++ destructor, which
        # stops the HTTP listener and joins the inference loop.
        del server
        log.info("stopped local server %r at %s", self.alias, self._address)
        self._address = None

    def __repr__(self) -> str:
        state = self._address or "stopped"
        return f"LocalServer({self.cfg.gguf!r}, alias={self.alias!r}, {state})"
