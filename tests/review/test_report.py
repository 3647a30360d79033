"""argalign report: one self-contained HTML file of a run, escaped, with its tables and plots;
and (when Chromium is installed) the page as a real browser renders it."""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from argalign.cli import main
from argalign.scoring.calibration import read_oracle
from argalign.stages.report import build_report
from argalign.stages.report.collect import label_pair
from argalign.stages.run.runner import run_batch
from support import CONFIG, mark_failing, run_options, write_raw, write_settings

HOSTILE = ('</script><script>document.title="pwned"</script>'
           '<img src=x onerror="document.title=\'pwned\'"> & <b>bold</b> \u2028')
CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


def _hostile(row: dict) -> dict:
    row = copy.deepcopy(row)
    user = next(m for m in row["messages"] if m["role"] == "user")
    user["content"] = f"{HOSTILE}\n{user['content']}"
    return row


@pytest.fixture
def ran(tmp_path, sample_rows, fake_server):
    """A scored run of five rows: one with hostile markup in its request, one that fails."""
    rows = [copy.deepcopy(r) for r in sample_rows[:5]]
    rows[1] = {**_hostile(rows[1]), "source_id": rows[1]["source_id"]}
    rows[3] = {**mark_failing(rows[3]), "source_id": rows[3]["source_id"]}
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): rows, (CONFIG, "test"): rows[:1]})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    summary = run_batch(run_options(data, settings, accept_if_better=False))  # every outcome shown
    return data, summary


def _rows_block(page: str, name: str = "rows") -> list:
    block = re.search(rf'<script id="{name}-data" type="application/json">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_report_is_one_escaped_self_contained_file(ran):
    data, summary = ran
    result = build_report(data)
    page = Path(result.out).read_text("utf-8")
    assert Path(result.out) == data / "report.html"  # beside cleaned/
    assert result.examples == summary.total == 6 and result.size == len(page.encode())

    # Nothing from the network; the only scripts are the two data blocks and the page's own.
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    assert page.count("<script") == 3
    assert "pwned" not in page.split('<script id="rows-data"')[0]  # not in the summary HTML
    assert "</script><script>" not in page and "<img src=x" not in page
    # The data survives the escaping intact.
    rows = _rows_block(page)
    assert len(rows) == 6 and {r["outcome"] for r in rows} == {"aligned", "failed"}
    hostile = next(r for r in rows if r["id"].endswith("/01"))
    originals = ["".join(t for op, t in p["ops"] if op != "+") if p["k"] == "diff" else p.get("head", "")
                 for m in hostile["msgs"] for p in m["parts"]]
    assert any(HOSTILE in text for text in originals)

    # Only the page's own script may run (Content-Security-Policy with its hash).
    script = re.search(r"<script>\n(.*?)\n</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(f"\n{script}\n".encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "default-src 'none'" in page

    # Summary: outcomes, the before/after table with intervals, codes, cost, plots.
    assert "<h2>Scores before and after</h2>" in page and "after − before" in page
    assert re.search(r"<td>all rows</td><td>5</td><td>1</td><td>5</td><td>[0-9.]+ \[", page)
    failed = next(r for r in rows if r["outcome"] == "failed")
    assert failed["codes"] and f"<td>{failed['codes'][0]}</td>" in page
    assert "judge (scoring both rows)" in page
    assert result.plots == ["scores_by_mode.png", "scores_by_model.png"]
    assert page.count('src="data:image/png;base64,') == 2


def test_report_command_and_an_unscored_run(tmp_path, sample_rows, fake_server, capsys):
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): sample_rows[:2]})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    run_batch(run_options(data, settings, score=False))
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", "--data", str(data), "--page", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == str(out) and summary["plots"] == []
    page = out.read_text("utf-8")
    assert "was not scored" in page and "No plots" in page
    assert len(_rows_block(page)) == 2


def test_report_of_an_unfinished_run_counts_the_missing(ran):
    data, summary = ran
    results = next((data / "runs" / summary.run / "results" / CONFIG / "train").glob("*.jsonl"))
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[1:]))
    page = Path(build_report(data).out).read_text("utf-8")
    assert "<th>missing</th>" in page and len(_rows_block(page)) == 5


# --- in a real browser -------------------------------------------------------------------------

