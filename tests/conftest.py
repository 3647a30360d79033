"""Tests run offline: no disk cache, no Hub, and no LM call that leaves 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import socket  # noqa: E402

import dspy  # noqa: E402

# ``../shared`` beside the repository; a git worktree elsewhere names it in ARGALIGN_REAL_ROWS.
REAL_ROWS = Path(os.environ.get("ARGALIGN_REAL_ROWS") or Path(__file__).resolve().parents[2]
                 / "shared" / "data" / "argunauts-real-6.jsonl")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address) -> None:
    if isinstance(address, tuple) and address and address[0] not in LOOPBACK:
        raise ConnectionRefusedError(f"tests are offline: refused a connection to {address[0]}")


def _connect(self, address):
    _check_address(address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _check_address(address)
    return _real_connect_ex(self, address)


# Any LM or Hub call that would leave the machine fails at once (DSPy's native client does
# not go through litellm, so the guard sits at the socket).
socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex


@pytest.fixture(autouse=True)
def offline_dspy(monkeypatch, tmp_path):
    """Reset DSPy, switch off its caches, and give MLflow and programs a temporary home."""
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ARGALIGN_PROGRAMS_DIR", str(tmp_path / "programs"))
    with dspy.context(lm=None, adapter=None, trace=[]):
        yield


@pytest.fixture
def real_rows_path() -> Path:
    if not REAL_ROWS.exists():
        pytest.fail(f"the six real rows are missing: {REAL_ROWS}")
    return REAL_ROWS


def _sample_rows() -> list[dict]:
    import json

    from argalign.prepare import sample_dir

    path = sample_dir() / "deepa2-aaac01-thinking" / "train.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.fixture
def sample_rows() -> list[dict]:
    """Realistic rows that ship with the package (the bundled sample's first split)."""
    return _sample_rows()
