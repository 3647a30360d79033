"""``argalign score``: the mutual-predictability score of each row of one JSONL file.

One score line per row (a line that is no row, or a row the judge fails on, is a line with its
reason), the means with their 95% bootstrap intervals, optionally the difference from the
originals and the calibration against labelled pairs; logged to MLflow (experiment
``argalign-score``) unless ``track`` is off.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.defaults import DEFAULT_COMPARISON
from argalign.core.errors import RowError
from argalign.core.results import StageResult
from argalign.stages.inputs import check_input, originals_by_id, read_examples

log = logging.getLogger(__name__)

_OPTIONAL = ("paired", "not_aligned", "baseline", "difference", "oracle", "p_better")


@dataclass
class ScoreSummary(StageResult):
    """What ``score`` found: rows read and scored, the comparison and judge, the mean of each
    part with its interval; with originals the pairs, the rows not aligned, the originals' mean
    and the difference; with an oracle its calibration and the mean probability of better. An
    optional part is in :meth:`as_dict` only when it was computed."""

    out: str
    rows: int
    scored: int
    comparison: str
    judge: str | None
    mean: dict[str, dict[str, Any] | None]
    paired: int | None = None
    not_aligned: int | None = None
    baseline: dict[str, Any] | None = None
    difference: dict[str, Any] | None = None
    oracle: dict[str, Any] | None = None
    p_better: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"out": self.out, "rows": self.rows, "scored": self.scored,
                               "comparison": self.comparison, "judge": self.judge,
                               "mean": self.mean}
        out.update({key: getattr(self, key) for key in _OPTIONAL
                    if getattr(self, key) is not None})
        return out


def score_file(*, input: str | Path, out: str | Path, judge: str | None = None,
               comparison: str = DEFAULT_COMPARISON, settings: str | Path | None = None,
               original: str | Path | None = None, oracle: str | Path | None = None,
               repeatability: float | None = None, progress: bool = True,
               track: bool = True) -> ScoreSummary:
    """Score every row of ``input`` (rows, examples or result records) into ``out``.

    Returns the means, each with its 95% bootstrap interval over conversations. With
    ``original`` (the file the rows were aligned from), each row is also scored as it was, by
    id, and the summary has the difference (aligned - original) with its interval. With
    ``oracle`` (pairs labelled by a person or a stronger judge), the comparison is calibrated
    against the labels (:mod:`argalign.scoring.calibration`): its agreement with the better/worse
    pairs, how it scores the pairs labelled ``same`` (|difference| below ``repeatability``,
    default :data:`~argalign.scoring.calibration.REPEATABILITY`), and, per row with an original, the
    calibrated probability that the oracle prefers the aligned row.

    The difference, like every before/after mean, is over the rows that ended ``aligned``
    (:func:`argalign.scoring.scoreboard.counted`; a plain row without an outcome counts): a result
    record that ended ``unchanged`` is scored but not paired, and counted as ``not_aligned``.
    With ``track``, the summary goes to an MLflow run (:mod:`argalign.tracking.scores`).
    """
    import contextlib

    import dspy
    from tqdm import tqdm

    from argalign.core.errors import ConfigError
    from argalign.core.jsonl import refuse_overwrite, write_jsonl_atomic
    from argalign.core.records import Outcome
    from argalign.core.stats import difference_ci, mean_ci
    from argalign.models.config import load_settings
    from argalign.models.lm import open_models
    from argalign.scoring.metrics import COMPARISONS, MutualPredictability, score_row
    from argalign.scoring.scoreboard import counted

    check_input(input, "--in")
    if original is not None:
        check_input(original, "--original")
    if oracle is not None:
        check_input(oracle, "--oracle")
    outputs = [out, *([Path(str(out) + ".oracle.jsonl")] if oracle is not None else [])]
    refuse_overwrite(outputs, [input, original, oracle, settings], "--out", data_trees=True)
    if track:  # a wrong MLFLOW_TRACKING_URI is a configuration error, found before any LM call
        from argalign.tracking import tracking_uri

        tracking_uri()
    loaded = load_settings(settings)
    metric = MutualPredictability(comparison)
    uses_lm = COMPARISONS[comparison].uses_lm
    judge_name = loaded.judge(judge) if uses_lm else None
    rows = list(read_examples(input))
    originals = originals_by_id(original) if original is not None else {}
    pairs_to_check = None
    if oracle is not None:
        from argalign.scoring.calibration import read_oracle

        pairs_to_check = read_oracle(oracle)  # read first: a bad file fails before any LM call
    if repeatability is not None and not repeatability >= 0:
        raise ConfigError(f"--repeatability must be a score difference >= 0, not {repeatability}")
    lines: list[dict[str, Any]] = []
    parts: dict[str, list[float]] = {"score": [], "forward": [], "backward": [], "coherence": []}
    before_after: list[tuple[float, float]] = []
    not_aligned = 0  # rows with an original that did not end aligned: not in the difference
    # Rule-based comparisons need no model: no server is started for them.
    models = open_models(loaded, [judge_name]) if judge_name else contextlib.nullcontext({})
    with models as handles:
        handle = handles.get(judge_name)
        context = {"lm": handle.lm, "adapter": handle.adapter} if handle else {}

        def score(row: dict[str, Any]):
            with dspy.context(trace=None, **context):
                return score_row(row, metric)

        calibration = None
        if pairs_to_check is not None:
            from argalign.scoring.calibration import REPEATABILITY, calibrate

            calibration, oracle_lines = calibrate(
                tqdm(pairs_to_check, desc="oracle", unit="pair", file=sys.stderr,
                     disable=not progress, dynamic_ncols=True),
                lambda row: score(row).score,
                repeatability=REPEATABILITY if repeatability is None else repeatability)
            write_jsonl_atomic(Path(str(out) + ".oracle.jsonl"), oracle_lines)
            log.info("oracle %s: %s", oracle, calibration.describe())
        for example, record in tqdm(rows, desc="score", unit="conv", file=sys.stderr,
                                    disable=not progress, dynamic_ncols=True):
            if isinstance(example, RowError):
                lines.append({"id": example.row_id, "judge": judge_name, "comparison": comparison,
                              "status": Outcome.FAILED.value, "reason": str(example)})
                continue
            line: dict[str, Any] = {"id": example.id, "judge": judge_name,
                                    "comparison": comparison}
            if example.row is None:
                line.update(status="skipped", reason=f"no row (outcome {record.get('outcome')})")
            else:
                try:
                    result = score(example.row)
                    line.update(status="scored", **result.components(), feedback=result.feedback)
                    for key, values in parts.items():
                        value = getattr(result, key)
                        if value is not None:
                            values.append(value)
                    if example.id in originals and not counted((record or {}).get(
                            "outcome", Outcome.ALIGNED.value)):
                        not_aligned += 1
                    elif example.id in originals:
                        baseline = score(originals[example.id]).score
                        line["baseline_score"] = round(baseline, 4)
                        before_after.append((baseline, result.score))
                        if calibration is not None and calibration.fitted:
                            line["p_better"] = round(
                                calibration.p_better(result.score - baseline), 4)
                except Exception as e:  # noqa: BLE001 - one row's judge failure is recorded
                    line.update(status=Outcome.FAILED.value, reason=f"{type(e).__name__}: {e}")
            lines.append(line)
    write_jsonl_atomic(out, lines)
    summary = ScoreSummary(out=str(out), rows=len(lines), scored=len(parts["score"]),
                           comparison=comparison, judge=judge_name,
                           mean={k: mean_ci(v).as_dict() if v else None for k, v in parts.items()})
    if original is not None:
        summary.paired, summary.not_aligned = len(before_after), not_aligned
        if before_after:
            summary.baseline = mean_ci([b for b, _ in before_after]).as_dict()
            summary.difference = difference_ci(before_after).as_dict()
    if calibration is not None:
        summary.oracle = calibration.as_dict()
        with_p = [line["p_better"] for line in lines if "p_better" in line]
        if with_p:
            summary.p_better = mean_ci(with_p).as_dict()
    if track:
        from argalign.tracking.scores import log_scores

        log_scores(summary.as_dict(), input=input, out=out, original=original, oracle=oracle)
    return summary
