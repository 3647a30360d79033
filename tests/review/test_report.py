"""argalign report: one self-contained HTML file of a run, escaped, with its tables and plots;
and (when Chromium is installed) the page as a real browser renders it."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from argalign.cli import main
from argalign.review import build_report
from argalign.run.runner import run_batch
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


def _rows_block(page: str) -> list[dict]:
    block = re.search(r'<script id="rows-data" type="application/json">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_report_is_one_escaped_self_contained_file(ran):
    data, summary = ran
    result = build_report(data)
    page = Path(result["out"]).read_text("utf-8")
    assert Path(result["out"]) == data / "report.html"  # beside cleaned/
    assert result["examples"] == summary["total"] == 6 and result["bytes"] == len(page.encode())

    # Nothing from the network; the only scripts are the data block and the page's own.
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    assert page.count("<script") == 2
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
    assert result["plots"] == ["scores_by_mode.png", "scores_by_model.png"]
    assert page.count('src="data:image/png;base64,') == 2


def test_report_command_and_an_unscored_run(tmp_path, sample_rows, fake_server, capsys):
    data = write_raw(tmp_path / "data", {(CONFIG, "train"): sample_rows[:2]})
    settings = write_settings(tmp_path / "s.yaml", fake_server.url)
    run_batch(run_options(data, settings, score=False))
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", "--data", str(data), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == str(out) and summary["plots"] == []
    page = out.read_text("utf-8")
    assert "was not scored" in page and "No plots" in page
    assert len(_rows_block(page)) == 2


def test_report_of_an_unfinished_run_counts_the_missing(ran):
    data, summary = ran
    results = next((data / "runs" / summary["run"] / "results" / CONFIG / "train").glob("*.jsonl"))
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[1:]))
    page = Path(build_report(data)["out"]).read_text("utf-8")
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
    page = Path(build_report(data)["out"])
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
