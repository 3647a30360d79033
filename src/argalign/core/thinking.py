"""Cut a thinking into the prose the LM rewrites and the middle it keeps verbatim.

The opening is the prose before the first heading or fenced block, the closing the prose
after the last fenced block; everything between them (steps, Argdown, code) is the middle,
kept byte for byte. A thinking without structure is cut by paragraphs. So the LM's output
grows with the opening and closing, not with the thinking: a 40k-character thinking costs
the same as a 4k one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^```[^\n]*\n.*?^```[ \t]*$", re.M | re.S)
_HEADING = re.compile(r"^#{1,6} ", re.M)
# A closing is prose; a last paragraph that is markup (an annotated text, a list, formulas)
# is part of its step and stays in the middle.
_PROSE = re.compile(r"^[\"'(]?[A-Za-z]")
# An opening longer than this is cut after the paragraph that crosses it: the rest joins
# the middle, so that a thinking of pure prose is not re-emitted whole.
MAX_OPENING_CHARS = 1500


# The step list of a plan: "Step 1: ..." at the start of a line or after a sentence.
_PLAN_START = re.compile(r"(?:^|(?<=[.:!?] ))Step 1\s*[:.]", re.M)


@dataclass(frozen=True)
class ThinkingParts:
    opening: str
    middle: str
    closing: str

    @property
    def _plan_start(self) -> int | None:
        match = _PLAN_START.search(self.opening)
        return match.start() if match else None

    @property
    def preamble(self) -> str:
        """The opening's prose before its step list (all of it when there is no list)."""
        start = self._plan_start
        return self.opening if start is None else self.opening[:start].rstrip()

    @property
    def plan(self) -> str:
        """The opening's step list ("Step 1: ... Step n: ...") and what follows it, verbatim."""
        start = self._plan_start
        return "" if start is None else self.opening[start:]

    def join(self, opening: str | None = None, closing: str | None = None, *,
             preamble: str | None = None) -> str:
        """The thinking with a new opening, or a new preamble before the kept plan, and/or a
        new closing; the middle (and with ``preamble`` the plan) is untouched."""
        if preamble is not None:
            if opening is not None:
                raise ValueError("give a new opening or a new preamble, not both")
            start = self._plan_start
            if start is None:
                opening = preamble
            else:
                # Keep the original separator: "... a plan. Step 1:" or "...:\n\nStep 1:".
                sep = self.opening[len(self.opening[:start].rstrip()):start] or "\n"
                opening = preamble.strip() + sep + self.plan if preamble.strip() else self.plan
        opening = self.opening if opening is None else opening.strip()
        closing = self.closing if closing is None else closing.strip()
        return "\n\n".join(part for part in (opening, self.middle, closing) if part)

    def outline(self, limit: int = 1200) -> str:
        """Headings and the first line of each block of the middle, for the LM to see."""
        lines: list[str] = []
        for match in re.finditer(r"^(#{1,6} .*|```.*)$", self.middle, re.M):
            line = match.group(1)
            if line.strip() != "```":
                lines.append(line[:120])
        text = "\n".join(lines) or shorten(self.middle, 400)
        return shorten(text, limit)


def split_thinking(text: str) -> ThinkingParts:
    stripped = text.strip()
    fences = list(_FENCE.finditer(stripped))
    heading = _HEADING.search(stripped)
    starts = [m.start() for m in fences[:1]] + ([heading.start()] if heading else [])
    if not starts:
        return _split_paragraphs(stripped)
    first = min(starts)
    last = fences[-1].end() if fences else len(stripped)
    # A step heading after the last fence (or headings only) starts a section that belongs to
    # the middle: the closing is then only the last paragraph, if it is prose, not a heading.
    section = _HEADING.search(stripped, last) if fences else heading
    if section is not None:
        body = stripped[section.start():]
        head, sep, tail = body.rpartition("\n\n")
        last = section.start() + len(head) if sep and _PROSE.match(tail) else len(stripped)
    opening, middle = _cap_opening(stripped[:first].strip(), stripped[first:last].strip())
    return ThinkingParts(opening, middle, stripped[last:].strip())


def _cap_opening(opening: str, middle: str) -> tuple[str, str]:
    if len(opening) <= MAX_OPENING_CHARS:
        return opening, middle
    paragraphs = opening.split("\n\n")
    kept: list[str] = []
    size = 0
    while paragraphs and (not kept or size < MAX_OPENING_CHARS):
        kept.append(paragraphs.pop(0))
        size += len(kept[-1]) + 2
    rest = "\n\n".join(paragraphs)
    return "\n\n".join(kept), "\n\n".join(p for p in (rest, middle) if p)


def _split_paragraphs(text: str) -> ThinkingParts:
    paragraphs = text.split("\n\n")
    if len(paragraphs) == 1:
        return ThinkingParts(text, "", "")
    if len(paragraphs) == 2:
        return ThinkingParts(paragraphs[0], "", paragraphs[1])
    opening, middle = _cap_opening(paragraphs[0], "\n\n".join(paragraphs[1:-1]))
    return ThinkingParts(opening, middle, paragraphs[-1])


def shorten(text: str | None, limit: int) -> str:
    """Head and tail of a text, with a marker saying how much was left out."""
    if not text:
        return ""
    if len(text) <= limit:
        return text
    head = int(limit * 0.7)
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"
