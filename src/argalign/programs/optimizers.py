"""How a mode's program is compiled against the metric, and how the best candidate is kept.

Four optimizers, each one line in :data:`OPTIMIZERS`:

- ``gold``: DSPy's ``LabeledFewShot`` over the hand-written gold demos (:mod:`argalign.programs.gold`);
- ``bootstrap``: few-shot demos taken from the best-scoring rewrites of the training examples;
- ``mipro``: MIPROv2's instruction proposals (instructions only: a demo of this task is a
  whole conversation, too long for a small model's prompt next to the proposer's own);
- ``gepa``: GEPA, whose reflection model reads the metric's feedback (the quality-check codes
  and the judge's readings) and rewrites the instructions.

With ``spec.gold`` (the default) the others start from the gold demos too: bootstrap's
teacher holds them and every candidate keeps them ahead of its own demos, and MIPROv2 and GEPA
rewrite the instructions of a program that holds them. Every demo carries a ``demo_id``
(``gold/<id>`` or ``train/<example id>``), so a saved program says which demos it holds.

Each is a subclass of :class:`argalign.programs.optimizer.Optimizer` in a module of its own
(``optimizer_<name>.py``); how a compile keeps its best candidate is
:mod:`argalign.programs.optimizer`'s.
"""

from __future__ import annotations

from argalign.programs.optimizer import Optimizer
from argalign.programs.optimizer_bootstrap import Bootstrap
from argalign.programs.optimizer_gepa import Gepa
from argalign.programs.optimizer_gold import Gold
from argalign.programs.optimizer_mipro import Mipro

# A new optimizer is its module's import above and one entry here.
OPTIMIZERS: dict[str, type[Optimizer]] = {"gold": Gold, "bootstrap": Bootstrap, "mipro": Mipro,
                                           "gepa": Gepa}
