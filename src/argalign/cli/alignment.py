"""``argalign align`` and ``argalign score``: one file in, one file out, every row accounted for.

``align`` writes a result record per input example (see :mod:`argalign.programs.align`); ``score``
writes the metric components per row, prints their mean and logs both to MLflow (experiment
``argalign-score``; nothing with ``--no-track``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argalign.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    MODES,
    add_choice,
    add_comparison,
    add_judge,
    add_model,
    add_renamed,
    add_settings,
    add_thinking,
    emit,
)
from argalign.core.defaults import DEFAULT_COMPARISON, DEFAULT_THINKING
from argalign.core.errors import RowError

if TYPE_CHECKING:
    from argalign.core.schema import Example

log = logging.getLogger(__name__)


def _check_input(path: str | Path, flag: str) -> Path:
    """``path`` if it is a regular file holding JSON Lines (no JSON array); ConfigError if not."""
    from argalign.core.files import regular_file
    from argalign.core.jsonl import refuse_json_array

    path = regular_file(path, flag)
    refuse_json_array(path, flag)
    return path


def _read_examples(path: str | Path, flag: str = "--in"
                   ) -> Iterator[tuple[Example | RowError, dict[str, Any] | None]]:
    """Yield ``(example, record)`` per non-blank line, in order. A line that is not JSON, or not
    a row, yields its RowError instead of an example, so that it ends ``rejected`` with its code."""
    from argalign.core.schema import PlainRowIds

    path = _check_input(path, flag)
    ids = PlainRowIds()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{path.stem}:{lineno}"
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                yield RowError(f"line {lineno}", "LINE_NOT_JSON", f"{where}: not valid JSON ({e})"), None
                continue
            try:
                yield ids.example(record, where), record
            except RowError as e:
                yield RowError(f"line {lineno}", e.code, e.problem, e.message_index), record


def align_file(*, input: str | Path, out: str | Path, mode: str, model: str | None = None,
               program: str | None = None, thinking: str = DEFAULT_THINKING,
               settings: str | Path | None = None) -> dict[str, Any]:
    """Align every line of ``input`` into ``out`` (one result record per line); a summary."""
    from tqdm import tqdm

    from argalign.core.errors import ConfigError
    from argalign.core.jsonl import refuse_overwrite, write_jsonl_atomic
    from argalign.core.records import Outcome, ResultRecord
    from argalign.models.config import load_settings
    from argalign.models.lm import open_models
    from argalign.programs.align import align_example
    from argalign.programs.store import load_program

    _check_input(input, "--in")
    refuse_overwrite([out], [input, settings, _program_file(program)], "--out", data_trees=True)
    loaded = load_settings(settings)
    model = model or loaded.default_model
    module, program_id = load_program(mode, program, thinking=thinking)
    examples = [example for example, _ in _read_examples(input)]
    if not examples:  # before any model is started
        raise ConfigError(f"--in {input}: no rows (the file is empty)")
    outcomes: Counter = Counter()
    records: list[dict[str, Any]] = []
    with open_models(loaded, [model]) as handles:
        handle = handles[model]
        bar = tqdm(examples, desc=f"align {mode}", unit="conv", file=sys.stderr, disable=None)
        for example in bar:
            if isinstance(example, RowError):
                log.error("rejected %s", example)
                record = ResultRecord.failure(code=example.code, reason=str(example),
                                              outcome=Outcome.REJECTED, id=example.row_id,
                                              mode=mode, model=model, program=program_id)
            else:
                record = align_example(example, module, model=model, lm=handle.lm,
                                       adapter=handle.adapter, program_id=program_id)
            outcomes[record.outcome] += 1
            records.append(record.to_dict())
            bar.set_postfix(outcomes)
    write_jsonl_atomic(out, records)
    return {"out": str(out), "program": program_id, "outcomes": dict(outcomes)}


def score_file(*, input: str | Path, out: str | Path, judge: str | None = None,
               comparison: str = DEFAULT_COMPARISON, settings: str | Path | None = None,
               original: str | Path | None = None, oracle: str | Path | None = None,
               repeatability: float | None = None, progress: bool = True,
               track: bool = True) -> dict[str, Any]:
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

    _check_input(input, "--in")
    if original is not None:
        _check_input(original, "--original")
    if oracle is not None:
        _check_input(oracle, "--oracle")
    outputs = [out, *([Path(str(out) + ".oracle.jsonl")] if oracle is not None else [])]
    refuse_overwrite(outputs, [input, original, oracle, settings], "--out", data_trees=True)
    if track:  # a wrong MLFLOW_TRACKING_URI is a configuration error, found before any LM call
        from argalign.tracking import tracking_uri

        tracking_uri()
    loaded = load_settings(settings)
    metric = MutualPredictability(comparison)
    uses_lm = COMPARISONS[comparison].uses_lm
    judge_name = loaded.judge(judge) if uses_lm else None
    rows = list(_read_examples(input))
    originals = _originals(original) if original is not None else {}
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
    summary: dict[str, Any] = {
        "out": str(out), "rows": len(lines), "scored": len(parts["score"]),
        "comparison": comparison, "judge": judge_name,
        "mean": {k: mean_ci(v).as_dict() if v else None for k, v in parts.items()}}
    if original is not None:
        summary["paired"], summary["not_aligned"] = len(before_after), not_aligned
        if before_after:
            summary["baseline"] = mean_ci([b for b, _ in before_after]).as_dict()
            summary["difference"] = difference_ci(before_after).as_dict()
    if calibration is not None:
        summary["oracle"] = calibration.as_dict()
        with_p = [line["p_better"] for line in lines if "p_better" in line]
        if with_p:
            summary["p_better"] = mean_ci(with_p).as_dict()
    if track:
        from argalign.tracking.scores import log_scores

        log_scores(summary, input=input, out=out, original=original, oracle=oracle)
    return summary


def _originals(path: str | Path) -> dict[str, dict[str, Any]]:
    """The rows of an original file by example id (a bad line there is an error)."""
    out: dict[str, dict[str, Any]] = {}
    for example, _ in _read_examples(path, "--original"):
        if isinstance(example, RowError):
            raise example
        out[example.id] = example.row
    return out


def _program_file(program: str | None) -> str | None:
    """The compiled program's file, if ``--program`` names one (not an MLflow URI)."""
    if not program or "://" in program or program.startswith(("runs:/", "models:/",
                                                               "mlflow-artifacts:/")):
        return None
    return program