class _Dom(HTMLParser):
    """The parts of a dumped DOM the test reads: elements by tag inside #rows, row outcomes,
    images, the status line."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.in_rows = 0
        self.tags: dict[str, int] = {}
        self.outcomes: list[str] = []
        self.images: list[str] = []
        self.texts: list[str] = []
        self.status = ""
        self.title = ""
        self._field: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("id") == "rows":
            self.in_rows = 1
        elif self.in_rows and tag not in ("br", "img"):
            self.in_rows += 1
        if self.in_rows:
            self.tags[tag] = self.tags.get(tag, 0) + 1
            if tag == "article":
                self.outcomes.append(attrs.get("data-outcome", ""))
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self._field = {"title": "title"}.get(tag) or ("status" if attrs.get("id") == "status" else None)

    def handle_endtag(self, tag):
        if self.in_rows:
            self.in_rows -= 1
        self._field = None

    def handle_data(self, data):
        if self.in_rows:
            self.texts.append(data)
        if self._field == "title":
            self.title += data
        elif self._field == "status":
            self.status += data


def _browse(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000",
         *extra, url], capture_output=True, text=True, timeout=120)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_report_in_chromium(ran, tmp_path):
    data, _ = ran
    page = Path(build_report(data).out)
    url = page.resolve().as_uri()

    dom = _Dom()
    dom.feed(_browse(url, tmp_path, "--dump-dom").stdout)
    assert dom.outcomes and dom.status.startswith("6 of 6 conversations match")
    assert dom.tags.get("ins", 0) > 0 and dom.tags.get("del", 0) > 0  # the word diff rendered
    assert dom.tags.get("details", 0) > 0  # kept parts folded
    # The hostile request is text on the page, not markup: no element came out of it.
    assert any(HOSTILE.strip() in t or 'document.title="pwned"' in t for t in dom.texts)
    assert dom.title.startswith("argalign report") and "pwned" not in dom.title
    assert all(src.startswith("data:image/png;base64,") for src in dom.images) and len(dom.images) == 2

    filtered = _Dom()
    filtered.feed(_browse(f"{url}#outcome=failed", tmp_path, "--dump-dom").stdout)
    assert filtered.outcomes == ["failed"] and filtered.status.startswith("1 of 6")
    searched = _Dom()
    searched.feed(_browse(f"{url}#search=pwned&mode=", tmp_path, "--dump-dom").stdout)
    assert len(searched.outcomes) == 1 and searched.status.startswith("1 of 6")

    shot = tmp_path / "report.png"
    _browse(url, tmp_path, "--window-size=1400,1800", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


# --- labelling --------------------------------------------------------------------------------

def _result_rows(data: Path) -> dict[str, dict]:
    """Aligned rows by id, as the run's result files hold them."""
    found = {}
    for path in (data / "runs").rglob("results/**/*.jsonl"):
        for line in path.read_text("utf-8").splitlines():
            record = json.loads(line)
            if record.get("row") is not None:
                found[record["id"]] = record["row"]
    return found


def _raw_rows(data: Path) -> dict[str, dict]:
    return {record["id"]: record["row"] for path in (data / "raw").rglob("*.jsonl")
            for record in map(json.loads, path.read_text("utf-8").splitlines())}


def _aligned_row(pair: dict) -> dict:
    """The aligned row of a label_pair(), rebuilt as the page's script does."""
    if "aligned" in pair:
        return pair["aligned"]

    def apply(text: str, pieces: list) -> str:
        lines = re.split(r"(?<=\n)", text)
        return "".join(p if isinstance(p, str) else "".join(lines[p[0]:p[1]]) for p in pieces)

    return {**pair["original"], "messages": [{**m, **{k: apply(m[k], e) for k, e in edits.items()}}
                                             for m, edits in zip(pair["original"]["messages"],
                                                                 pair["edits"])]}


def _labellable(page: str) -> list[tuple[dict, dict, dict]]:
    """(page row, aligned row, original row) of each conversation the page can label."""
    pairs = _rows_block(page, "pairs")
    return [(r, _aligned_row(pairs[r["pair"]]), pairs[r["pair"]]["original"])
            for r in _rows_block(page) if "pair" in r]


@pytest.mark.parametrize(("change", "whole"), [
    (lambda row: row["messages"][1].update(content="new request"), False),
    (lambda row: row["messages"][1].update(content="first line\n" + row["messages"][1]["content"]
                                           + "\nlast line\n"), False),
    (lambda row: row["messages"][1].update(content=""), False),
    (lambda row: row["messages"][1].update(extra=None), True),  # a field added, even a null
    (lambda row: row["messages"][1].pop("content"), True),  # a field dropped
    (lambda row: row["messages"][1].update(content=["parts"]), True),  # not text any more
    (lambda row: row["messages"].pop(), True),
    (lambda row: row.update(source_id="other"), True),
])
def test_a_label_pair_holds_the_aligned_row_exactly(sample_rows, change, whole):
    original = copy.deepcopy(sample_rows[0])
    aligned = copy.deepcopy(original)
    change(aligned)
    pair = label_pair(original, aligned)
    assert ("aligned" in pair) is whole and pair["original"] == original
    assert _aligned_row(pair) == aligned


def test_the_page_embeds_both_rows_of_each_conversation_to_label(ran):
    data, _ = ran
    page = Path(build_report(data).out).read_text("utf-8")
    aligned, raw = _result_rows(data), _raw_rows(data)
    labellable = _labellable(page)
    assert {r["id"] for r, _, _ in labellable} == set(aligned) and len(labellable) == 5
    assert all("edits" in pair for pair in _rows_block(page, "pairs"))  # kept small
    for row, after, before in labellable:
        assert (after, before) == (aligned[row["id"]], raw[row["id"]])
    assert "pair" not in next(r for r in _rows_block(page) if r["outcome"] == "failed")
    hostile = next(before for r, _, before in labellable if r["id"].endswith("/01"))
    assert any(HOSTILE in m["content"] for m in hostile["messages"])
    # Escaped all the same: no markup from the rows.
    assert "<img src=x" not in page and "</script><script>" not in page
    assert f'data-labels="{data.resolve()}#' in page and 'data-labels-file="labels-run-' in page


