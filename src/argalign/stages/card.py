"""The dataset card (``README.md``) of a published aligned dataset: YAML front matter and body.

The body is the template ``data/card.md`` with its slots filled in; the front matter's
``configs:`` block names every data file, so each ``<config>-aligned``
config loads with ``load_dataset(repo, "<config>-aligned")``. The body says what changed and
what did not, which modes, models and programs produced the rows, the metric before and after
(:mod:`argalign.scoring.scoreboard`: per config, mode and model, with intervals), and how many rows
ended in each outcome.

Every value that comes from the data (config, split, mode, model and program names, outcome
and column names) goes through :func:`text` or :func:`code` on its way into the Markdown, and
into the code block as a Python string literal (:func:`py_string`): a name cannot break a
table, nor add a heading, a link or HTML.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import yaml

from argalign.core.defaults import DEFAULT_MESSAGES_FIELD
from argalign.core.records import MISSING, OUTCOMES, Outcome
from argalign.scoring.scoreboard import interval, rows, stored_estimate
from argalign.stages.prepare import HUB_DATASET

SUFFIX = "-aligned"
SCORE_COLUMNS = ("score_baseline", "score_aligned", "forward_baseline", "forward_aligned",
                 "backward_baseline", "backward_aligned")
LICENSE = "odc-by"
OUTCOME_ORDER = (*OUTCOMES, MISSING)


# Characters Markdown reads as syntax inside a line (a table cell, a list item, a sentence).
_MARKDOWN = re.compile(r"([\\`*_\[\]()#|~])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Line breaks of every kind and the other control characters: each becomes a space.
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# A name made of these is shown as code as it is: none of them means anything in a code span.
_PLAIN_NAME = re.compile(r"[\w.:/@+=$,-]+")


def text(value: Any) -> str:
    """``value`` as inline Markdown text that reads as written: Markdown syntax escaped with
    a backslash, ``& < >`` as HTML entities, line breaks and control characters as spaces."""
    out = _BREAKS.sub(" ", str(value))
    out = "".join(_HTML.get(c, c) for c in out)
    return _MARKDOWN.sub(r"\\\1", out)


def code(value: Any) -> str:
    """A name as inline code when it is plain (letters, digits, ``. : / @ + = $ , -``), else
    as escaped :func:`text` (a code span cannot hold an escaped ``|`` or an entity)."""
    value = str(value)
    return f"`{value}`" if _PLAIN_NAME.fullmatch(value) else text(value)


def py_string(value: Any) -> str:
    """A Python string literal for a fenced code block: one line, and no backtick to end the fence."""
    return json.dumps(str(value)).replace("`", "\\u0060")


def _template() -> str:
    """The card's text with ``${name}`` slots: ``data/card.md``, edited as Markdown."""
    return (resources.files("argalign") / "data" / "card.md").read_text(encoding="utf-8")


def config_name(config: str) -> str:
    return config + SUFFIX


def data_file(name: str, split: str) -> str:
    """Path of a split's one parquet file inside the repo."""
    return f"{name}/{split}-00000-of-00001.parquet"