def cmd_align(args: argparse.Namespace) -> int:
    from argalign.core.records import Outcome

    summary = align_file(input=args.input, out=args.out, mode=args.mode, model=args.model,
                         program=args.program, thinking=args.thinking, settings=args.settings)
    emit(summary)
    if not summary["outcomes"].get(Outcome.ALIGNED):  # nothing usable came out: an error, not a success
        log.error("no row was aligned (%s); every line's reason is in %s",
                  ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()) or "no rows", args.out)
        return EXIT_FAILED
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    summary = score_file(input=args.input, out=args.out, judge=args.judge,
                         comparison=args.comparison, settings=args.settings,
                         original=args.original, oracle=args.oracle,
                         repeatability=args.repeatability, progress=args.progress,
                         track=args.track)
    emit(summary)
    if not summary["scored"]:  # as for align: nothing usable came out
        log.error("no row was scored (%d rows); every line's reason is in %s", summary["rows"],
                  args.out)
        return EXIT_FAILED
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="align one JSONL file in one mode")
    add_choice(p, "--mode", MODES, metavar="MODE", required=True)
    add_model(p)
    p.add_argument("--in", dest="input", required=True, metavar="PATH",
                   help="the input (JSONL): raw examples or plain rows")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the output file (JSONL): one result record per line")
    p.add_argument("--program", default=None, metavar="PATH",
                   help="the mode's compiled program: JSON path or MLflow URI (default: zero-shot)")
    add_thinking(p)
    add_settings(p)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("score", help="mutual-predictability score of each row of a file")
    p.add_argument("--in", dest="input", required=True, metavar="PATH",
                   help="the input (JSONL): rows, raw examples or result records")
    add_judge(p)
    add_renamed(p, "--model", "--judge NAME (the judge model)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the output file (JSONL): one score line per row (with --oracle also "
                        "FILE.oracle.jsonl)")
    add_comparison(p)
    p.add_argument("--original", default=None, metavar="FILE",
                   help="the original rows (JSONL), the file --in was aligned from: score them "
                        "too, by id, and report the difference")
    p.add_argument("--oracle", default=None, metavar="FILE",
                   help="pairs labelled 'which is better aligned' (JSONL): report the "
                        "comparison's agreement and calibrate it (see argalign.scoring.calibration); "
                        "lines labelled 'same' report how it scores equals")
    p.add_argument("--repeatability", type=float, default=None, metavar="D",
                   help="with --oracle: a |score difference| below D reads as 'scored the "
                        "same' (default 0.01)")
    add_settings(p)
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.add_argument("--no-track", dest="track", action="store_false",
                   help="no MLflow run (default: params, the means with their intervals and the "
                        "scores file in experiment argalign-score, at MLFLOW_TRACKING_URI)")
    p.set_defaults(func=cmd_score)
