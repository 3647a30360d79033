"""Local servers: the kinds argalign can start (:data:`SERVERS`), and :class:`LocalServerConfig`,
what a model's settings say of its server.

:class:`LocalServerConfig` is ``local:`` in the YAML, nested by
:class:`argalign.models.config.ModelConfig`; it is checked against :data:`SERVERS` and
:data:`argalign.models.bundles.BUNDLES`. A server kind that serves a file (``needs_gguf``) takes a
bundled model or the path of a GGUF file the user has (:mod:`argalign.models.gguf`); a kind that
needs none takes no ``gguf``. A server the user starts (vLLM, Ollama, llama-server) is no server
kind: it is a model with ``api_base``. A kind is a subclass of
:class:`argalign.models.server.ModelServer` in a module of its own (``server_<kind>.py``).
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from argalign.models.bundles import BUNDLES
from argalign.models.server import ModelServer, ServerConfig
from argalign.models.server_llama_cpp import LocalServer

# A new kind of local server is its module's import above and one entry here.
SERVERS: dict[str, type[ModelServer]] = {"llama.cpp": LocalServer}


class LocalServerConfig(ServerConfig):
    """A model's ``local:`` settings: a :class:`ServerConfig` whose ``server`` is a kind in
    :data:`SERVERS`, with a ``gguf`` exactly when that kind serves one."""

    @field_validator("server")
    @classmethod
    def _known_server(cls, name: str) -> str:
        if name not in SERVERS:
            raise ValueError(f"unknown local server {name!r}; known: {', '.join(SERVERS)}")
        return name

    @model_validator(mode="after")
    def _gguf_as_the_server_needs(self) -> LocalServerConfig:
        needs = SERVERS[self.server].needs_gguf
        if needs and self.gguf is None:
            raise ValueError(f"the {self.server} server serves a GGUF file: set `gguf` to a "
                             f"bundled model ({', '.join(BUNDLES)}) or a .gguf file path")
        if not needs and self.gguf is not None:
            raise ValueError(f"the {self.server} server serves no GGUF file: drop `gguf`")
        return self
