"""Token lengths of exported rows: the longest one, and the ``cutoff_len`` a trainer needs.

LLaMA-Factory cuts every training example at ``cutoff_len`` tokens (2048 by default), so a
long row (the real data's tool row is ~18k tokens) loses its answer without a word. ``export``
counts each row's training text (system prompt, tools, every turn) and reports the longest.

The count needs a tokenizer that is on the machine without a download:

- ``--tokenizer FILE``: the ``tokenizer.json`` of the model to train (Hugging Face
  ``tokenizers``); the count is exact up to the chat template's few tokens per turn;
- otherwise cl100k_base, the BPE file litellm (a DSPy dependency) ships for offline use. It is
  an approximation: on the six real rows it counted 0.4–11% fewer tokens than Qwen2.5's own
  tokenizer (16,000 against 17,969 on the tool row), so the suggested ``cutoff_len`` adds 15%.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError

DEFAULT_CUTOFF = 2048  # LLaMA-Factory's default cutoff_len
TEMPLATE_TOKENS_PER_TURN = 10  # role markers and separators a chat template adds per turn
APPROXIMATE_MARGIN = 1.15
CUTOFF_STEP = 1024
CL100K_FILE = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"  # tiktoken's cache name for cl100k_base


@dataclass(frozen=True)
class Tokenizer:
    """A token counter and what it is."""

    name: str
    exact: bool
    encode: Callable[[str], int]

    def count(self, text: str) -> int:
        return self.encode(text)


@contextlib.contextmanager
def _with_environ(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _cl100k() -> Tokenizer:
    spec = find_spec("litellm")  # located, not imported: importing litellm costs seconds
    folder = Path(next(iter(spec.submodule_search_locations or []), "")) if spec else None
    bundled = folder / "litellm_core_utils" / "tokenizers" if folder else None
    if bundled is None or not (bundled / CL100K_FILE).is_file():
        raise ConfigError("no offline tokenizer found (litellm's cl100k_base file is missing): "
                          "pass --tokenizer with your model's tokenizer.json")
    import tiktoken

    with _with_environ("TIKTOKEN_CACHE_DIR", str(bundled)):
        encoding = tiktoken.get_encoding("cl100k_base")
    return Tokenizer("cl100k_base (approximate)", False,
                     lambda text: len(encoding.encode(text, disallowed_special=())))


def load_tokenizer(path: str | Path | None = None) -> Tokenizer:
    """The tokenizer.json at ``path``, or the bundled cl100k_base when None."""
    if path is None:
        return _cl100k()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--tokenizer {path}: no such file (give a tokenizer.json)")
    from tokenizers import Tokenizer as HFTokenizer

    try:
        tokenizer = HFTokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure means a bad file
        raise ConfigError(f"--tokenizer {path}: not a Hugging Face tokenizer.json ({e})") from e
    return Tokenizer(path.name, True,
                     lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids))


def cutoff_len(tokens: int, *, exact: bool) -> int:
    """The ``cutoff_len`` to set: ``tokens`` (plus 15% for an approximate count) rounded up to
    a multiple of 1024."""
    needed = tokens * (1.0 if exact else APPROXIMATE_MARGIN)
    return max(CUTOFF_STEP, math.ceil(needed / CUTOFF_STEP) * CUTOFF_STEP)


@dataclass
class Lengths:
    """Token counts of the exported rows: the longest, and how many the default cutoff cuts."""

    tokenizer: Tokenizer
    rows: int = 0
    over_default: int = 0
    longest: dict[str, Any] = field(default_factory=dict)

    def add(self, where: str, row_id: str, texts: list[str]) -> int:
        """Count one row from its texts (one per turn, the system prompt and tools among them),
        each with the chat template's tokens around it."""
        texts = [t for t in texts if t]
        tokens = sum(self.tokenizer.count(t) + TEMPLATE_TOKENS_PER_TURN for t in texts)
        self.rows += 1
        self.over_default += tokens > DEFAULT_CUTOFF
        if tokens > self.longest.get("tokens", -1):
            self.longest = {"id": row_id, "where": where, "tokens": tokens}
        return tokens

    def as_dict(self) -> dict[str, Any]:
        if not self.rows:
            return {"tokenizer": self.tokenizer.name, "rows": 0}
        return {"tokenizer": self.tokenizer.name, "rows": self.rows, "longest": self.longest,
                "cutoff_len": cutoff_len(self.longest["tokens"], exact=self.tokenizer.exact),
                "over_default_cutoff": self.over_default, "default_cutoff": DEFAULT_CUTOFF}

    def message(self) -> str:
        """One line for the terminal."""
        if not self.rows:
            return "no row was exported"
        facts = self.as_dict()
        line = (f"longest row: {self.longest['tokens']:,} tokens ({self.tokenizer.name}; "
                f"{self.longest['id']} in {self.longest['where']}); set cutoff_len >= "
                f"{facts['cutoff_len']} when training")
        if self.over_default:
            line += (f". LLaMA-Factory's default cutoff_len of {DEFAULT_CUTOFF} would cut "
                     f"{self.over_default} of {self.rows} rows")
        return line
