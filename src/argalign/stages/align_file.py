"""``argalign align``: one JSONL file aligned in one mode, one result record per line.

Each line ends in exactly one outcome with its reason (a line that is no row is ``rejected``
with its code); see :mod:`argalign.programs.align` for one example.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.defaults import DEFAULT_THINKING
from argalign.core.errors import RowError
from argalign.core.results import StageResult
from argalign.stages.inputs import check_input, read_examples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignSummary(StageResult):
    """What ``align`` wrote: the output file, the program used and the count of each outcome."""

    out: str
    program: str
    outcomes: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"out": self.out, "program": self.program, "outcomes": self.outcomes}


def align_file(*, input: str | Path, out: str | Path, mode: str, model: str | None = None,
               program: str | None = None, thinking: str = DEFAULT_THINKING,
               settings: str | Path | None = None) -> AlignSummary:
    """Align every line of ``input`` into ``out`` (one result record per line); a summary."""
    from tqdm import tqdm

    from argalign.core.errors import ConfigError
    from argalign.core.jsonl import refuse_overwrite, write_jsonl_atomic
    from argalign.core.records import Outcome, ResultRecord
    from argalign.models.config import load_settings
    from argalign.models.lm import open_models
    from argalign.programs.align import align_example
    from argalign.programs.store import load_program

    check_input(input, "--in")
    refuse_overwrite([out], [input, settings, _program_file(program)], "--out", data_trees=True)
    loaded = load_settings(settings)
    model = model or loaded.default_model
    module, program_id = load_program(mode, program, thinking=thinking)
    examples = [example for example, _ in read_examples(input)]
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
    return AlignSummary(out=str(out), program=program_id, outcomes=dict(outcomes))


def _program_file(program: str | None) -> str | None:
    """The compiled program's file, if ``--program`` names one (not an MLflow URI)."""
    if not program or "://" in program or program.startswith(("runs:/", "models:/",
                                                               "mlflow-artifacts:/")):
        return None
    return program
