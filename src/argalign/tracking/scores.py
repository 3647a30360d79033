"""The MLflow side of ``argalign score``: one run per scored file (experiment ``argalign-score``).

Input: the summary :func:`argalign.stages.score_file.score_file` returns and the files it
read and wrote. Output, in a new run: params (the comparison, the judge model's name, the
input, original and oracle file names, the row counts), metrics (each mean with ``_low`` and
``_high``: ``score_mean``, ``forward_mean`` ...; with an original ``score_before`` and
``score_difference`` over the rows that ended aligned, ``n_paired``, ``n_not_aligned``; with an
oracle ``oracle_agreement``, ``oracle_pairs``, ``oracle_log_loss``, ``p_better``),
``summary.json`` and the scores file (and the oracle's lines) as artifacts, scrubbed as every
artifact is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from argalign import tracking


def log_scores(summary: dict[str, Any], *, input: str | Path, out: str | Path,
               original: str | Path | None, oracle: str | Path | None) -> None:
    """One MLflow run for one ``score``: file names and the comparison as params, the means
    with their intervals as metrics, the scores file as an artifact (scrubbed, as every
    artifact is; endpoints and keys are never params)."""
    params = {"comparison": summary["comparison"], "judge": summary["judge"] or "",
              "input": Path(input).name, "n": summary["rows"], "scored": summary["scored"],
              "original": Path(original).name if original is not None else "",
              "oracle": Path(oracle).name if oracle is not None else ""}
    metrics: dict[str, float] = {"n_rows": summary["rows"], "n_scored": summary["scored"]}

    def estimate(name: str, found: dict[str, Any] | None) -> None:
        if found:
            metrics.update({name: found["mean"], f"{name}_low": found["low"],
                            f"{name}_high": found["high"]})

    for part, found in summary["mean"].items():
        estimate(f"{part}_mean", found)
    if "paired" in summary:
        metrics.update(n_paired=summary["paired"], n_not_aligned=summary["not_aligned"])
        estimate("score_before", summary.get("baseline"))
        estimate("score_difference", summary.get("difference"))
    if "oracle" in summary:
        metrics["oracle_pairs"] = summary["oracle"]["pairs"]
        judged = summary["oracle"].get("better_worse")
        if judged:
            estimate("oracle_agreement", judged["agreement"])
            metrics.update(oracle_better_worse=judged["pairs"], oracle_log_loss=judged["log_loss"])
        same = summary["oracle"].get("same")
        if same:
            estimate("oracle_same_abs_difference", same["abs_difference"])
            estimate("oracle_same_within_repeatability", same["within_repeatability"])
            metrics["oracle_same"] = same["pairs"]
        estimate("p_better", summary.get("p_better"))
    tags = {"argalign.command": "score"}
    with tracking.start_run(tracking.EXPERIMENT_SCORE, f"score-{Path(input).stem}", params, tags):
        tracking.log_metrics(metrics)
        tracking.log_dict(summary, "summary.json")
        tracking.log_file(out)
        oracle_lines = Path(str(out) + ".oracle.jsonl")
        if oracle is not None and oracle_lines.is_file():
            tracking.log_file(oracle_lines)

