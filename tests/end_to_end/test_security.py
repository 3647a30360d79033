"""Secrets stay in memory and untrusted row text stays data.

Keys: with recognisable fake secrets in the environment and a model whose ``api_key_env``
names one, the key reaches the endpoint (Authorization header) and nowhere else: not the
logs (caplog, and the stderr of ``argalign -v`` subprocesses), MLflow params, tags and
artifacts, result files, the dataset card, exception messages, nor any byte of any file
the pipeline and ``publish --dry-run`` wrote. One row makes the endpoint echo the key in its
error message, as some servers do. Publishing is private unless ``--public``.

Untrusted input: rows whose text holds format fields, Python and shell payloads, and whose
``source_id`` is a path that climbs out of the data directory: nothing is executed, no row
text is formatted, and no file is written outside the data directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from argalign import cli
from argalign.core.errors import RunError
from argalign.core.jsonl import iter_jsonl
from argalign.stages.run.runner import run_batch
from argalign.testing.argalign_responder import ArgalignResponder, default_responder
from argalign.testing.fake_openai import FakeConfig, FakeOpenAIServer
from support import (
    CONFIG,
    make_rows,
    read_rows,
    results,
    run_options,
    write_raw,
    write_settings,
)

API_KEY = "sk-test-SECRET-4f9a1c7e2b5d"
HF_TOKEN = "hf_SECRETtoken9d8c7b6a5f4e"
OPENAI_KEY = "sk-openai-SECRET-0e1d2c3b4a59"
SECRETS = (API_KEY, HF_TOKEN, OPENAI_KEY)
LEAK_MARKER = "ECHO-THE-KEY"


def echoing_responder(fields: dict[str, str], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Short answers; for a marked row, an error that quotes the key (answered as HTTP 500)."""
    if any(LEAK_MARKER in str(m.get("content")) for m in messages):
        raise RuntimeError(f"invalid api key {os.environ['API_ENDPOINT_KEY']} for this model")
    return default_responder(fields, messages, words=12)


@pytest.fixture
def secrets_env(monkeypatch):
    monkeypatch.setenv("API_ENDPOINT_KEY", API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


@pytest.fixture
def echo_server():
    responder = ArgalignResponder(echoing_responder)
    with FakeOpenAIServer(FakeConfig(output_words=12), responder=responder) as server:
        yield server


def _source(path: Path, real_rows_path: Path, count: int = 5) -> Path:
    rows = make_rows(read_rows(real_rows_path), count, "sec")
    user = next(m for m in rows[0]["messages"] if m["role"] == "user")
    user["content"] = f"{LEAK_MARKER} {user['content']}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _argalign(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "argalign.cli", "-v", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def _files_with_secrets(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s[:12]}..." for s in SECRETS if s.encode() in data]
    return found


def test_keys_reach_the_endpoint_and_nothing_else(tmp_path, real_rows_path, secrets_env, mlflow_store,
                                                  echo_server):
    settings = write_settings(tmp_path / "settings.yaml", echo_server.url, api_key_env="API_ENDPOINT_KEY",
                              num_retries=0, concurrency=2)
    source = _source(tmp_path / "source.jsonl", real_rows_path)

    ran = _argalign("pipeline", "--source", str(source), "--configs", CONFIG, "--splits", "train", "--all",
                    "--data", "data", "--settings", str(settings), "--no-progress",
                    "--publish-dry-run", "hub",
                    cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]

    # The key was really sent, only where the config sends it, and only that key.
    assert echo_server.stats.authorizations == {f"Bearer {API_KEY}": echo_server.stats.total}
    # The endpoint's error quoted the key; the failure is kept, with the key redacted.
    records = {r["id"]: r for r in results(tmp_path / "data" / "runs" / "run-AB-fake-s0")}
    leaked = records["sec-000"]
    assert leaked["outcome"] == "failed" and "[redacted]" in leaked["reason"]
    assert (tmp_path / "hub" / "README.md").is_file()
    for stream in (ran.stdout, ran.stderr):
        assert not [s for s in SECRETS if s in stream]
    assert "DEBUG" in ran.stderr  # -v: the most talkative logs were checked

    # MLflow: params, tags and artifacts of the run, wherever its artifact store is.
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{mlflow_store}")
    experiment = client.get_experiment_by_name("argalign-run")
    (run,) = client.search_runs([experiment.experiment_id])
    texts = [json.dumps(run.data.params), json.dumps(run.data.tags)]
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"summary.json", "failures.jsonl"}
    texts += [p.read_bytes().decode("utf-8", "replace") for p in artifacts.rglob("*") if p.is_file()]
    assert not [s for s in SECRETS for text in texts if s in text]
    # Every byte of every file written: data, card, parquet, the MLflow database and artifacts.
    assert artifacts.is_relative_to(tmp_path)
    assert _files_with_secrets(tmp_path) == []


