"""Every code a user can see, with what it means: one catalogue, one line per code.

Codes appear in result records (``codes``), rejects files, ``failures.jsonl``, ``validate``
reports and error messages. The catalogue is the data file ``data/codes.tsv`` (code, kind,
meaning): a new code is one line there, and ``argalign codes`` prints them all. A code means
one thing wherever it appears and is listed once.
"""

from __future__ import annotations

from importlib import resources

KIND_NAMES = ("row", "invariant", "id", "quality", "lm", "run", "export")


def _read() -> dict[str, dict[str, str]]:
    """``kind -> {code: meaning}`` from the packaged catalogue, checked as it is read."""
    text = (resources.files("argalign") / "data" / "codes.tsv").read_text(encoding="utf-8")
    entries = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
               if line.strip() and not line.startswith("#")][1:]  # after the header line
    kinds: dict[str, dict[str, str]] = {kind: {} for kind in KIND_NAMES}
    for lineno, line in entries:
        fields = line.split("\t")
        if len(fields) != 3 or fields[1] not in kinds or not fields[2].strip():
            raise ValueError(f"codes.tsv line {lineno}: expected code, kind and meaning: {line!r}")
        code, kind, meaning = fields
        if any(code in table for table in kinds.values()):
            raise ValueError(f"codes.tsv line {lineno}: {code} is listed twice")
        kinds[kind][code] = meaning
    return kinds


KINDS: dict[str, dict[str, str]] = _read()
ROW, INVARIANT, ID, QUALITY = KINDS["row"], KINDS["invariant"], KINDS["id"], KINDS["quality"]
LM, RUN, EXPORT = KINDS["lm"], KINDS["run"], KINDS["export"]


def catalogue() -> dict[str, tuple[str, str]]:
    """``code -> (kind, meaning)`` for every code."""
    return {code: (kind, meaning) for kind, table in KINDS.items()
            for code, meaning in table.items()}


def meaning(code: str) -> str:
    """What a code means; KeyError for a code that is not in the catalogue."""
    return catalogue()[code][1]
