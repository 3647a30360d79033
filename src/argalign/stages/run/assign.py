"""Assignment of examples to (mode, model) groups: seeded, exactly once, balanced.

Each (config, split) subset is assigned on its own: its ids are sorted (so the result depends
on the set of ids, not on file order), shuffled with a generator seeded by ``seed`` and the
subset, and dealt round robin from a seeded starting group. Every id lands in exactly one
group and group sizes differ by at most one inside the subset.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file-name-safe form of a model name (anything but ``[A-Za-z0-9._-]`` becomes ``_``)."""
    return _UNSAFE.sub("_", name).strip("._") or "_"


class Group(NamedTuple):
    """One slice of the work: a mode and the model that aligns it."""

    mode: str
    model: str

    @property
    def name(self) -> str:
        """The result file's stem: ``<mode>-<model>``."""
        return f"{self.mode}-{safe_name(self.model)}"


def groups_for(modes: Iterable[str], models: Iterable[str]) -> list[Group]:
    """Every (mode, model) pair, modes first, duplicates dropped, order kept."""
    models = list(dict.fromkeys(models))
    return [Group(mode, model) for mode in dict.fromkeys(modes) for model in models]


def assign(ids: Iterable[str], groups: Sequence[Group], seed: int, subset: str = "") -> dict[str, Group]:
    """Map each id to one group; the same arguments always give the same map.

    Args:
        subset: salts the generator (e.g. ``"<config>/<split>"``) so that subsets with the
            same ids are not assigned in lockstep.
    """
    if not groups:
        raise ValueError("at least one group is needed")
    order = sorted(set(ids))
    rng = random.Random(f"argalign-assign/{seed}/{subset}")
    rng.shuffle(order)
    start = rng.randrange(len(groups))
    return {row_id: groups[(start + k) % len(groups)] for k, row_id in enumerate(order)}
