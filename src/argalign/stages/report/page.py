"""The report as one self-contained HTML file: summary tables, plots, and every conversation.

Input: a :class:`~argalign.stages.report.collect.RunView` and the plots' figures. Output: the HTML
text. Nothing is fetched when it opens: the CSS and the script are inline
(``assets/report.css``, ``assets/report.js``), the plots are PNG data URIs, and the rows are one
JSON block that the script renders a page at a time (so 10,000 conversations stay usable).

Text from rows is untrusted. The summary is built here with every value escaped
(:func:`html.escape`); the rows travel as JSON inside ``<script type="application/json">``
with ``<``, ``>`` and ``&`` written as ``\\u003c`` ... (so no ``</script>`` can end the block),
and the script only ever puts row text into the page as text nodes, never as HTML. A
Content-Security-Policy allows no network access and runs only the page's own script (by its
hash).

Labelling: each conversation with an aligned row has buttons better / same / worse (the
aligned row against its original) and a reason; the script keeps them in the browser's
localStorage under the report's key (the data folder and the run) and the example, and
"Download labels" writes them as an oracle file (:mod:`argalign.scoring.calibration`). Both rows of
each such conversation travel in a second JSON block, escaped the same way, which the script
parses only when labels are downloaded (it is as large as the rows block).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from argalign import __version__
from argalign.core.records import OUTCOMES
from argalign.scoring.scoreboard import interval, rows, stored_estimate
from argalign.stages.report.collect import RunView

ASSETS = "stages/report/assets"


def _asset(name: str) -> str:
    return (resources.files("argalign") / ASSETS / name).read_text(encoding="utf-8")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(header: Iterable[str], body: Iterable[Iterable[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    lines = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in body)
    return f'<table class="{_esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>'


def _outcome_names(counts: Iterable[Mapping[str, int]]) -> list[str]:
    seen = {o for c in counts for o, n in c.items() if n}
    return [o for o in (*OUTCOMES, "missing") if o in seen] + sorted(seen - {*OUTCOMES, "missing"})


def outcome_tables(view: RunView, table_dict: Mapping[str, Any]) -> str:
    """Outcome counts per (config, split), per mode and per model."""
    names = _outcome_names([*view.subsets.values(), (table_dict.get("all") or {}).get("outcomes", {})])
    parts = ["<h3>Per config and split</h3>", table(
        ["config", "split", *names, "examples"],
        [[*key.split("/", 1), *(counts.get(o, 0) for o in names), sum(counts.values())]
         for key, counts in sorted(view.subsets.items())])]
    for kind in ("mode", "model"):
        groups = table_dict.get(f"by_{kind}") or {}
        parts += [f"<h3>Per {kind}</h3>", table(
            [kind, *names], [[name, *(g["outcomes"].get(o, 0) for o in names)]
                             for name, g in sorted(groups.items())])]
    return "\n".join(parts)


def score_section(table_dict: Mapping[str, Any]) -> str:
    everything = table_dict.get("all") or {}
    if not everything.get("scored"):
        return "<p>This run was not scored (<code>--no-score</code>): no before/after table.</p>"
    groups = rows(table_dict)
    names = _outcome_names([g.outcomes for g in groups])
    body = [["all rows" if g.kind == "all" else f"{g.kind} {g.name}",
             *(g.outcomes.get(o, 0) for o in names), g.scored, g.before, g.after, g.difference]
            for g in groups]
    parts = [f"{p}: {interval(stored_estimate(everything[p]['before']))} → "
             f"{interval(stored_estimate(everything[p]['after']))} "
             f"({interval(stored_estimate(everything[p]['difference']), signed=True)})"
             for p in ("forward", "backward", "coherence") if p in everything]
    return ("<p>Mutual predictability of the original row (<em>before</em>) and the aligned row "
            "(<em>after</em>), means over the rows that ended <code>aligned</code> and were "
            "scored, with 95% bootstrap intervals over conversations; the other outcomes are "
            "counted beside them.</p>"
            + table(["group", *names, "scored", "before", "after", "after − before"], body, "scores")
            + (f"<p>Parts over all scored rows: {_esc('; '.join(parts))}.</p>" if parts else ""))


def code_section(view: RunView) -> str:
    if not view.codes:
        return "<p>No codes: no example failed, was rejected, or tripped a check.</p>"
    from argalign.core.codes import catalogue

    known = catalogue()
    return table(["code", "kind", "examples", "meaning"],
                 [[code, known.get(code, ("?", ""))[0], n, known.get(code, ("", "not in the catalogue"))[1]]
                  for code, n in view.codes.most_common()])


def usage_section(view: RunView) -> str:
    u, n = view.usage, max(1, len(view.rows))
    lines = [["aligning LM", u.calls, u.input_tokens, u.output_tokens,
              f"{u.calls / n:.2f}", f"{u.seconds:.1f} s ({u.seconds / n:.2f} s per example)"]]
    if u.judge_calls:
        lines.append(["judge (scoring both rows)", u.judge_calls, u.judge_input_tokens,
                      u.judge_output_tokens, f"{u.judge_calls / n:.2f}",
                      f"{u.judge_seconds:.1f} s ({u.judge_seconds / n:.2f} s per example)"])
    return table(["", "calls", "input tokens", "output tokens", "calls per example", "time"], lines)


def content_security_policy(script: str) -> str:
    """Nothing from the network; only the page's own script runs (by its hash), so even a row
    that got past the escaping could not run code."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'")


def render(view: RunView, plots: Mapping[str, str], *, data_dir: str,
           labels_key: str | None = None) -> str:
    """The whole page; ``plots`` maps a file name to its PNG data URI.

    ``labels_key`` names the report in the browser's storage of labels (default: ``data_dir``
    and the run), so two reports keep their labels apart and a rebuilt one finds them again.
    """
    table_dict = view.board.as_dict()
    plot_html = "".join(f'<figure><img alt="{_esc(name)}" src="{uri}"><figcaption>{_esc(name)}'
                        f"</figcaption></figure>" for name, uri in plots.items()) or \
        "<p>No plots: no aligned row was scored.</p>"
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    summary = (f"<h2>Outcomes</h2>{outcome_tables(view, table_dict)}"
               f"<h2>Scores before and after</h2>{score_section(table_dict)}"
               f'<div class="plots">{plot_html}</div>'
               f"<h2>Codes</h2>{code_section(view)}"
               f"<h2>LM calls, tokens and time</h2>{usage_section(view)}")
    script = _asset("report.js")
    values = {
        "title": _esc(f"argalign report: {view.run}"),
        "csp": content_security_policy(f"\n{script}\n"),
        "css": _asset("report.css"),
        "js": script,
        "header": _esc(f"run {view.run} in {data_dir}: {view.examples} examples; generated "
                       f"{generated} by argalign {__version__}"),
        "summary": summary,
        "rows": "[" + ",".join(view.rows) + "]",
        "pairs": "[" + ",".join(view.pairs) + "]",
        "labelskey": _esc(labels_key or f"{data_dir}#{view.run}"),
        "labelsfile": _esc(f"labels-{view.run}.jsonl"),
    }
    # One pass over the template: text put in is never searched for markers again.
    return re.sub(r"\{\{([a-z]+)\}\}", lambda m: values[m.group(1)], _asset("report.html"))
