"""Tests run offline: no disk cache, no Hub, and no LM call that leaves 127.0.0.1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import socket  # noqa: E402

import dspy  # noqa: E402

from argalign.testing.argalign_responder import ArgalignResponder  # noqa: E402
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer  # noqa: E402

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


def _stand_in_rows() -> list[dict[str, Any]]:
    """Six rows of the bundled sample with the shapes of the six real rows: row 0 a tool round
    trip (system, user, assistant thinking, assistant tool call, tool, assistant answer), rows
    1-5 one turn; an ``example_id`` 0-5 and no ``source_id``, as in the real data."""
    import json

    from argalign.core.sources import sample_dir

    def shape(row: dict[str, Any]) -> list[tuple]:
        return [(m["role"], bool(m["thinking"]), bool(m["content"]), bool(m["tool_calls"]))
                for m in row["messages"]]

    one_turn = [("system", False, True, False), ("user", False, True, False),
                ("assistant", True, True, False)]
    rows = [json.loads(line) for path in sorted(sample_dir().glob("*/*.jsonl"))
            for line in path.read_text("utf-8").splitlines() if line.strip()]
    tool = next(r for r in rows if [m["role"] for m in r["messages"]][-2:] == ["tool", "assistant"])
    single = [r for r in rows if shape(r) == one_turn]
    chosen = [tool, *single[::len(single) // 5][:5]]
    return [{"example_id": i, **{k: v for k, v in row.items() if k != "source_id"}}
            for i, row in enumerate(chosen)]


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    """The six real rows (``../shared/data``), for the tests about the real data itself; they
    skip when it is absent."""
    if not REAL_ROWS.is_file():
        pytest.skip(f"the six real rows are not at {REAL_ROWS}: put the shared folder beside the "
                    "repository or name the file in ARGALIGN_REAL_ROWS")
    return REAL_ROWS


@pytest.fixture(scope="session")
def real_rows_path(tmp_path_factory) -> Path:
    """The six real rows (``../shared/data``) or, in a clone without them, six rows of the
    bundled sample with the same shapes (:func:`_stand_in_rows`): for a test that needs
    realistic rows. A test about the real data itself asks for ``real_data_path``."""
    if REAL_ROWS.is_file():
        return REAL_ROWS
    import json

    path = tmp_path_factory.mktemp("stand-in") / "six-rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _stand_in_rows()), "utf-8")
    return path


@pytest.fixture
def real_rows(real_rows_path: Path) -> list[dict[str, Any]]:
    """The rows of ``real_rows_path``, parsed afresh for each test (a test may change them)."""
    from support import read_rows

    return read_rows(real_rows_path)


@pytest.fixture
def secrets(monkeypatch) -> None:
    """support.KEY and support.TOKEN as secrets in the environment."""
    from support import KEY, TOKEN

    monkeypatch.setenv("API_ENDPOINT_KEY", KEY)
    monkeypatch.setenv("HF_TOKEN", TOKEN)


@pytest.fixture
def real_data(real_data_path: Path) -> list[dict[str, Any]]:
    """The six real rows themselves (skips without ``../shared``)."""
    from support import read_rows

    return read_rows(real_data_path)


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    """A fake endpoint with short deterministic answers; ``FAILME`` rows get unusable ones."""
    from support import responder

    with FakeOpenAIServer(FakeConfig(output_words=12), responder=ArgalignResponder(responder)) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables created once (creating them takes seconds)."""
    from argalign import tracking

    where = tmp_path_factory.mktemp("mlflow-template")
    db = where / "mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    try:
        tracking.open_store()
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return db


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch, mlflow_template) -> Path:
    """A fresh copy of the template store at the URI conftest set; artifacts under tmp_path."""
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.chdir(tmp_path)
    return db


def _sample_rows() -> list[dict]:
    import json

    from argalign.stages.prepare import sample_dir

    path = sample_dir() / "deepa2-aaac01-thinking" / "train.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.fixture
def sample_rows() -> list[dict]:
    """Realistic rows that ship with the package (the bundled sample's first split)."""
    return _sample_rows()
