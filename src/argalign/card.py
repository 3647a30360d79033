"""The dataset card (``README.md``) of a published aligned dataset: YAML front matter and body.

The front matter's ``configs:`` block names every data file, so each ``<config>-aligned``
config loads with ``load_dataset(repo, "<config>-aligned")``. The body says what changed and
what did not, which modes, models and programs produced the rows, the metric before and after,
and how many rows ended in each outcome.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yaml

from argalign.prepare import HUB_DATASET

SUFFIX = "-aligned"
SCORE_COLUMNS = ("score_baseline", "score_aligned", "forward_baseline", "forward_aligned",
                 "backward_baseline", "backward_aligned")
LICENSE = "odc-by"
OUTCOME_ORDER = ("aligned", "unchanged", "failed", "rejected", "not_improved", "missing")


def config_name(config: str) -> str:
    return config + SUFFIX


def data_file(name: str, split: str) -> str:
    """Path of a split's one parquet file inside the repo."""
    return f"{name}/{split}-00000-of-00001.parquet"


def flat_scores(provenance: dict[str, Any]) -> dict[str, float | None]:
    """``scores.{baseline,aligned}.{score,forward,backward}`` as ``<metric>_<side>`` values."""
    out: dict[str, float | None] = dict.fromkeys(SCORE_COLUMNS)
    scores = provenance.get("scores")
    for side in ("baseline", "aligned"):
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
    scores: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in SCORE_COLUMNS})

    @property
    def name(self) -> str:
        return config_name(self.config)

    def add(self, split: str, provenance: dict[str, Any]) -> None:
        self.rows[split] = self.rows.get(split, 0) + 1
        self.mix[(str(provenance.get("mode") or "?"), str(provenance.get("model") or "?"),
                  str(provenance.get("program") or "?"))] += 1
        for column, value in flat_scores(provenance).items():
            if value is not None:
                self.scores[column].append(value)


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


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.3f}" if values else "–"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(repo_id: str, stats: list[ConfigStats], *, messages_field: str = "messages",
                row_columns: list[str] | None = None, provenance_columns: list[str] | None = None,
                source: str = "cleaned", skipped: list[str] | None = None) -> str:
    """The whole README.md text."""
    name = repo_id.rsplit("/", 1)[-1]
    head = yaml.safe_dump(front_matter(stats, name), sort_keys=False, allow_unicode=True)
    first = stats[0].name if stats else "<config>-aligned"
    seen = {o for s in stats for per in s.outcomes.values() for o in per}
    outcome_names = [o for o in OUTCOME_ORDER if o in seen] + sorted(seen - set(OUTCOME_ORDER))
    split_names = list(dict.fromkeys(split for s in stats for split in s.rows))

    configs_table = _table(["config", "source config", *split_names, "rows"], [
        [f"`{s.name}`", f"`{s.config}`", *(s.rows.get(sp, 0) for sp in split_names), sum(s.rows.values())]
        for s in stats])
    outcome_rows = [[f"`{s.name}`", split, *(per.get(o, 0) for o in outcome_names), s.rows.get(split, 0)]
                    for s in stats for split, per in s.outcomes.items()]
    mix_rows = [[f"`{s.name}`", mode, f"`{model}`", f"`{program}`", n]
                for s in stats for (mode, model, program), n in sorted(s.mix.items())]
    totals: Counter = Counter()
    for s in stats:
        for (mode, model, _), n in s.mix.items():
            totals[(mode, model)] += n
    score_rows = [[f"`{s.name}`", len(s.scores["score_aligned"]),
                   f"{_mean(s.scores['score_baseline'])} → {_mean(s.scores['score_aligned'])}",
                   f"{_mean(s.scores['forward_baseline'])} → {_mean(s.scores['forward_aligned'])}",
                   f"{_mean(s.scores['backward_baseline'])} → {_mean(s.scores['backward_aligned'])}"]
                  for s in stats]
    columns = [f"- `{messages_field}`: list of messages, each a struct of six strings `content, name, "
               "role, thinking, tool_calls, tools` (null when absent) exactly as in the source: "
               "`tools` is a JSON string on the system message, `tool_calls` a JSON string on "
               "assistant messages, tool results are `role: tool` messages with `name`."]
    columns += [f"- `{c}`: kept from the source row." for c in row_columns or []]
    if provenance_columns:
        columns.append("- provenance: " + ", ".join(f"`{c}`" for c in provenance_columns) +
                       " (mode, model, program fingerprint; metric of the original (`_baseline`) "
                       "and of the aligned row (`_aligned`), null when not scored).")
    skipped_text = f"\nLeft out because no row was published: {', '.join(skipped)}.\n" if skipped else ""
    mix_text = ", ".join(f"Mode {mode} with `{model}`: {n}" for (mode, model), n in sorted(totals.items()))

    body = f"""
# {name}

A re-aligned version of [{HUB_DATASET}](https://huggingface.co/datasets/{HUB_DATASET}), made
with argalign: each conversation is rewritten so that the request and the answer are
mutually predictable: a reader of the request can anticipate what the answer does, and a
reader of the answer can reconstruct what was asked.

## What was changed, and what was not

- **Mode A** rewrites the user request around the verbatim source text, and the assistant's
  thinking.
- **Mode B** keeps the user request (at most a one-sentence clarification is added) and rewrites
  the assistant's thinking.

Every published row passed these invariants against its original:

- no message added or removed; `role`, `name`, `tool_calls` and `tools` unchanged;
- every assistant `content` (the final answers) byte-identical;
- system and tool messages unchanged;
- the source text in the user request kept verbatim;
- only user `content` and assistant `thinking` may differ; text stays text, null stays null.

Rows whose rewrite broke an invariant, failed, or came back unchanged are not published
(counts below). Rows come from the {source} results of the run.

## Configs

One config per source config, with its splits:

{configs_table}
{skipped_text}
## Modes, models and programs

Mix: {mix_text or "–"}.

{_table(["config", "mode", "model", "program (fingerprint)", "rows"], mix_rows)}

## Scores before and after

Mutual predictability (0–1): *forward*, a judge predicts the answer from the request;
*backward*, a judge reconstructs the request from the answer; *score* is their mean. Means
over the scored rows, original (baseline) → aligned.

{_table(["config", "rows scored", "score", "forward", "backward"], score_rows)}

## Outcomes

Rows per outcome of the alignment run (`published` = rows in this dataset):

{_table(["config", "split", *outcome_names, "published"], outcome_rows)}

## Columns

{chr(10).join(columns)}

## How to load

```python
from datasets import load_dataset

ds = load_dataset("{repo_id}", "{first}")
print(ds["train"][0]["{messages_field}"])
```

## Source and license

Derived from [{HUB_DATASET}](https://huggingface.co/datasets/{HUB_DATASET}) (configs
{", ".join(f"`{s.config}`" for s in stats)}). Its source corpora are licensed under the Open Data
Commons Attribution License (ODC-BY); this derivative is released under the same license.
Please cite and attribute the source dataset.
"""
    return f"---\n{head}---\n{body}"
