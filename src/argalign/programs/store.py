"""Programs: zero-shot or compiled alignment modules, each known by a fingerprint.

A compiled program is DSPy JSON state (``program.save(path)``) with a sidecar
``<name>.meta.json`` that records its fingerprint and what determined it. A zero-shot
program's fingerprint hashes its signatures' instructions and fields and the argalign
version, so a changed prompt is a different program.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from argalign import __version__
from argalign.core.defaults import DEFAULT_THINKING
from argalign.core.errors import ConfigError
from argalign.modes import make_mode
from argalign.modes.base import AlignConversation

log = logging.getLogger(__name__)


def fingerprint(obj: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-able object."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def programs_dir() -> Path:
    return Path(os.environ.get("ARGALIGN_PROGRAMS_DIR", "programs"))


def zero_shot_id(program: AlignConversation) -> str:
    described = {
        name: {"instructions": p.signature.instructions,
               "fields": {k: str(v.json_schema_extra) for k, v in p.signature.fields.items()}}
        for name, p in program.named_predictors()
    }
    return f"zs{program.mode}-" + fingerprint({"predictors": described, "version": __version__,
                                               "thinking": program.thinking_scope})


def meta_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def default_program(mode: str, *, task_model: dict[str, Any], thinking: str = DEFAULT_THINKING
                    ) -> tuple[Path, dict[str, Any]] | None:
    """The best compiled program in :func:`programs_dir` for a mode and task model, or None.

    ``task_model`` is ``{"name": ..., **model_fingerprint(...)}`` as ``argalign optimize``
    records it. A program qualifies when it was compiled for this mode, this task model with
    these settings, this thinking scope and today's zero-shot program (same signatures and
    argalign version), and it beat the zero-shot program on its valset. The best is the one
    with the largest valset gain over zero-shot (the newest on a tie): a valset score is
    optimistic for the program selected on it, so ``bench/optimize.py`` is what measures a
    program on held-out rows. Returns ``(path, meta)``.
    """
    zero = zero_shot_id(make_mode(mode, thinking=thinking))
    best: tuple[tuple[float, float], Path, dict[str, Any]] | None = None
    for sidecar in sorted(programs_dir().glob(f"{mode}-*.meta.json")):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            made = meta["determined_by"]
            gain = float(meta["compiled"]["score"]) - float(meta["baseline"]["score"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("%s is not a program's meta file, passed over: %s", sidecar, e)
            continue
        path = sidecar.with_name(sidecar.name[:-len(".meta.json")] + ".json")
        if (meta.get("mode") != mode or meta.get("zero_shot_kept") or gain <= 0
                or made.get("task_model") != task_model or made.get("thinking") != thinking
                or made.get("zero_shot") != zero or not path.is_file()):
            continue
        key = (gain, sidecar.stat().st_mtime)
        if best is None or key > best[0]:
            best = (key, path, meta)
    return None if best is None else (best[1], best[2])


def load_program(mode: str, program: str | None = None, *,
                 thinking: str = DEFAULT_THINKING) -> tuple[AlignConversation, str]:
    """Build a module for ``mode`` and load ``program`` (path or MLflow URI) into it.

    Returns the module and its fingerprint. With no program, the zero-shot module.
    """
    try:
        module = make_mode(mode, thinking=thinking)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if not program:
        return module, zero_shot_id(module)
    if "://" in program or program.startswith(("runs:/", "models:/", "mlflow-artifacts:/")):
        from argalign.tracking import download_artifact

        try:
            path = download_artifact(program)
        except Exception as e:  # noqa: BLE001 - MLflow raises many types for a bad URI
            raise ConfigError(f"cannot fetch program {program}: {e}") from e
        if path.is_dir():
            candidates = sorted(path.glob("*.json"))
            candidates = [c for c in candidates if not c.name.endswith(".meta.json")]
            if len(candidates) != 1:
                raise ConfigError(f"{program} holds {len(candidates)} program files, expected one")
            path = candidates[0]
        elif not meta_path(path).is_file():
            # A single file comes alone: fetch its sidecar too, for the fingerprint and mode.
            sidecar = program.rsplit("/", 1)[0] + "/" + meta_path(path).name
            try:
                download_artifact(sidecar, path.parent)
            except Exception as e:  # noqa: BLE001 - a program logged without its meta
                log.warning("no %s beside %s: %s", meta_path(path).name, program, e)
    else:
        path = Path(program)
    if not path.is_file():
        raise ConfigError(f"program file not found: {path}")
    meta: dict[str, Any] = {}
    if meta_path(path).is_file():
        meta = json.loads(meta_path(path).read_text(encoding="utf-8"))
        if meta.get("mode") not in (None, mode):
            raise ConfigError(f"{path} is a Mode {meta['mode']} program, not Mode {mode}")
    _check_predictors(module, path, mode)
    try:
        module.load(str(path))
    except Exception as e:  # noqa: BLE001 - DSPy raises several types for a bad state file
        raise ConfigError(f"{path} is not a Mode {mode} program state: {e}") from e
    fp = meta.get("fingerprint") or "file-" + fingerprint(path.read_text(encoding="utf-8"))
    return module, fp


def _check_predictors(module: AlignConversation, path: Path, mode: str) -> None:
    """Refuse a state whose predictors are not the module's: DSPy would load a Mode A state
    into a Mode B module without a word, taking the predictors they share and dropping the rest."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not a program state (DSPy JSON): {e}") from e
    if not isinstance(state, dict):
        raise ConfigError(f"{path} is not a program state (DSPy JSON)")
    saved = set(state) - {"metadata"}
    expected = {name for name, _ in module.named_predictors()}
    if saved != expected:
        raise ConfigError(f"{path} holds predictors {sorted(saved)}, but a Mode {mode} program "
                          f"({module.thinking_scope} thinking) has {sorted(expected)}")
