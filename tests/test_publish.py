"""publish: the dry-run folder loads with datasets; the card; the upload path with a fake HfApi."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import httpx
import pytest
import yaml
from huggingface_hub.errors import HfHubHTTPError

from argalign.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, main
from argalign.core.errors import ConfigError, RowError, RunError
from argalign.core.jsonl import write_json_atomic, write_jsonl_atomic
from argalign.core.schema import MESSAGE_KEYS, parse_conversation
from argalign.stages import publish as publish_module
from argalign.stages.export import export
from argalign.stages.prepare import CONFIGS, SPLITS, sample_dir
from argalign.stages.publish import DRY_RUN_MARKER, PROVENANCE_TYPES, publish, upload

FAKE_TOKEN = "hf_fakeSECRETtoken123"
BASELINE = {"score": 0.4, "forward": 0.3, "backward": 0.5, "gate": "baseline"}
ALIGNED = {"score": 0.8, "forward": 0.7, "backward": 0.9, "gate": "pass"}


def _valid(rows: list) -> list[dict]:
    out = []
    for i, row in enumerate(rows):
        try:
            parse_conversation(row, str(i))
        except RowError:
            continue
        out.append(row)
    return out


def sample_rows(real_rows_path: Path) -> dict[tuple[str, str], list[dict]]:
    """A few rows per (config, split): the bundled sample, else the six real rows spread out."""
    files = {(c, s): sample_dir() / c / f"{s}.jsonl" for c in CONFIGS for s in SPLITS}
    if all(p.is_file() for p in files.values()):
        try:
            rows = {k: _valid([json.loads(line) for line in p.read_text().splitlines() if line.strip()])[:10]
                    for k, p in files.items()}
            if all(rows.values()):
                return rows
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    real = [json.loads(line) for line in real_rows_path.read_text().splitlines() if line.strip()]
    return {k: [real[i % len(real)], real[(i + 1) % len(real)]] for i, k in enumerate(files)}


def make_cleaned(data: Path, real_rows_path: Path, *, summary: bool = True) -> dict[tuple[str, str], int]:
    """``<data>/cleaned`` as the clean step writes it; returns the published rows per split."""
    counts, subsets = {}, {}
    for i, ((config, split), rows) in enumerate(sample_rows(real_rows_path).items()):
        envelopes = []
        for j, row in enumerate(rows):
            mode = "A" if (i + j) % 2 == 0 else "B"
            provenance = {"mode": mode, "model": f"model-{mode.lower()}", "program": f"zs{mode}-0123abcd",
                          "outcome": "aligned", "attempts": 1, "input_tokens": 10, "output_tokens": 20,
                          "latency_s": 0.5, "scores": {"baseline": BASELINE, "aligned": ALIGNED}}
            envelopes.append({"id": f"{config}/{split}/{j}", "config": config, "split": split, "index": j,
                              "row": row, "provenance": provenance})
        write_jsonl_atomic(data / "cleaned" / config / f"{split}.jsonl", envelopes)
        write_jsonl_atomic(data / "cleaned" / config / f"{split}.rejects.jsonl", [
            {"id": f"{config}/{split}/99", "outcome": "failed", "codes": ["LM_ERROR"], "reason": "no answer"},
            {"id": f"{config}/{split}/98", "outcome": "rejected", "codes": ["ROLE_CHANGED"], "reason": "x"}])
        subsets[f"{config}/{split}"] = {"rows_in": len(rows) + 5, "aligned": len(rows), "unchanged": 3,
                                        "failed": 1, "rejected": 1, "missing": 0, "checker_rejected": 1}
        counts[(config, split)] = len(rows)
    if summary:
        write_json_atomic(data / "cleaned" / "summary.json", {"run": None, "subsets": subsets, "total": {}})
    return counts


@pytest.fixture
def cleaned(tmp_path, real_rows_path):
    data = tmp_path / "data"
    return data, make_cleaned(data, real_rows_path)


def _load(folder: Path, name: str, split: str, cache: Path) -> datasets.Dataset:
    return datasets.load_dataset(str(folder), name, split=split, cache_dir=str(cache))


def _dry(data: Path, out: Path, **kw) -> dict:
    kw.setdefault("configs", list(CONFIGS))
    return publish(data, org="someone", repo_name="argunauts-aligned", dry_run=out, **kw)


# --- the dry-run folder ------------------------------------------------------------------

def test_dry_run_folder_loads_every_config_and_split(cleaned, tmp_path, real_rows_path):
    data, counts = cleaned
    out = tmp_path / "out"
    summary = _dry(data, out)
    assert summary.dry_run and summary.private and summary.rows == sum(counts.values())
    expected = {f"{c}-aligned/{s}-00000-of-00001.parquet" for c, s in counts} | {"README.md", DRY_RUN_MARKER}
    expected |= {"plots/scores_by_mode.png", "plots/scores_by_model.png"}  # the rows are scored
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == expected
    source = sample_rows(real_rows_path)
    for (config, split), n in counts.items():
        ds = _load(out, f"{config}-aligned", split, tmp_path / "cache")
        assert ds.num_rows == n == summary.configs[f"{config}-aligned"][split]
        assert list(ds.features["messages"].feature) == list(MESSAGE_KEYS)
        assert all(v.dtype == "string" for v in ds.features["messages"].feature.values())
        # every message round-trips exactly: nulls stay null, JSON strings stay strings
        assert [r["messages"] for r in ds] == [r["messages"] for r in source[(config, split)]]


def test_dry_run_refuses_a_folder_with_other_files(cleaned, tmp_path):
    data, _ = cleaned
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not made by a dry run"):
        _dry(data, out)
    assert (out / "notes.txt").exists()


def test_dry_run_rebuilds_its_own_folder(cleaned, tmp_path):
    data, counts = cleaned
    out = tmp_path / "out"
    _dry(data, out)
    summary = _dry(data, out, configs=[CONFIGS[0]])
    assert list(summary.configs) == [f"{CONFIGS[0]}-aligned"]
    assert sorted(p.name for p in out.iterdir()) == [DRY_RUN_MARKER, "README.md", f"{CONFIGS[0]}-aligned",
                                                     "plots"]


def test_messages_field_renames_the_column(cleaned, tmp_path):
    data, _ = cleaned
    out = tmp_path / "out"
    _dry(data, out, configs=[CONFIGS[1]], messages_field="conversations")
    ds = _load(out, f"{CONFIGS[1]}-aligned", "train", tmp_path / "cache")
    assert "conversations" in ds.column_names and "messages" not in ds.column_names
    assert not set(PROVENANCE_TYPES) & set(ds.column_names)
    assert list(ds.features["conversations"].feature) == list(MESSAGE_KEYS)
    assert 'print(ds["train"][0]["conversations"])' in (out / "README.md").read_text()


def test_with_provenance_adds_flat_columns(cleaned, tmp_path, real_rows_path):
    data, _ = cleaned
    out = tmp_path / "out"
    _dry(data, out, configs=[CONFIGS[0]], with_provenance=True)
    ds = _load(out, f"{CONFIGS[0]}-aligned", "train", tmp_path / "cache")
    for column in ("mode", "model", "program", "score_baseline", "score_aligned", "forward_baseline",
                   "forward_aligned", "backward_baseline", "backward_aligned"):
        assert column in ds.column_names
    row = ds[0]
    assert row["mode"] in ("A", "B") and row["program"].startswith("zs")
    assert (row["score_baseline"], row["score_aligned"]) == (0.4, 0.8)
    assert (row["forward_aligned"], row["backward_aligned"]) == (0.7, 0.9)
    source_columns = set(sample_rows(real_rows_path)[(CONFIGS[0], "train")][0]) - {"messages"}
    assert source_columns <= set(ds.column_names)  # source_id / example_id kept


def test_provenance_column_clash_is_a_config_error(tmp_path, real_rows_path):
    data = tmp_path / "data"
    row = json.loads(real_rows_path.read_text().splitlines()[1])
    write_jsonl_atomic(data / "cleaned" / CONFIGS[0] / "train.jsonl",
                       [{"id": "a", "row": {**row, "mode": "x"}, "provenance": {}}])
    write_json_atomic(data / "cleaned" / "summary.json",
                      {"subsets": {f"{CONFIGS[0]}/train": {"rows_in": 1, "aligned": 1}}})
    with pytest.raises(ConfigError, match="mode"):
        _dry(data, tmp_path / "out", configs=[CONFIGS[0]], with_provenance=True)


# --- the card ----------------------------------------------------------------------------

def _card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def test_card_lists_every_config_with_scores_and_counts(cleaned, tmp_path):
    data, counts = cleaned
    out = tmp_path / "out"
    _dry(data, out)
    meta, body = _card(out)
    assert meta["license"] == "odc-by"
    assert meta["source_datasets"] == ["DebateLabKIT/argunauts-thinking"]
    by_name = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert set(by_name) == {f"{c}-aligned" for c in CONFIGS}
    for name, files in by_name.items():
        assert [f["split"] for f in files] == list(SPLITS)
        assert all((out / f["path"]).is_file() for f in files)
        assert f"`{name}`" in body
    # Before/after over the published (aligned) rows, per config, mode and model; the rows
    # set aside (the rejects files) are counted beside them.
    assert "| group | aligned | failed | rejected | scored | before | after | after − before |" in body
    assert ("| all rows | 120 | 12 | 12 | 120 | 0.400 [0.400, 0.400] | 0.800 [0.800, 0.800] "
            "| +0.400 [+0.400, +0.400] |") in body
    assert f"| config `{CONFIGS[0]}` | 30 | 3 | 3 | 30 | 0.400 [" in body
    assert "| mode `A` | 60 | 0 | 0 | 60 |" in body and "| model `model-b` | 60 |" in body
    assert "forward 0.300 [0.300, 0.300] → 0.700 [0.700, 0.700] (+0.400 [+0.400, +0.400])" in body
    assert "backward 0.500 [0.500, 0.500] → 0.900 [0.900, 0.900]" in body
    # The plots are uploaded with the data and linked from the card.
    for kind in ("mode", "model"):
        plot = out / "plots" / f"scores_by_{kind}.png"
        assert plot.read_bytes()[:4] == b"\x89PNG"
        assert f"![Scores before and after, by {kind}](plots/scores_by_{kind}.png)" in body
    assert "zsA-0123abcd" in body and "zsB-0123abcd" in body and "model-a" in body
    assert "| aligned | unchanged | failed | rejected | missing | published |" in body  # summary.json
    n = counts[(CONFIGS[1], "test")]
    assert f"| `{CONFIGS[1]}-aligned` | test | {n} | 3 | 1 | 1 | 0 | {n} |" in body
    assert "byte-identical" in body and "ODC-BY" in body
    assert f'load_dataset("someone/argunauts-aligned", "{CONFIGS[0]}-aligned")' in body


@pytest.mark.parametrize("damage", ["no summary", "fewer rows than the summary", "a listed file gone"])
def test_publish_refuses_what_an_unfinished_clean_left(tmp_path, real_rows_path, damage):
    data = tmp_path / "data"
    make_cleaned(data, real_rows_path)
    path = data / "cleaned" / CONFIGS[2] / "train.jsonl"
    if damage == "no summary":
        (data / "cleaned" / "summary.json").unlink()
    elif damage == "fewer rows than the summary":
        path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    else:
        path.unlink()
    with pytest.raises(RunError, match="clean"):
        _dry(data, tmp_path / "out")
    assert main(["publish", "--data", str(data), "--org", "someone", "--repo-name", "x",
                 "--dry-run", str(tmp_path / "out2")]) == EXIT_FAILED


def test_from_merged_publishes_only_aligned_rows(tmp_path, real_rows_path, caplog):
    data = tmp_path / "data"
    rows = [json.loads(line) for line in real_rows_path.read_text().splitlines()]
    outcomes = ("aligned", "unchanged", "failed", "aligned", "rejected", "aligned")
    records = [{"id": str(i), "config": CONFIGS[3], "split": "train", "index": i, "outcome": outcome,
                "row": rows[i] if outcome in ("aligned", "unchanged") else None,
                "mode": "B", "model": "m", "program": "zsB-1"}
               for i, outcome in enumerate(outcomes)]
    write_jsonl_atomic(data / "merged" / CONFIGS[3] / "train.jsonl", records)
    write_json_atomic(data / "merged" / "summary.json", {"run": "r", "subsets": {f"{CONFIGS[3]}/train": {}}})
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="argalign.stages.publish"):
        summary = _dry(data, out, configs=[CONFIGS[3]], from_merged=True)
    assert summary.configs == {f"{CONFIGS[3]}-aligned": {"train": 3}}
    assert summary.source == "merged"
    assert any("merged" in r.getMessage() for r in caplog.records)
    _, body = _card(out)
    assert f"| `{CONFIGS[3]}-aligned` | train | 3 | 1 | 1 | 1 | 3 |" in body  # a u f r published


# --- the Hub: token, fake HfApi, retries -------------------------------------------------

class FakeApi:
    """Records calls; ``fail`` holds exceptions to raise from upload_folder first."""

    def __init__(self, fail: list[Exception] | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.fail = list(fail or [])
        self.uploaded: list[str] = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))
        if self.fail:
            raise self.fail.pop(0)
        folder = Path(kw["folder_path"])
        self.uploaded = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

        class Info:
            commit_url = f"https://huggingface.co/datasets/{kw['repo_id']}/commit/abc"
        return Info()


def _http_error(status: int, text: str = "boom") -> HfHubHTTPError:
    request = httpx.Request("POST", "https://huggingface.co/api/datasets/x/commit/main")
    return HfHubHTTPError(text, response=httpx.Response(status, request=request))


def test_publish_without_token_fails_before_any_work(cleaned, tmp_path, monkeypatch):
    data, _ = cleaned
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here or above

    def no_build(*a, **kw):
        raise AssertionError("the folder must not be built without a token")

    monkeypatch.setattr(publish_module, "build_folder", no_build)
    with pytest.raises(ConfigError, match="HF_TOKEN is not set"):
        publish(data, org="someone", repo_name="x", configs=list(CONFIGS))
    code = main(["publish", "--data", str(data), "--org", "someone", "--repo-name", "x"])
    assert code == EXIT_CONFIG


def test_upload_path_with_a_fake_api(cleaned):
    data, counts = cleaned
    api = FakeApi()
    summary = publish(data, org="someone", repo_name="argunauts-aligned", configs=list(CONFIGS), api=api)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    create = api.calls[0][1]
    assert create == {"repo_id": "someone/argunauts-aligned", "repo_type": "dataset", "private": True,
                      "exist_ok": True}
    assert api.calls[1][1]["repo_type"] == "dataset"
    assert "README.md" in api.uploaded and "plots/scores_by_mode.png" in api.uploaded
    assert len(api.uploaded) == len(counts) + 3  # the parquet files, the card and two plots
    assert summary.commit_url.endswith("/commit/abc") and not summary.dry_run


def test_public_flag_creates_a_public_repo(cleaned):
    data, _ = cleaned
    api = FakeApi()
    publish(data, org="someone", repo_name="x", configs=[CONFIGS[0]], public=True, api=api)
    assert api.calls[0][1]["private"] is False


def test_upload_retries_a_transient_error(tmp_path):
    api, slept = FakeApi(fail=[_http_error(503)]), []
    (tmp_path / "README.md").write_text("card")
    url = upload(tmp_path, "someone/x", private=True, api=api, sleep=slept.append)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder", "upload_folder"]
    assert slept == [2.0] and url.endswith("/commit/abc")


@pytest.mark.parametrize(("status", "error"), [(400, RunError), (401, ConfigError), (403, ConfigError)])
def test_upload_does_not_retry_a_permanent_error(tmp_path, status, error):
    api, slept = FakeApi(fail=[_http_error(status)]), []
    with pytest.raises(error):
        upload(tmp_path, "someone/x", private=True, api=api, sleep=slept.append)
    assert slept == [] and len(api.calls) == 2


def test_upload_gives_up_after_its_retries(tmp_path):
    api, slept = FakeApi(fail=[_http_error(502)] * 3 + [ConnectionError("reset")]), []
    with pytest.raises(RunError, match="after 3 attempt"):
        upload(tmp_path, "someone/x", private=True, api=api, sleep=slept.append, retries=3)
    assert slept == [2.0, 4.0]


def test_token_appears_in_no_file_log_or_error(cleaned, tmp_path, monkeypatch, caplog, real_rows_path):
    data, _ = cleaned
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level("DEBUG")
    monkeypatch.setattr(publish_module.time, "sleep", lambda s: None)
    _dry(data, tmp_path / "dry", with_provenance=True)
    api = FakeApi(fail=[_http_error(503, f"bad {FAKE_TOKEN}"), _http_error(400, f"token {FAKE_TOKEN}")])
    with pytest.raises(RunError) as caught:
        publish(data, org="someone", repo_name="x", configs=[CONFIGS[0]], api=api)
    assert FAKE_TOKEN not in str(caught.value) and "[redacted]" in str(caught.value)
    assert caught.value.__cause__ is None  # the leaking Hub error is not chained
    export(data, tmp_path / "sharegpt", "sharegpt")
    export(real_rows_path, tmp_path / "openai", "openai")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 20
    assert all(FAKE_TOKEN.encode() not in p.read_bytes() for p in written)
    assert FAKE_TOKEN not in caplog.text


def test_cli_publish_dry_run(cleaned, tmp_path, capsys):
    data, counts = cleaned
    code = main(["publish", "--data", str(data), "--org", "someone", "--repo-name", "x",
                 "--configs", f"{CONFIGS[0]},{CONFIGS[1]}", "--messages-field", "conversations",
                 "--with-provenance", "--dry-run", str(tmp_path / "out")])
    assert code == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["configs"]) == {f"{CONFIGS[0]}-aligned", f"{CONFIGS[1]}-aligned"}
    assert summary["rows"] == sum(n for (c, _), n in counts.items() if c in CONFIGS[:2])


# --- hostile folders and rows (#12 items 9 and 10) ------------------------------------------

@pytest.mark.parametrize("contents", [["README.md"], ["x-aligned/"], ["README.md", "x-aligned/"],
                                      ["README.md", "y-aligned/", "x-aligned/train.parquet"]])
def test_dry_run_never_touches_a_folder_it_did_not_make(cleaned, tmp_path, contents):
    data, _ = cleaned
    out = tmp_path / "out"
    out.mkdir()
    for name in contents:
        target = out / name
        if name.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("the user's own " + name)
    before = sorted((p.relative_to(out).as_posix(), p.read_text() if p.is_file() else None)
                    for p in out.rglob("*"))
    with pytest.raises(ConfigError, match="not made by a dry run"):
        _dry(data, out)
    assert main(["publish", "--data", str(data), "--org", "o", "--repo-name", "x",
                 "--dry-run", str(out)]) == EXIT_CONFIG
    assert sorted((p.relative_to(out).as_posix(), p.read_text() if p.is_file() else None)
                  for p in out.rglob("*")) == before


def _cleaned_split(data: Path, config: str, split: str, rows: list[dict]) -> None:
    envelopes = [{"id": f"{split}-{i}", "config": config, "split": split, "index": i, "row": row,
                  "provenance": {"mode": "B", "model": "m", "program": "p"}} for i, row in enumerate(rows)]
    write_jsonl_atomic(data / "cleaned" / config / f"{split}.jsonl", envelopes)


def test_every_split_unknown_message_keys_and_column_types_are_published(tmp_path, sample_rows):
    data, config = tmp_path / "data", CONFIGS[0]
    rows = json.loads(json.dumps(sample_rows[:4]))
    rows[0]["messages"][1]["lang"] = "en"           # a message key beyond the six
    rows[1]["messages"][0]["weight"] = 2
    rows[0]["score"], rows[1]["score"] = 1, 2        # ints stay ints
    rows[2]["mixed"], rows[3]["mixed"] = 1, 1.5      # mixed types: JSON text, not 1 -> 1.0
    _cleaned_split(data, config, "train", rows[:2])
    _cleaned_split(data, config, "dev", rows[2:])    # a split beyond train/validation/test
    write_json_atomic(data / "cleaned" / "summary.json", {"subsets": {
        f"{config}/train": {"rows_in": 2, "aligned": 2}, f"{config}/dev": {"rows_in": 2, "aligned": 2}}})
    out = tmp_path / "out"
    summary = _dry(data, out, configs=[config])
    assert summary.configs == {f"{config}-aligned": {"train": 2, "dev": 2}}
    train = _load(out, f"{config}-aligned", "train", tmp_path / "cache")
    dev = _load(out, f"{config}-aligned", "dev", tmp_path / "cache")
    assert list(train.features["messages"].feature)[:6] == list(MESSAGE_KEYS)
    assert train[0]["messages"][1]["lang"] == "en" and train[0]["messages"][0]["lang"] is None
    assert train[1]["messages"][0]["weight"] == 2
    assert [r["score"] for r in train] == [1, 2] and train.features["score"].dtype == "int64"
    assert [r["mixed"] for r in dev] == ["1", "1.5"]
    for got, row in zip([*train, *dev], rows):
        assert [{k: m[k] for k in MESSAGE_KEYS} for m in got["messages"]] == [
            {k: m[k] for k in MESSAGE_KEYS} for m in row["messages"]]


def test_publish_streams_its_rows(tmp_path, sample_rows):
    """Peak Python memory stays far below the size of the split (bench/scale.py measures RSS)."""
    import tracemalloc

    from argalign.stages.hub_folder import build_folder

    data, config = tmp_path / "data", CONFIGS[0]
    rows = [dict(sample_rows[i % len(sample_rows)], source_id=f"s{i}") for i in range(6000)]
    _cleaned_split(data, config, "train", rows)
    write_json_atomic(data / "cleaned" / "summary.json",
                      {"subsets": {f"{config}/train": {"rows_in": 6000, "aligned": 6000}}})
    size = (data / "cleaned" / config / "train.jsonl").stat().st_size
    assert size > 20_000_000
    (tmp_path / "out").mkdir()
    tracemalloc.start()
    try:
        built = build_folder(data, tmp_path / "out", "o/x", [config])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert built.counts == {f"{config}-aligned": {"train": 6000}}
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte split"


def test_verify_reads_every_row_back(cleaned, tmp_path):
    from argalign.stages.hub_folder import verify_folder

    data, counts = cleaned
    out = tmp_path / "out"
    summary = _dry(data, out, configs=[CONFIGS[0]])
    name = f"{CONFIGS[0]}-aligned"
    verify_folder(out, summary.configs, "messages")
    wrong = {name: {**summary.configs[name], "train": summary.configs[name]["train"] + 1}}
    with pytest.raises(RunError, match="rows, expected"):
        verify_folder(out, wrong, "messages")
    with pytest.raises(RunError, match="message schema"):
        verify_folder(out, summary.configs, "conversations")
    with pytest.raises(RunError, match="does not load"):
        verify_folder(out, {"nope-aligned": {"train": 1}}, "messages")


def test_card_of_an_unscored_run_says_so():
    from argalign.scoring.scoreboard import Scoreboard
    from argalign.stages.card import ConfigStats, render_card

    board = Scoreboard()
    board.add(config="c", mode="A", model="m", outcome="aligned", scores=None)
    body = render_card("o/n", [ConfigStats("c")], scores=board.as_dict())
    assert "did not score them" in body and "| all rows |" not in body
    assert "![" not in body  # no plot to link
