"""The import graph of ``src/argalign``: no cycle, and no module imports from a layer above its own.

Every ``import argalign...`` and ``from argalign... import ...`` is an edge, at module level,
under ``if TYPE_CHECKING:`` and inside a function alike: a lazy import still ties two modules
together. :data:`LAYERS` is the table of ``docs/ARCHITECTURE.md``, bottom first; a new module
goes into one of them. Run alone: ``python -m pytest -q tests/test_layers.py``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "argalign"

# Bottom first. A module may import modules of its own layer (the graph stays acyclic) and of
# the layers below it, never of a layer above. A layer is a package, or part of one:
# ``scoring`` has a pure half (layer 2: no DSPy, what ``validate`` and ``clean`` run) and a judge
# half (layer 4: it asks an LM through DSPy).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base: errors, codes, defaults, policies, records, rows, files, sources", (
        "argalign", "argalign.core", "argalign.core.*")),
    ("checks: invariants, quality checks, the gate, score tables", (
        "argalign.scoring", "argalign.scoring.checks", "argalign.scoring.invariants",
        "argalign.scoring.gate", "argalign.scoring.scoreboard", "argalign.scoring.plots",
        "argalign.scoring.calibration", "argalign.scoring.labels")),
    ("the outside: model settings, LM servers, MLflow", (
        "argalign.models", "argalign.models.*", "argalign.tracking", "argalign.tracking.*")),
    ("programs: modes, the judge and metric, one example, optimizers", (
        "argalign.modes", "argalign.modes.*", "argalign.scoring.readings", "argalign.scoring.judge",
        "argalign.scoring.comparison", "argalign.scoring.comparison_*", "argalign.scoring.metrics",
        "argalign.programs", "argalign.programs.*")),
    ("stages", ("argalign.stages", "argalign.stages.*")),
    ("CLI", ("argalign.cli", "argalign.cli.*")),
]
# Test helpers that ship with the package; nothing in argalign imports them.
OUTSIDE = ("argalign.testing", "argalign.testing.*")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The argalign modules ``path`` imports anywhere in it (``from a import b`` names the
    module ``a.b`` when there is one, else ``a``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names)
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted((SRC / PACKAGE).rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    return next((c for c in map(visit, sorted(graph)) if c), None)


def layer_of(module: str) -> int | None:
    found = [i for i, (_, patterns) in enumerate(LAYERS)
             if any(fnmatch(module, p) for p in patterns)]
    assert len(found) <= 1, f"{module} matches several layers: {found}"
    return found[0] if found else None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_holds_every_kind_of_import(graph):
    assert "argalign.cli.options" in graph["argalign.cli"]  # at module level
    assert "argalign.cli.run" in graph["argalign.cli"]  # inside a function
    assert "argalign.programs.spec" in graph["argalign.programs.optimizer"]  # under TYPE_CHECKING
    # ``from argalign.scoring import plots``
    assert "argalign.scoring.plots" in graph["argalign.stages.report"]


def test_no_import_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the packages below ``argalign`` (``core``, ``scoring``, ...): an edge
    for every import from a module of one into a module of another."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        out.setdefault(package(a), set()).update(
            package(b) for b in targets if package(b) not in (package(a), PACKAGE))
    return out


def test_no_cycle_between_packages(graph):
    packages = package_graph(graph)
    assert {"argalign.core", "argalign.scoring", "argalign.models", "argalign.modes",
            "argalign.programs", "argalign.stages", "argalign.cli"} <= set(packages)
    cycle = find_cycle(packages)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def drawn_package_graph() -> dict[str, set[str]]:
    """The package graph as docs/ARCHITECTURE.md draws it (the block after its marker)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("<!-- package-graph:", 1)[1].split("```", 2)[1]
    drawn = {}
    for line in block.strip().splitlines():
        source, _, targets = line.partition("->")
        drawn[f"{PACKAGE}.{source.strip()}"] = {f"{PACKAGE}.{t}" for t in targets.split()}
    return drawn


def test_the_architecture_document_draws_todays_package_graph(graph):
    today = {name: targets for name, targets in package_graph(graph).items() if name != PACKAGE}
    assert drawn_package_graph() == today, (
        "docs/ARCHITECTURE.md's package graph is out of date; today's imports give:\n"
        + "\n".join(f"{k.removeprefix(PACKAGE + '.')} -> "
                    + " ".join(sorted(t.removeprefix(PACKAGE + '.') for t in v))
                    for k, v in sorted(today.items())))


def test_the_base_imports_no_other_package(graph):
    assert package_graph(graph)["argalign.core"] == set()


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_has_a_layer(graph):
    homeless = [m for m in graph if layer_of(m) is None and not any(fnmatch(m, p) for p in OUTSIDE)]
    assert not homeless, f"put these modules in a layer of LAYERS (and docs/ARCHITECTURE.md): {homeless}"


def test_no_import_runs_up_a_layer(graph):
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in graph.items() if layer_of(a) is not None
              for b in sorted(targets) if layer_of(b) is not None and layer_of(b) > layer_of(a)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_nothing_imports_the_test_helpers(graph):
    assert not [a for a, targets in graph.items() for b in targets
                if any(fnmatch(b, p) for p in OUTSIDE) and not any(fnmatch(a, p) for p in OUTSIDE)]


# A row of the bundled sample, checked as validate and clean check it: the invariants read the
# mode's policy and the quality checks run, and no DSPy program is imported for it.
CHECK_A_ROW = """
import copy, json, sys
from importlib import resources
from pathlib import Path

from argalign.stages import validate  # noqa: F401
from argalign.scoring.gate import gate
from argalign.stages import clean  # noqa: F401

sample = Path(str(resources.files("argalign") / "data" / "sample"))
row = json.loads(sorted(sample.glob("*/train.jsonl"))[0].read_text().splitlines()[0])
aligned = copy.deepcopy(row)
reply = next(m for m in aligned["messages"] if m["role"] == "assistant" and m["thinking"])
reply["thinking"] = "I start from the argument's conclusion. " + reply["thinking"]
outcomes = [gate(row, aligned, mode).outcome.value for mode in ("A", "B")]
print(json.dumps([outcomes, sorted(m for m in ("dspy", "litellm") if m in sys.modules)]))
"""


def test_checking_a_row_imports_no_dspy():
    done = subprocess.run([sys.executable, "-c", CHECK_A_ROW], capture_output=True, text=True,
                          timeout=120, check=True)
    outcomes, loaded = json.loads(done.stdout)
    assert all(outcome in ("aligned", "rejected", "unchanged") for outcome in outcomes)
    assert loaded == []
