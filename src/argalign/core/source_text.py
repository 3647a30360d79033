"""The source text of a user message: the argumentative text a task works on.

The source text must stay verbatim whatever a mode does to the request around it. It is found
in two ways, tried in turn:

1. **An intro line**: a line that ends with a colon and speaks of a text ("... from the
   following argumentative text:", "Take a close look at the text below:"). The source text
   starts on the next line and ends before any trailing paragraphs that are instructions.
2. **Paragraphs**: without an intro line, leading and trailing paragraphs that are
   instructions ("Instruction: What do you make of this?", "Identify the premises.") are set
   apart, and everything between the first and the last other paragraph is the source text.

Neither way is trusted alone. :func:`text_block` finds, paragraph by paragraph and without an
intro line, the stretch of a message from its first line of text to its last; the invariant
checker requires it (:func:`protected_text`) to survive verbatim as well as the source text. And a long
message in which no source text is found is :func:`unclear`: Mode A refuses it instead of
rewriting the text away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_SOURCE_CHARS = 80
# A message this long without a recognisable source text is not rewritten by Mode A.
UNCLEAR_CHARS = 400
# An instruction is short; a longer line or paragraph is text.
MAX_INSTRUCTION_CHARS = 600
# A paragraph of one line this short that leads or ends a message is taken for an instruction
# by :func:`text_block` ("Your turn.", a follow-up question); between text it is text.
SHORT_LINE_CHARS = 60

# A line that introduces the text to analyse: it ends with a colon and speaks of a text.
_INTRO = re.compile(r"^[^\n]*\b(text|passage|argument|excerpt)\b[^\n]*:[ \t]*$", re.IGNORECASE | re.M)
# The start of a line or paragraph that is an instruction rather than part of a text.
_INSTRUCTION = re.compile(
    r"^(Instruction:|Analy[sz]e|Generate|Reconstruct|Annotate|Identify|Assess|Evaluate|Formali[sz]e"
    r"|Create|Provide|Summari[sz]e|Write|Explain|Check|Use|Map|Determine|Translate|Please"
    r"|Can you|Could you)\b",
    re.IGNORECASE,
)
# Further openings of an instruction line: labels, requests and questions about the task.
_MORE_INSTRUCTION = re.compile(
    r"^(Instructions?|Task|Question|Query|Request|Prompt)\s*:"
    r"|^(Would you|Will you|I want|I'd like|I would like|I need|Let's|Now,? (please )?|Mark up"
    r"|Quick check|Thoughts on|Have a look|Here is|Here's"
    r"|Next,? |Then,? |Also,? |Finally,? |Try to|Begin by|Start by|Take a (close )?look"
    r"|Look at|Read the|Consider the (following|text|argument|passage)|Examine the|Answer"
    r"|Tell me|Describe|Discuss|List|Give|Show|Find|Compare|Rate|Put|Render|Make|Add|Include"
    r"|Keep|Focus on|Based on|Using|What do you (make|think)|What is|Which|How|Why"
    r"|Is (this|the|it|that) |Are (there|the|these) |Does |Do (you|the) )",
    re.IGNORECASE,
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_LABEL = re.compile(r"^(Instructions?|Task|Question|Query|Request|Prompt)\s*:", re.IGNORECASE)
# The end of a sentence that another one follows (in the same line).
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z])")
# With ``strict``, an instruction line is no longer than this.
STRICT_INSTRUCTION_CHARS = 300


@dataclass(frozen=True)
class SourceSpan:
    """A user message cut in four: ``before + intro + source + after == content``.

    ``intro`` is the intro line with its newline (empty when the paragraphs found the text).
    """

    before: str
    intro: str
    source: str
    after: str


def is_instruction(line: str, *, strict: bool = False) -> bool:
    """Whether a line (or a one-line paragraph) reads as an instruction, not as text.

    ``strict`` (for cutting the text out of a message, where a mistake would drop text): the
    line must also be short and be a label (``Task: ...``), a question or intro (ends with
    ``?`` or ``:``) or one sentence, so that "What do you make of this? Every member ..." is
    not taken for an instruction whole.
    """
    line = line.strip()
    if not line or len(line) > MAX_INSTRUCTION_CHARS:
        return False
    if not (_INSTRUCTION.match(line) or _MORE_INSTRUCTION.match(line) or _INTRO.match(line)):
        return False
    if not strict:
        return True
    return len(line) <= STRICT_INSTRUCTION_CHARS and bool(
        _LABEL.match(line) or line.endswith(("?", ":")) or not _SENTENCE_END.search(line))


def _paragraphs(content: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each paragraph, blank-line separated, surrounding whitespace left out."""
    spans, start = [], 0
    for brk in [*_PARAGRAPH_BREAK.finditer(content), None]:
        end = brk.start() if brk else len(content)
        text = content[start:end]
        if text.strip():
            lead = len(text) - len(text.lstrip())
            spans.append((start + lead, start + len(text.rstrip())))
        if brk:
            start = brk.end()
    return spans


