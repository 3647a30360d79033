"""No outcome word is a string literal outside :class:`argalign.core.records.Outcome`.

Every module under ``src/argalign`` is parsed with ``ast``; a string constant equal to an
outcome word (``aligned``, ``unchanged``, ``failed``, ``rejected``, ``not_improved``) fails
the test, wherever it stands: a comparison, a dict key, a column list, a JSON key of a file
format (those are spelled ``Outcome.ALIGNED.value``). Excepted: ``records.py``, which
defines the enum, and docstrings (prose, not a vocabulary). A word inside a longer string
(``"score_aligned"``, an f-string's text) is not an outcome word.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import argalign
from argalign.core.records import OUTCOMES, Outcome

SRC = Path(argalign.__file__).parent
WHERE_THE_ENUM_IS = SRC / "core" / "records.py"


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (of the module, a class, a function)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def outcome_literals(source: str) -> list[tuple[int, str]]:
    """``(line, word)`` of every string constant in ``source`` that is an outcome word."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in OUTCOMES and id(node) not in skip)


def test_the_words_are_the_enum():
    assert set(OUTCOMES) == {o.value for o in Outcome} == {
        "aligned", "unchanged", "failed", "rejected", "not_improved"}


@pytest.mark.parametrize("source, found", [
    ('x = "aligned"', [(1, "aligned")]),
    ('counts = {"rejected": 0}\nif outcome == "not_improved": pass', [(1, "rejected"),
                                                                    (2, "not_improved")]),
    ('f(outcome="failed")', [(1, "failed")]),
    ('def f():\n    """Ends aligned."""\n    return "unchanged"', [(3, "unchanged")]),
    ('"""aligned"""\nclass C:\n    """failed"""', []),  # docstrings
    ('x = ("score_aligned", f"{n} aligned", Outcome.ALIGNED.value)', []),
])
def test_the_scan_finds_literals_and_leaves_docstrings(source, found):
    assert outcome_literals(source) == found


def test_no_outcome_word_is_a_string_literal_outside_the_enum():
    found = {f"{path.relative_to(SRC)}:{line}: {word!r}"
             for path in sorted(SRC.rglob("*.py")) if path != WHERE_THE_ENUM_IS
             for line, word in outcome_literals(path.read_text(encoding="utf-8"))}
    assert not found, ("outcome words as string literals (use argalign.core.records.Outcome):\n"
                       + "\n".join(sorted(found)))