def test_logs_and_errors_keep_keys_out(tmp_path, real_rows_path, secrets_env, echo_server, caplog):
    caplog.set_level("DEBUG")
    rows = make_rows(read_rows(real_rows_path), 3, "sec")
    user = next(m for m in rows[1]["messages"] if m["role"] == "user")
    user["content"] = f"{LEAK_MARKER} {user['content']}"
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows})
    settings = write_settings(tmp_path / "settings.yaml", echo_server.url, api_key_env="API_ENDPOINT_KEY",
                              num_retries=0, concurrency=1)

    with pytest.raises(RunError) as caught:
        run_batch(run_options(data, settings, modes=("B",), max_errors=0))

    assert echo_server.stats.authorizations.get(f"Bearer {API_KEY}")
    chain, error = [], caught.value
    while error is not None:  # the message and every cause behind it
        chain.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    # The fake endpoint's own log (the server side, which raised the error) is left out.
    logged = [caplog.handler.format(r) for r in caplog.records if not r.name.startswith("argalign.testing")]
    assert any("[redacted]" in line for line in logged)
    for text in [*chain, *logged]:
        assert not [s for s in SECRETS if s in text], text
    assert "[redacted]" in json.dumps(results(data / "runs" / "run-B-fake-s0"))
    assert _files_with_secrets(tmp_path) == []


class FakeHfApi:
    """Records what publish asks of the Hub."""

    instances: list[FakeHfApi] = []

    def __init__(self, token: str | None = None, **kwargs: Any):
        self.token, self.calls = token, []
        FakeHfApi.instances.append(self)

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kwargs: Any) -> Any:
        self.calls.append(("upload_folder", kwargs.get("repo_id"), kwargs))
        return type("Commit", (), {"commit_url": "https://huggingface.co/commit/1"})()


@pytest.fixture
def finished_pipeline(tmp_path, real_rows_path, monkeypatch) -> list[str]:
    """A finished pipeline; returns its arguments (rerunning them makes no LM call)."""
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in make_rows(read_rows(real_rows_path), 4, "pub")))
    with FakeOpenAIServer(FakeConfig(output_words=12), responder=ArgalignResponder()) as server:
        settings = write_settings(tmp_path / "settings.yaml", server.url, concurrency=4)
        args = ["pipeline", "--source", str(source), "--configs", CONFIG, "--splits", "train", "--all",
                "--data", "data", "--settings", str(settings), "--no-track", "--no-progress"]
        assert cli.main(args) == 0
    return args


@pytest.mark.parametrize("command", ["publish", "pipeline"])
@pytest.mark.parametrize("flags, private", [([], True), (["--public"], False)])
def test_publish_is_private_unless_public(finished_pipeline, secrets_env, monkeypatch, capsys, command,
                                          flags, private):
    import huggingface_hub

    FakeHfApi.instances.clear()
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    capsys.readouterr()
    if command == "publish":
        argv = ["publish", "--data", "data", "--org", "someone", "--repo-name", "aligned",
                "--configs", CONFIG]
    else:
        argv = [*finished_pipeline, "--publish-repo", "someone/aligned"]
    assert cli.main([*argv, *flags]) == 0
    (api,) = FakeHfApi.instances
    assert api.token == HF_TOKEN  # the token goes to the Hub client, and only there
    (create,) = [c for c in api.calls if c[0] == "create_repo"]
    assert create[1] == "someone/aligned"
    assert create[2]["private"] is private and create[2]["exist_ok"] is True
    out = capsys.readouterr()
    if command == "publish":
        assert json.loads(out.out)["private"] is private
    assert HF_TOKEN not in out.out + out.err


# --- untrusted row text ---------------------------------------------------------------------

PAYLOADS = ("{__import__('os').system('touch PWNED')}", "{0.__class__}", "{row[messages]}",
            "%(secret)s %s", "$(touch PWNED); `touch PWNED`; echo x | sh && rm -rf ./* > /dev/null")
HOSTILE_IDS = ("../../etc/passwd", "../../../tmp/evil", "/tmp/evil-absolute", "$(touch PWNED)",
               "{0.__class__}", "..\\..\\evil", "a/../../../evil")
PAYLOAD_TEXT = " ".join(PAYLOADS)


def hostile_rows(real_rows_path: Path) -> list[dict[str, Any]]:
    rows = make_rows(read_rows(real_rows_path)[3:5], len(HOSTILE_IDS), "x")
    for row, hostile in zip(rows, HOSTILE_IDS):
        row["source_id"] = hostile
        for m in row["messages"]:
            if m["role"] == "user":
                m["content"] = f"{PAYLOAD_TEXT}\n\n{m['content']}"
            if m["role"] == "assistant" and m["thinking"]:
                m["thinking"] = f"{m['thinking']}\n{PAYLOAD_TEXT}"
            if m["role"] == "system":
                m["content"] = f"{m['content']} {PAYLOAD_TEXT}"
    return rows


