"""The code catalogue: every code the package can emit is in it once, with its meaning."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import argalign
from argalign.cli import main
from argalign.core import codes
from argalign.scoring.invariants import CODES as INVARIANT_CODES

SRC = Path(argalign.__file__).parent
CODE_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Z]{4,}$")


def _not_codes(tree: ast.AST) -> set[str]:
    """Upper-case strings that are not codes: environment names, metavars, Unicode forms and
    the names in ``__all__``."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if any(word in called for word in ("environ", "getenv", "normalize")):
                out.update(a.value for a in node.args[:1] if isinstance(a, ast.Constant))
            if called.endswith("Registry"):  # a registry named by module and attribute
                out.update(a.value for a in node.args if isinstance(a, ast.Constant))
            out.update(k.value.value for k in node.keywords
                       if k.arg == "metavar" and isinstance(k.value, ast.Constant))
        elif isinstance(node, ast.arguments):
            named = [*node.posonlyargs, *node.args][-len(node.defaults):] if node.defaults else []
            pairs = [*zip(named, node.defaults), *zip(node.kwonlyargs, node.kw_defaults)]
            out.update(d.value for a, d in pairs if a.arg == "metavar" and isinstance(d, ast.Constant))
        elif isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value):
            out.update([node.slice.value] if isinstance(node.slice, ast.Constant) else [])
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and (t.id.endswith("_ENV") or t.id == "__all__")
                for t in node.targets):
            out.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return out


def _code_literals() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        skip = _not_codes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and CODE_LIKE.match(node.value) and node.value not in skip:
                found.setdefault(node.value, set()).add(path.relative_to(SRC).as_posix())
    return found


def test_every_code_the_package_emits_is_in_the_catalogue():
    literals = _code_literals()
    assert len(literals) > 50  # the scan sees the codes at all
    missing = {code: sorted(files) for code, files in literals.items()
               if code not in codes.catalogue()}
    assert missing == {}


def test_no_code_is_in_two_tables_and_every_code_has_a_meaning():
    assert sum(len(table) for table in codes.KINDS.values()) == len(codes.catalogue())
    assert all(meaning.strip() for _, meaning in codes.catalogue().values())
    assert all(CODE_LIKE.match(code) for code in codes.catalogue())


def test_validate_reports_the_invariant_and_id_codes():
    assert INVARIANT_CODES == {**codes.INVARIANT, **codes.ID}


@pytest.mark.parametrize("old", ["DUPLICATE_ID", "INVALID_JSON", "INVALID_JSON_LINE"])
def test_one_name_per_meaning(old):
    assert old not in codes.catalogue() and old not in _code_literals()


def test_the_codes_command_lists_the_catalogue(capsys):
    assert main(["codes"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == list(codes.catalogue())
    assert main(["codes", "--kind", "lm", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {entry["code"] for entry in listed} == set(codes.LM)
    assert all(entry["kind"] == "lm" and entry["meaning"] for entry in listed)


@pytest.mark.parametrize(("line", "problem"), [
    ("ROLE_CHANGED\tinvariant\tagain", "listed twice"),
    ("NEW_CODE\tnot-a-kind\tmeaning", "expected code, kind and meaning"),
    ("NEW_CODE\trow", "expected code, kind and meaning"),
])
def test_a_bad_catalogue_line_is_refused_with_its_line_number(tmp_path, monkeypatch, line, problem):
    text = (SRC / "data" / "codes.tsv").read_text("utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "codes.tsv").write_text(text + line + "\n", "utf-8")
    monkeypatch.setattr(codes.resources, "files", lambda package: tmp_path)
    with pytest.raises(ValueError, match=problem) as info:
        codes._read()
    assert f"line {len(text.splitlines()) + 1}" in str(info.value)