def _labels_like_the_page(choices: list[tuple[tuple[dict, dict, dict], str, str]]) -> str:
    """The JSONL "Download labels" writes for ((row, aligned, original), label, reason)."""
    return "".join(json.dumps({"id": r["id"], "a": after, "b": before, "better": better,
                               "by": "curator", "why": why}) + "\n"
                   for (r, after, before), better, why in choices)


def test_score_reads_the_labels_as_an_oracle(ran, tmp_path, capsys):
    data, _ = ran
    rows = _labellable(Path(build_report(data).out).read_text("utf-8"))
    choices = [(rows[0], "a", "clearer request"), (rows[1], "b", "lost the plan"),
               (rows[2], "same", "")]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(_labels_like_the_page(choices), "utf-8")
    raw = next((data / "raw").rglob("train.jsonl"))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--in", str(raw), "--oracle", str(labels), "--comparison", "structural",
                 "--out", str(out)]) == 0
    oracle = json.loads(capsys.readouterr().out)["oracle"]
    assert oracle["pairs"] == 3
    assert oracle["better_worse"]["pairs"] == 2 and oracle["same"]["pairs"] == 1
    per_pair = [json.loads(line) for line in Path(f"{out}.oracle.jsonl").read_text().splitlines()]
    assert [(p["id"], p["better"]) for p in per_pair] == [(r[0]["id"], b) for r, b, _ in choices]


# The test's own script, run after the page's: label two rows as a curator would, download, and
# put the downloaded file's text, and the link's file name, into the page.
CURATOR = """
(function () {
  var bars = document.querySelectorAll("#rows .labelling");
  function choose(bar, name) { bar.querySelector(".choice." + name).click(); }
  choose(bars[0], "same");
  choose(bars[0], "better");  // changed her mind
  var why = bars[1].querySelector(".why");
  why.value = REASON;
  why.dispatchEvent(new Event("input"));
  choose(bars[1], "worse");
  var out = document.createElement("pre");
  out.id = "downloaded";
  var create = URL.createObjectURL;
  URL.createObjectURL = function (blob) {
    blob.text().then(function (text) { out.textContent = text; document.body.appendChild(out); });
    return create.call(URL, blob);
  };
  // Headless Chromium would wait on the download itself: note the file's name instead.
  HTMLAnchorElement.prototype.click = function () {
    out.setAttribute("data-file", this.download);
    out.setAttribute("data-blob", String(this.href.indexOf("blob:") === 0));
  };
  document.getElementById("download-labels").click();
})();
"""
REASON = 'drops the plan </script><img src=x onerror="alert(1)"> "quoted"'


def _with_script(page: str, script: str) -> str:
    """``page`` with one more script at its end, allowed by its hash in the page's policy."""
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    page = page.replace("script-src 'sha256-", f"script-src 'sha256-{digest}' 'sha256-", 1)
    return page.replace("</body>", f"<script>{script}</script>\n</body>", 1)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_labelling_in_chromium_downloads_an_oracle_file(ran, tmp_path, capsys):
    data, _ = ran
    page = Path(build_report(data).out)
    rows = _labellable(page.read_text("utf-8"))
    # The curator's copy of the page: the same key in storage; the same profile is reused below.
    curator = page.with_name("curated.html")
    script = CURATOR.replace("REASON", json.dumps(REASON).replace("</", "<\\/"))
    curator.write_text(_with_script(page.read_text("utf-8"), script), "utf-8")

    dump = _browse(curator.resolve().as_uri(), tmp_path, "--dump-dom").stdout
    found = re.search(r'<pre id="downloaded" data-file="(.*?)" data-blob="true">(.*?)</pre>',
                      dump, re.S)
    assert found is not None, dump[-2000:]
    assert re.fullmatch(r"labels-run-.*\.jsonl", found.group(1))
    labels = tmp_path / found.group(1)
    labels.write_text(html.unescape(found.group(2)), "utf-8")
    pairs = read_oracle(labels)
    assert [(p.id, p.better, p.by, p.why) for p in pairs] == [
        (rows[0][0]["id"], "a", "curator", ""), (rows[1][0]["id"], "b", "curator", REASON)]
    assert [(p.a, p.b) for p in pairs] == [(after, before) for _, after, before in rows[:2]]

    # A reload keeps the choices (localStorage under the report's key and the example id).
    again = _browse(page.resolve().as_uri(), tmp_path, "--dump-dom").stdout
    assert re.search(r'<span id="labels-count">2 labelled</span>', again)
    pressed = re.findall(r'<button class="choice (\w+)" type="button" aria-pressed="true">', again)
    assert pressed == ["better", "worse"]

    out = tmp_path / "scores.jsonl"
    raw = next((data / "raw").rglob("train.jsonl"))
    assert main(["score", "--in", str(raw), "--oracle", str(labels), "--comparison", "structural",
                 "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["oracle"]["better_worse"]["pairs"] == 2
