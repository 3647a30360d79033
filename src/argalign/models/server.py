"""What a kind of local server is: :class:`ModelServer`, the base every kind subclasses, and
:class:`ServerConfig`, what it reads of a model's ``local:`` settings.

A new kind is one module that subclasses :class:`ModelServer` (``server_<kind>.py`` beside this
one) and one line in :data:`argalign.models.local_llm.SERVERS` (its import and its entry). It
imports this module, never the registry: the registry imports it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from argalign.models.bundles import BUNDLES


class ServerConfig(BaseModel):
    """A local server argalign starts on 127.0.0.1 for one model, and the GGUF file it serves.

    What a server kind reads; :class:`argalign.models.local_llm.LocalServerConfig` (the
    settings' ``local:``) also checks ``server`` and ``gguf`` against the registry of kinds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gguf: str | None = Field(None, description="a bundled model (argalign.models.bundles.BUNDLES) or the "
                                               "path of a .gguf file; for the kinds that serve one")
    server: str = Field("llama.cpp", description="which kind of local server (local_llm.SERVERS)")
    # llama.cpp splits n_ctx evenly between the n_parallel slots: one request sees n_ctx/n_parallel.
    n_ctx: int = Field(8192, gt=0)
    n_parallel: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1, description="CPU threads; None = all physical cores")
    port: int = Field(0, ge=0, le=65535, description="0 = pick a free port")

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


class ModelServer(ABC):
    """A local OpenAI-compatible server for one model, running while in a ``with``.

    A new kind of server is a subclass (``start``, ``stop``, ``base_url``) and a line in
    :data:`argalign.models.local_llm.SERVERS`; settings pick it with ``local.server``. A kind
    that serves a GGUF file sets ``needs_gguf``, and settings then name one in ``local.gguf``.
    """

    needs_gguf: ClassVar[bool] = False

    def __init__(self, cfg: ServerConfig, alias: str):
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