def test_hostile_rows_are_data_not_code_nor_paths(tmp_path, real_rows_path):
    prompts: list[str] = []

    def parroting(fields: dict[str, str], messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Keeps every prompt; answers with the payloads in every text field."""
        prompts.append(json.dumps(messages))
        values = default_responder(fields, messages, words=4)
        return {k: f"{v} {PAYLOADS[0]} {PAYLOADS[1]}" if isinstance(v, str) else v
                for k, v in values.items()}

    work = tmp_path / "work"
    work.mkdir()
    source = tmp_path / "hostile.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in hostile_rows(real_rows_path)), "utf-8")
    outside = [Path("/tmp/evil"), Path("/tmp/evil-absolute"), Path("/tmp/PWNED"), Path("/etc/passwd")]
    before = {p: p.stat().st_mtime_ns if p.exists() else None for p in outside}
    with FakeOpenAIServer(FakeConfig(), responder=ArgalignResponder(parroting)) as server:
        settings = write_settings(tmp_path / "settings.yaml", server.url, concurrency=2)
        ran = subprocess.run(
            [sys.executable, "-m", "argalign.cli", "pipeline", "--source", str(source), "--configs", CONFIG,
             "--splits", "train", "--all", "--data", "data", "--settings", str(settings), "--no-track",
             "--no-progress", "--no-accept", "--publish-dry-run", "data/hub"],
            cwd=work, env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr[-3000:]

    # Nothing ran: no PWNED file anywhere, nothing outside touched.
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()
    assert {p: p.stat().st_mtime_ns if p.exists() else None for p in outside} == before
    # Every file written is under the data directory; no file or folder is named after an id.
    written = [p.relative_to(work) for p in work.rglob("*") if p.is_file()]
    assert written and all(p.parts[0] == "data" for p in written), written
    names = {part for p in work.rglob("*") for part in p.relative_to(work).parts}
    assert not names & {"evil", "evil-absolute", "passwd", "etc", "..", "{0.__class__}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.jsonl", "settings.yaml", "work"]

    # Row text reached the model as it is: no format field was filled in.
    sent = "\n".join(prompts)
    assert prompts and all(json.dumps(p)[1:-1] in sent for p in PAYLOADS)
    assert "<class 'int'>" not in sent and "<class 'str'>" not in sent
    # The ids and the payloads come out verbatim, in every stage's output.
    merged = [r for _, r in iter_jsonl(work / "data" / "merged" / CONFIG / "train.jsonl")]
    assert sorted(r["id"] for r in merged) == sorted(HOSTILE_IDS)
    cleaned = [r for _, r in iter_jsonl(work / "data" / "cleaned" / CONFIG / "train.jsonl")]
    assert cleaned, "some hostile rows were aligned and kept"
    for record in cleaned:
        text = json.dumps(record["row"])
        assert all(json.dumps(p)[1:-1] in text for p in PAYLOADS)
        assert "<class 'int'>" not in text
    card = (work / "data" / "hub" / "README.md").read_text()
    assert "<class" not in card


URL_PASSWORD = "SECRETPASS-7c1e9a"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_password_in_an_endpoint_url_is_written_nowhere(tmp_path, real_rows_path, mlflow_store):
    """``http://user:PASS@host`` in api_base, and the endpoint is down: every failure quotes
    the URL, and the password reaches no file, no MLflow record and no line of the -v log."""
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): make_rows(read_rows(real_rows_path), 3, "url")})
    conf = tmp_path / "conf"  # the settings file itself holds the password
    conf.mkdir()
    settings = write_settings(conf / "settings.yaml",
                              f"http://user:{URL_PASSWORD}@127.0.0.1:{_closed_port()}/v1",
                              num_retries=0, concurrency=1, timeout_s=5)

    ran = _argalign("run", "--data", str(data), "--settings", str(settings), "--no-progress",
                    "--max-errors", "10", cwd=tmp_path)

    # Every example failed the same way (the endpoint is down): nothing aligned, exit 1.
    assert ran.returncode == 1, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr and "DEBUG" in ran.stderr
    records = results(data / "runs" / "run-AB-fake-s0")
    assert len(records) == 3 and {r["outcome"] for r in records} == {"failed"}
    assert all("***@127.0.0.1" in r["reason"] for r in records), records[0]["reason"]
    for stream in (ran.stdout, ran.stderr):
        assert URL_PASSWORD not in stream
    assert (data / "runs" / "run-AB-fake-s0" / "failures.jsonl").is_file()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(conf)]
    assert mlflow_store in written
    assert [p for p in written if URL_PASSWORD.encode() in p.read_bytes()] == []


def test_a_password_in_the_tracking_uri_is_not_printed(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql://u:{URL_PASSWORD}@db.example/mlflow")
    assert cli.main(["compare"]) == cli.EXIT_CONFIG
    assert "MLFLOW_TRACKING_URI='postgresql://***@db.example/mlflow'" in caplog.text
    assert URL_PASSWORD not in caplog.text