def _instruction_paragraph(text: str, *, strict: bool = False) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    return len(text) <= MAX_INSTRUCTION_CHARS and bool(lines) and all(
        is_instruction(line, strict=strict) for line in lines)


def _by_intro(content: str) -> SourceSpan | None:
    match = _INTRO.search(content)
    if match is None:
        return None
    start = match.end()
    if content[start:start + 1] == "\n":
        start += 1
    paragraphs = content[start:].split("\n\n")
    while len(paragraphs) > 1 and _INSTRUCTION.match(paragraphs[-1].strip()):
        paragraphs.pop()
    source = "\n\n".join(paragraphs).rstrip()
    if len(source.strip()) < MIN_SOURCE_CHARS:
        return None
    end = start + len(source)
    return SourceSpan(content[:match.start()], content[match.start():start], source, content[end:])


def _by_paragraphs(content: str) -> SourceSpan | None:
    spans = _paragraphs(content)
    text = [k for k, (a, b) in enumerate(spans)
            if not _instruction_paragraph(content[a:b], strict=True)]
    if not text or len(text) == len(spans):
        return None  # no instruction set apart: nothing tells the text from the request
    start, end = spans[text[0]][0], spans[text[-1]][1]
    if len(content[start:end].strip()) < MIN_SOURCE_CHARS:
        return None
    return SourceSpan(content[:start], "", content[start:end], content[end:])


def find_source(content: str | None) -> SourceSpan | None:
    """The source text of a user message and what surrounds it, or None if none is found."""
    if not content:
        return None
    return _by_intro(content) or _by_paragraphs(content)


def unclear(content: str | None) -> bool:
    """A long message in which no source text is found: its text cannot be told from its
    instructions, so a free rewrite of the instructions could drop it."""
    return bool(content) and len(content.strip()) >= UNCLEAR_CHARS and find_source(content) is None


def _edge_instruction(text: str) -> bool:
    """A paragraph that reads as an instruction when it leads or ends a message: all its lines
    are instructions, or it is one short line ("Your turn.", a follow-up question)."""
    lines = text.split("\n")
    return (len(lines) == 1 and len(text) <= SHORT_LINE_CHARS) or _instruction_paragraph(text)


def text_block(content: str | None) -> str | None:
    """The part of a message that must survive any rewrite verbatim: from the first line of
    text to the last, or None if every paragraph reads as an instruction.

    Leading and trailing paragraphs that read as instructions are left out, and so are the
    instruction lines (an intro line, an imperative, a question) that open the first text
    paragraph or close the last; everything between is kept, whatever it reads as. Found
    without :func:`find_source`, so a source text it misses is still protected.
    """
    content = content or ""
    spans = _paragraphs(content)
    text = [k for k, (a, b) in enumerate(spans) if not _edge_instruction(content[a:b])]
    if not text:
        return None
    start, end = spans[text[0]][0], spans[text[-1]][1]
    lines = content[start:end].split("\n")
    while lines and (not lines[0].strip() or is_instruction(lines[0])):
        lines.pop(0)
    while lines and (not lines[-1].strip() or is_instruction(lines[-1])):
        lines.pop()
    block = "\n".join(lines).strip()
    return block or None


def protected_text(content: str | None) -> list[str]:
    """What a rewrite must keep verbatim besides the source text :func:`find_source` gives.

    Without an intro line, the :func:`text_block` of the whole message. With one, the lines
    before it read as the instructions (whatever their wording), so only a paragraph there too
    long to be an instruction is protected, together with the text block from the intro line on.
    """
    span = find_source(content)
    if span is None or not span.intro:
        block = text_block(content)
        return [block] if block else []
    parts = [span.before[a:b] for a, b in _paragraphs(span.before) if b - a > MAX_INSTRUCTION_CHARS]
    block = text_block(span.intro + span.source + span.after)
    return parts + ([block] if block else [])