def flat_scores(provenance: dict[str, Any]) -> dict[str, float | None]:
    """``scores.{baseline,aligned}.{score,forward,backward}`` as ``<metric>_<side>`` values."""
    out: dict[str, float | None] = dict.fromkeys(SCORE_COLUMNS)
    scores = provenance.get("scores")
    for side in ("baseline", Outcome.ALIGNED.value):
        part = scores.get(side) if isinstance(scores, dict) else None
        for metric in ("score", "forward", "backward"):
            value = part.get(metric) if isinstance(part, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{metric}_{side}"] = float(value)
    return out


@dataclass
class ConfigStats:
    """What the card says about one config: rows, outcomes, provenance mix and scores."""

    config: str
    rows: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    mix: Counter = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return config_name(self.config)

    def add(self, split: str, provenance: dict[str, Any]) -> None:
        self.rows[split] = self.rows.get(split, 0) + 1
        self.mix[(str(provenance.get("mode") or "?"), str(provenance.get("model") or "?"),
                  str(provenance.get("program") or "?"))] += 1


def front_matter(stats: list[ConfigStats], pretty_name: str) -> dict[str, Any]:
    return {
        "license": LICENSE,
        "pretty_name": pretty_name,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["argumentation", "reasoning", "sft", "synthetic", "argalign"],
        "source_datasets": [HUB_DATASET],
        "configs": [{"config_name": s.name,
                     "data_files": [{"split": split, "path": data_file(s.name, split)} for split in s.rows]}
                    for s in stats],
    }


def score_table(table: Mapping[str, Any]) -> str:
    """The before/after table (:meth:`Scoreboard.as_dict`): one line per group, the outcome
    counts beside the means."""
    groups = rows(table)
    outcomes = [o for o in OUTCOME_ORDER if any(r.outcomes.get(o) for r in groups)]
    names = {"config": "config", "mode": "mode", "model": "model"}
    return _table(["group", *map(text, outcomes), "scored", "before", "after", "after − before"], [
        ["all rows" if r.kind == "all" else f"{names[r.kind]} {code(r.name)}",
         *(r.outcomes.get(o, 0) for o in outcomes), r.scored, r.before, r.after, r.difference]
        for r in groups])


def parts_line(table: Mapping[str, Any]) -> str:
    """The metric's parts over all scored rows, before → after (difference with its interval)."""
    everything = table.get("all") or {}
    parts = [f"{part} {interval(stored_estimate(everything[part]['before']))} → "
             f"{interval(stored_estimate(everything[part]['after']))} "
             f"({interval(stored_estimate(everything[part]['difference']), signed=True)})"
             for part in ("forward", "backward", "coherence") if part in everything]
    return ("Parts over all scored rows: " + "; ".join(parts) + ".") if parts else ""


def plot_links(paths: list[str]) -> str:
    """Markdown images of the score plots uploaded with the data (nothing when there are none)."""
    if not paths:
        return ""
    lines = [f"![Scores before and after, by {text(Path(p).stem.rsplit('_', 1)[-1])}]({p})"
             for p in paths]
    return "Score distributions before and after:\n\n" + "\n\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(repo_id: str, stats: list[ConfigStats], *, messages_field: str = DEFAULT_MESSAGES_FIELD,
                row_columns: list[str] | None = None, provenance_columns: list[str] | None = None,
                source: str = "cleaned", skipped: list[str] | None = None,
                scores: Mapping[str, Any] | None = None, plots: list[str] | None = None) -> str:
    """The whole README.md text; ``scores`` is the before/after table of the rows
    (:meth:`argalign.scoring.scoreboard.Scoreboard.as_dict`), ``plots`` the paths of its figures in
    the repo."""
    name = repo_id.rsplit("/", 1)[-1]
    head = yaml.safe_dump(front_matter(stats, name), sort_keys=False, allow_unicode=True)
    first = stats[0].name if stats else "<config>-aligned"  # in the code block
    seen = {o for s in stats for per in s.outcomes.values() for o in per}
    outcome_names = [o for o in OUTCOME_ORDER if o in seen] + sorted(seen - set(OUTCOME_ORDER))
    split_names = list(dict.fromkeys(split for s in stats for split in s.rows))

    configs_table = _table(["config", "source config", *map(text, split_names), "rows"], [
        [code(s.name), code(s.config), *(s.rows.get(sp, 0) for sp in split_names), sum(s.rows.values())]
        for s in stats])
    outcome_rows = [[code(s.name), text(split), *(per.get(o, 0) for o in outcome_names),
                     s.rows.get(split, 0)]
                    for s in stats for split, per in s.outcomes.items()]
    mix_rows = [[code(s.name), text(mode), code(model), code(program), n]
                for s in stats for (mode, model, program), n in sorted(s.mix.items())]
    totals: Counter = Counter()
    for s in stats:
        for (mode, model, _), n in s.mix.items():
            totals[(mode, model)] += n
    if scores and (scores.get("all") or {}).get("scored"):
        scores_text = score_table(scores) + ("\n\n" + parts_line(scores) if parts_line(scores) else "")
    else:
        scores_text = "The run that made these rows did not score them (`argalign run --no-score`)."
    columns = [f"- {code(messages_field)}: list of messages, each a struct of six strings `content, name, "
               "role, thinking, tool_calls, tools` (null when absent) exactly as in the source: "
               "`tools` is a JSON string on the system message, `tool_calls` a JSON string on "
               "assistant messages, tool results are `role: tool` messages with `name`."]
    columns += [f"- {code(c)}: kept from the source row." for c in row_columns or []]
    if provenance_columns:
        columns.append("- provenance: " + ", ".join(f"`{c}`" for c in provenance_columns) +
                       " (mode, model, program fingerprint; metric of the original (`_baseline`) "
                       "and of the aligned row (`_aligned`), null when not scored).")
    skipped_text = (f"\nLeft out because no row was published: {', '.join(map(text, skipped))}.\n"
                    if skipped else "")
    mix_text = ", ".join(f"Mode {text(mode)} with {code(model)}: {n}"
                         for (mode, model), n in sorted(totals.items()))

    body = Template(_template()).substitute(
        name=text(name), source_dataset=HUB_DATASET, source=source, configs_table=configs_table,
        skipped_text=skipped_text, mix_text=mix_text or "–",
        mix_table=_table(["config", "mode", "model", "program (fingerprint)", "rows"], mix_rows),
        score_table=scores_text, plots=plot_links(plots or []),
        outcome_table=_table(["config", "split", *map(text, outcome_names), "published"], outcome_rows),
        columns="\n".join(columns), repo_id=py_string(repo_id), first_config=py_string(first),
        messages_field=py_string(messages_field),
        source_configs=", ".join(code(s.config) for s in stats))
    return f"---\n{head}---\n\n{body}"
