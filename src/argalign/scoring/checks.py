"""Quality checks: rewrites that keep every hard invariant and are still worse than the original.

A check is not an invariant: the row stays well formed, but the rewrite lost something (the
thinking's plan, a deliverable the request named), leaked a prompt artefact, or games the
metric (a request that quotes the answer). The alignment modules run the field checks on every
LM output and retry with a fresh sample when one fails; a row whose last attempt still fails
ends ``rejected`` with the code. :func:`check_quality` runs the same checks on a whole aligned
row, for ``validate``, ``clean`` and the metric's gate.

Each finding has a stable code (:data:`argalign.core.codes.QUALITY`) and the index of the message concerned.
A mode's policy is read from :mod:`argalign.core.policies`: nothing here imports the modes or DSPy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from argalign.core import codes
from argalign.core.deliverables import (
    MAJOR_METHODS,
    METHODS,
    TASKS,
    Delivered,
    answer_task,
    asked,
    delivered,
    plan_steps,
    requested,
)
from argalign.core.policies import UserChange, user_change_policy
from argalign.core.records import Violation as Finding  # the same shape: code, message, detail
from argalign.core.schema import parse_conversation, split_source
from argalign.core.thinking import ThinkingParts, shorten, split_thinking

CODES = codes.QUALITY

# A copied span of this many words (not in the source text or the original request) is a quote.
QUOTE_WORDS = 10
# Share of a question's content words a rewritten request must keep to still ask it.
KEEP_SHARE = 0.8
# "Can you take care of this one?" asks the assistant, not a question about the argument.
_ASKS_ASSISTANT = re.compile(r"\b(?:can|could|would|will) you\b", re.IGNORECASE)
_QUESTION = re.compile(r"[^.?!:\n'\"‘“]*\?")

# Share of a clarification's content words already in the request above which it repeats it.
REPEAT_SHARE = 0.8

_LEAKS = re.compile(
    r"\[(?:the )?source text[^\]\n]{0,40}\]"          # our own placeholders, any spelling
    r"|\[\.\.\. ?\d+ characters omitted ?\.\.\.\]"    # the shortening marker
    r"|\b\d[\d,]* characters\b"                      # a length read off the placeholder
    r"|\[\[ ## \w+ ## \]\]"                           # DSPy's field markers
    r"|\b(?:original_request|middle_outline|original_opening|original_closing|source_excerpt"
    r"|system_prompt|new_thinking|predicted_answer|reconstructed_request)\b"
    r"|\{\{[^{}\n]{0,40}\}\}|\{(?:request|answer|opening|closing|plan|source|text|clarification"
    r"|preamble)\}"
    r"|</?(?:request|answer|opening|closing|plan|preamble|clarification)>"
    # The rewrite instructions talking through: what the editor was told, not what a user asks.
    r"|\bin the user'?s voice\b|\b(?:the|this) (?:fixed|final) answer\b|\bthe (?:new|original|"
    r"rewritten) request\b|\bwithout (?:restating |repeating )?the source text\b"
    r"|\bthe source text is appended\b"
    # DSPy's adapter instructions and our signatures' wording, echoed into a message.
    r"|\border of fields\b|\bJSON object\b|\boutput fields?\b"
    r"|`(?:request|opening|closing|clarification|plan|preamble|answer|middle_outline|methods"
    r"|delivers)`"
    r"|\bthe assistant'?s (?:private )?reasoning\b"
    # Words of the method-aware signatures, echoed by Qwen2.5-1.5B into a request or thinking.
    r"|\bin (?:your|my) own natural words\b|\bwhat the answer delivers\b"
    r"|\bthe (?:`?methods`?|delivers) (?:section|field|list)\b|\bthe analysis (?:under|listed"
    r" under|in) `?methods`?"
    # The editor's view of the row: "as stated in the original closing", "the original
    # question's style". A user or an assistant has no "original" of its own message.
    r"|\bthe original (?:question|query|closing|opening|prompt|thinking|reasoning)\b"
    r"|\brewr(?:ote|itten|iting|ite) (?:the|this|your|my) (?:request|question|query|prompt)\b",
    re.IGNORECASE,
)

# A plan's step title, which a request may well repeat ("Reconstruct the argument ...").
_STEP_LINE = re.compile(r"^.*\bStep \d+\s*[:.].*$", re.IGNORECASE | re.M)
# The assistant planning its work, or talking about the user, inside what the user writes.
_WORK = (r"(?:start|begin|first|plan|draw up|think|work|reconstruct|analy[sz]e|identify|"
         r"formali[sz]e|annotate|check|answer|map|write|go through)")
_ASSISTANT_VOICE = re.compile(
    rf"\blet me {_WORK}\b|\bI(?:'ll| will| am going to|'m going to| need to) {_WORK}\b"
    r"|\bmy plan\b|\bthe user (?:wants|asks|is asking|requests|needs)\b", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MARKUP = re.compile(r"^(?:#{1,6} .*|```.*)$", re.M)
# Inline LaTeX math: "$\\forall x: (F(x) \\rightarrow G(x))$".
_MATH = re.compile(r"\$[^$\n]{2,}\$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STEP_REF = re.compile(r"\bstep\s*\d+\b|\b(?:first|second|third|fourth|fifth|next|following|"
                       r"remaining)\s+steps?\b", re.I)
_FUTURE = re.compile(r"\b(?:will|shall|going to|let me|let's|I'll|I need to|I have to|"
                     r"I must)\b", re.I)
# First words of a request in the imperative.
_IMPERATIVES = frozenset((
    "add", "also", "analyse", "analyze", "annotate", "answer", "apply", "assess", "be", "begin",
    "bring", "check", "classify", "compare", "consider", "construct", "decide", "describe",
    "determine", "do", "draw", "evaluate", "explain", "focus", "formalise", "formalize", "give",
    "go", "identify", "include", "indicate", "judge", "keep", "label", "leave", "link", "list",
    "make", "map", "mark", "name", "note", "number", "please", "point", "present", "provide",
    "put", "quote", "rate", "reconstruct", "refer", "render", "report", "rewrite", "say",
    "separate", "show", "spell", "start", "state", "structure", "summarise", "summarize", "take",
    "tell", "test", "translate", "treat", "try", "turn", "use", "verify", "work", "write"))
# A thinking's frame speaking with the user's words: a sentence in the imperative addressed to
# the assistant ("Consider tone, persuasion and complexity."), or the user's voice.
_FRAME_IMPERATIVE = re.compile(
    r"^(?:please|consider|use|provide|analy[sz]e|assess|reconstruct|annotate|formali[sz]e|"
    r"identify|create|write|evaluate|explain|summari[sz]e|determine|answer|include|integrate|try|"
    r"take|begin|make sure)\b", re.I)
_USERS_VOICE = re.compile(r"\bI (?:want|need|would like|'d like) you to\b|\byou (?:should|must|"
                          r"need to|have to)\b|\byour (?:task|job) is\b", re.I)
# The assistant's own framing of what it restates: "I need to ...", "The aim is to ...".
_OWN_FRAMING = re.compile(r"\bI\b|\b(?i:me|my|mine|we|us|our|let's|let us|aim|goal|task|job"
                          r"|query|question|request|user|asks?|asked|wants?|needs?|plan)\b")
# A sentence that answers ("Yes, her position is deductively closed.") may repeat the question.
_ANSWERS = re.compile(r"^(?:yes|no|true|false|correct|incorrect)\b", re.I)
# A quotation in a frame ("Now I can address the query: '...'") cites the request, it does not
# speak with it; an apostrophe inside a word ("Donovan's") opens no quote.
_QUOTED = re.compile(r"(?<!\w)'[^'\n]+'(?!\w)|\"[^\"\n]+\"|“[^”\n]+”|‘[^’\n]+’")
# An opening that acknowledges a user who said nothing to agree with ("I agree.", "Sure!").
_ACKNOWLEDGES = re.compile(r"^\W*(?:I agree|I see|sure|certainly|of course|absolutely|great|"
                           r"understood|got it|alright|noted|indeed|as an AI(?: language model)?)"
                           r"\b", re.I)
# An opening claiming work done that the steps after it still do ("I have integrated the data
# into my argdown code").
_CLAIMS_DONE = re.compile(r"\bI(?: have|'ve) (?:already )?(?:analy[sz]ed|assessed|reconstructed|"
                          r"formali[sz]ed|annotated|mapped|integrated|identified|evaluated|"
                          r"checked|created|written|done|considered|completed|summari[sz]ed)\b"
                          # the story of the work told in the past before the work: "I started
                          # by reconstructing", "I then proceeded to create"
                          r"|\bI (?:then |first )?(?:started|began|proceeded|reconstructed|"
                          r"constructed|formali[sz]ed|annotated|marked|linked|mapped|analy[sz]ed|"
                          r"identified|created)\b",
                          re.I)
# Planned steps an opening may name before the plan lists them itself: as many as this, and a
# third of the plan, is a restatement (a sixteen-step plan has three "Formalize ..." steps that
# one sentence about formalizing names).
RESTATED_STEPS = 3
# A new opening that says the answer before any step: "with no explicit mention of (9)" ahead of
# the verdict "Yes.". "whether or not" asks, it does not answer.
_PREJUDGES = re.compile(r"\b(?:yes|no|not|never|none|neither|nowhere|cannot)\b|n't\b", re.I)
_WHETHER_OR_NOT = re.compile(r"\bwhether or not\b|\bor not\b", re.I)
# Share of a frame sentence's content words (of at least ECHO_WORDS) found in the request.
ECHO_SHARE = 0.8
ECHO_WORDS = 5
_THIRD_PERSON = re.compile(r"\bthe (?:assistant|AI)\b", re.I)
_TOOL_CALL_TEXT = re.compile(r"\btool[ _-]?call\s*:|</?tool_call>|\b[A-Za-z_]\w*\(\s*\{"
                             r"|\"(?:name|arguments)\"\s*:", re.I)
# A closing pointing at content: "the SMT-LIB code snippet above", "the table below", "the code".
_POINTS = re.compile(r"\b(above|below)\b|\b(?:the|this) (?:code|snippet)\b", re.I)
_CONTENT_KINDS = {
    "smt": re.compile(r"\bSMT|\bz3\b", re.I),
    "argdown": re.compile(r"\bargdown\b", re.I),
    "code": re.compile(r"\b(?:code|snippet|program)\b", re.I),
    "table": re.compile(r"\btables?\b", re.I),
    "map": re.compile(r"\b(?:map|diagram)\b", re.I),
}
_HAS_KIND = {
    "smt": re.compile(r"\((?:declare-|assert\b|check-sat)"),
    "argdown": re.compile(r"^```argdown|^\(\d+\) ", re.M | re.I),
    "code": re.compile(r"^```", re.M),
    "table": re.compile(r"^\s*\|.*\|\s*$", re.M),
    "map": re.compile(r"^```", re.M),
}
# A closing that states a verdict ("No, it is not.", "Yes, ... is deductively closed.").
_VERDICT_WORD = re.compile(r"\b(?:yes|no|not|nowhere|never|none|neither|both|true|false|correct|"
                           r"incorrect|cannot)\b|n't\b", re.I)
# A request pointing back at a turn before it.
_REFERS_BACK = re.compile(
    r"\b(?:as|like) (?:I (?:asked|said|did) )?(?:before|last time|earlier)\b|\bagain\b"
    r"|\b(?:the|my|your|our) (?:previous|last|earlier|prior) (?:request|answer|response|message"
    r"|conversation|turn|query|question|task|one|format|instructions?|exchange)\b"
    r"|\bthe same (?:format|way|style|approach|structure) as\b|\bas in my (?:last|previous)\b",
    re.I)
# Content-word Jaccard at or above which a rewrite only swapped a word or dropped a sentence.
TRIVIAL_JACCARD = 0.85
_ASKING = re.compile(r"\b(?:you|your|please|I want|I'd like|I would like|I need|I expect|"
                     r"I am asking|I'm asking|should|make sure)\b", re.I)
_WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
_TOKEN = re.compile(r"\w+")
_STOP = frozenset("""the and for that this with from are was were will would should could can
you your yours our they them their its it's not but have has had been being into onto
than then there here what which who whom whose when where why how all any each every some such
only own same very just also more most other about above below under over again further once
both few nor too out off per via shall may might must does did doing done one two three four
five user assistant request answer text given following please""".split())  # noqa: SIM905


def content_words(text: str) -> set[str]:
    """Lower-cased words of three letters or more, without stop words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def instructions(user_content: str | None) -> str:
    """A user message without its source text: what it asks, not what it works on."""
    content = user_content or ""
    parts = split_source(content)
    return content if parts is None else parts[0] + parts[2]


# --- field checks: one LM output against what it must keep -----------------------------------

def leaked(text: str, original: str = "") -> list[str]:
    """Placeholders and template markers in ``text`` that ``original`` does not contain."""
    return sorted(_markers(text) - _markers(original))


@functools.lru_cache(maxsize=1024)  # an original is checked against every attempt and again by the gate
def _markers(text: str) -> frozenset[str]:
    return frozenset(m.group(0) for m in _LEAKS.finditer(text))


def _shingles(text: str, size: int = QUOTE_WORDS) -> set[tuple[str, ...]]:
    words = _TOKEN.findall(text.lower())
    return {tuple(words[i:i + size]) for i in range(len(words) - size + 1)}


def copied_span(text: str, reference: str, *, allowed: Iterable[str] = ()) -> str | None:
    """A run of :data:`QUOTE_WORDS` words of ``reference`` that ``text`` repeats, unless one of
    ``allowed`` has it too (the source text, the original request), or all of it but one word at
    either end ("the question: is proposition (1) ..." where the original says "this question")."""
    common = _shingles(text) & _shingles(reference)
    for other in allowed:
        if not common:
            break
        near = _shingles(other, QUOTE_WORDS - 1)
        common = {c for c in common - _shingles(other) if c[1:] not in near and c[:-1] not in near}
    return " ".join(min(common)) if common else None


def questions(text: str) -> list[str]:
    """The questions an instruction text asks ("... answer this question: 'Is (1) explicitly
    mentioned in the text?'"), each from its last sentence boundary or quote to its "?"."""
    return [q.strip() for q in _QUESTION.findall(text)
            if len(content_words(q)) >= 2 and not _ASKS_ASSISTANT.search(q)]


def _kept(question: str, request: str) -> bool:
    words = content_words(question)
    return len(words & content_words(request)) >= KEEP_SHARE * len(words)


def refers_back(request: str) -> list[str]:
    """Phrases of a request that point at an earlier turn ("as before", "the previous request",
    "again")."""
    return [m.group(0) for m in _REFERS_BACK.finditer(request)]


def unexpected_methods(request: str, response: Delivered) -> list[str]:
    """The plan's major methods (:attr:`Delivered.major_methods`) that ``request`` does not
    name, in words, in the order of :data:`METHODS`."""
    missing = response.major_methods - requested(request)
    return [METHODS[m] for m in METHODS if m in missing]


def check_request(request: str, *, original: str, answer: str, system: str, source: str,
                  response: Delivered, thinking: str = "", first_turn: bool = True,
                  index: int | None = None) -> list[Finding]:
    """Mode A: a new request (instructions only) against the original one, the answer and the
    turn's thinking (the request may name the plan's steps, not copy the assistant's prose).

    Args:
        first_turn: no turn comes before this one, so a request that points back points at
            nothing.
    """
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the request")
           for marker in leaked(request, original)]
    out += _written(request, original, "request", index)
    named = requested(original) & response.everything
    dropped = sorted(named - requested(request))
    dropped += [f"the question {question!r}" for question in questions(original)
                if not _kept(question, request)]
    if dropped:
        out.append(Finding("DELIVERABLE_DROPPED", index,
                           f"the original request named {', '.join(dropped)}, which the response "
                           f"uses; the new one does not"))
    # A request that dropped a task the original asked for is DELIVERABLE_DROPPED already.
    if response.task is not None and response.task not in requested(request) | named:
        out.append(Finding("REQUEST_SKIPS_TASK", index,
                           f"the answer is mainly {TASKS[response.task]}, and the request does "
                           f"not ask for it"))
    foreign = sorted((requested(request) & set(TASKS)) - response.everything - requested(original))
    if foreign:
        out.append(Finding("REQUEST_ASKS_UNDELIVERED", index,
                           f"the request asks for {', '.join(foreign)}, which the answer does "
                           f"not deliver"))
    span = copied_span(request, answer, allowed=(source, original))
    if span:
        out.append(Finding("REQUEST_QUOTES_ANSWER", index, f"copies the answer: {span!r}"))
    # A span the answer has too is reported once, as a quote of the answer.
    span = copied_span(request, _STEP_LINE.sub("", thinking), allowed=(source, original, answer))
    if span:
        out.append(Finding("REQUEST_QUOTES_THINKING", index,
                           f"copies the assistant's reasoning: {span!r}"))
    voice = _ASSISTANT_VOICE.search(request)
    if voice and not _ASSISTANT_VOICE.search(original):
        out.append(Finding("REQUEST_IN_ASSISTANT_VOICE", index,
                           f"the assistant plans in the request: {voice.group(0)!r}"))
    span = copied_span(request, system, allowed=(original,))
    if span:
        out.append(Finding("REQUEST_COPIES_SYSTEM", index, f"copies the system prompt: {span!r}"))
    back = refers_back(request)
    if back and (first_turn or not refers_back(original)):
        where = "in the first turn" if first_turn else "where the original request did not"
        out.append(Finding("REQUEST_REFERS_TO_NOTHING", index,
                           f"refers back {where}: {back[0]!r}"))
    unexpected = unexpected_methods(request, response)
    if unexpected:
        out.append(Finding("METHOD_UNEXPECTED", index,
                           f"the plan goes on to {'; '.join(unexpected)}, which the request does "
                           f"not make expectable"))
    return out


def control_characters(text: str) -> list[str]:
    """Control characters other than newline and tab, as escapes: a LaTeX ``\\forall`` that
    came back through JSON as a form feed and "orall"."""
    return sorted({repr(c) for c in _CONTROL.findall(text)})


def _written(text: str, original: str, where: str, index: int | None) -> list[Finding]:
    """What any text the LM wrote must not have: control characters it did not find there."""
    found = sorted(set(control_characters(text)) - set(control_characters(original)))
    return [Finding("TEXT_HAS_CONTROL_CHARS", index,
                    f"{', '.join(found)} in the {where} (a backslash sequence read as JSON?)")
            ] if found else []


def _markup(frame: str, original_frame: str, where: str, index: int | None) -> list[Finding]:
    """A thinking's frame is prose: headings or code fences in it that the original frame did
    not have are a copy of the middle's outline, or a fence left open; formulas in it that the
    original frame did not have restate the steps' work, and a 1.5B model restates them wrong."""
    new = _MARKUP.findall(frame)
    if new and len(new) > len(_MARKUP.findall(original_frame)):
        return [Finding("FRAME_HAS_MARKUP", index,
                        f"the {where} has {len(new)} heading or fence line(s), first {new[0]!r}")]
    formulas = [f for f in _MATH.findall(frame) if f not in original_frame]
    if formulas:
        return [Finding("FRAME_HAS_MARKUP", index,
                        f"the {where} writes a formula of its own: {shorten(formulas[0], 80)!r}")]
    return []


def echoes(frame: str, request: str) -> list[str]:
    """Sentences of a thinking's frame that speak with the user's words: in the imperative
    ("Consider tone, persuasion and complexity."), in the user's voice ("I want you to ..."),
    or copying the request's instructions (at least :data:`ECHO_SHARE` of :data:`ECHO_WORDS`
    or more content words) without the assistant's own framing ("I need to ...", "The aim is
    ..."). A quotation of the request is citing it, a plan's step line may name what the
    request asks, and an answer ("Yes, ...") may repeat the question: none of them speaks with
    the user's words."""
    asked_words = content_words(request)
    out = []
    for sentence in _SENTENCE.split(_STEP_LINE.sub("", _QUOTED.sub(" ", frame))):
        sentence = sentence.strip()
        words = content_words(sentence)
        copied = (len(words) >= ECHO_WORDS and not _OWN_FRAMING.search(sentence)
                  and not _ANSWERS.match(sentence)
                  and len(words & asked_words) >= ECHO_SHARE * len(words))
        if _FRAME_IMPERATIVE.match(sentence) or _USERS_VOICE.search(sentence) or copied:
            out.append(sentence)
    return out


def third_person(frame: str) -> list[str]:
    """Where a frame speaks of the assistant in the third person ("the assistant will ...")."""
    return [m.group(0) for m in _THIRD_PERSON.finditer(frame)]


def tool_calls_as_text(frame: str) -> list[str]:
    """Tool calls written as text ("Tool call: f({...})", ``<tool_call>``): a thinking's prose
    describes a call, the message's ``tool_calls`` makes it."""
    return [m.group(0) for m in _TOOL_CALL_TEXT.finditer(frame)]


def _frame(frame: str, original_frame: str, request: str, where: str, index: int | None
           ) -> list[Finding]:
    """The checks every rewritten prose part of a thinking (preamble, closing) must pass."""
    out = []
    said = [s for s in echoes(frame, request) if s not in echoes(original_frame, request)]
    if said:
        out.append(Finding("THINKING_ECHOES_REQUEST", index,
                           f"the {where} speaks with the user's words: {shorten(said[0], 120)!r}"))
    named = third_person(frame)
    if named and not third_person(original_frame):
        out.append(Finding("THINKING_THIRD_PERSON", index,
                           f"the {where} speaks of {named[0]!r} instead of in the first person"))
    calls = tool_calls_as_text(frame)
    if calls and not tool_calls_as_text(original_frame):
        out.append(Finding("FAKE_TOOL_CALL", index,
                           f"the {where} writes a tool call as text: {calls[0]!r}"))
    return out


def check_opening(opening: str, *, original_thinking: str, request: str = "",
                  index: int | None = None) -> list[Finding]:
    """A new opening (everything before the kept middle) against the original thinking.

    Args:
        request: the instructions the thinking answers (without the source text).
    """
    parts = split_thinking(original_thinking)
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the thinking")
           for marker in leaked(opening, original_thinking)]
    out += _written(opening, original_thinking, "thinking", index)
    out += _markup(opening, parts.opening, "opening", index)
    out += _frame(ThinkingParts(opening, "", "").preamble, parts.preamble, request, "opening",
                  index)
    preamble = ThinkingParts(opening, "", "").preamble
    out += check_opening_prose(preamble, parts, index)
    planned = plan_steps(parts.plan)
    if planned:
        kept = set(plan_steps(opening))
        missing = [step for step in planned if step not in kept]
        if missing:
            out.append(Finding("PLAN_DROPPED", index,
                               f"{len(missing)} of {len(planned)} planned steps are no longer "
                               f"listed, first {missing[0]!r}"))
    return out


def _stems(text: str) -> set[str]:
    """Content words cut to a rough stem, so "creating an inference graph" repeats "Create an
    inference graph"."""
    out = set()
    for word in content_words(text):
        word = re.sub(r"(?:ing|ed|es|s|e)$", "", word)
        if len(word) > 3 and word[-1] == word[-2]:
            word = word[:-1]  # mapping -> mapp -> map
        out.add(word[:6])
    return out


def restated_steps(prose: str, steps: list[str]) -> list[str]:
    """The planned steps whose title a stretch of prose repeats (at least
    :data:`KEEP_SHARE` of the title's stemmed content words)."""
    words = _stems(_STEP_LINE.sub("", prose))
    return [step for step in steps
            if _stems(step) and len(_stems(step) & words) >= KEEP_SHARE * len(_stems(step))]


def repeated_sentences(prose: str) -> list[str]:
    """Sentences with three content words or more that a stretch of prose says twice, in the
    same words or nearly (:func:`nearly_same`: "This takes a few steps" and "This will take a
    few steps")."""
    seen: list[str] = []
    out = []
    for sentence in (s.strip() for s in _SENTENCE.split(prose)):
        words = content_words(sentence)
        if len(words) < 3:
            continue
        # One word swapped in a three-word sentence is another sentence ("I map it first.").
        same = (lambda a, b: nearly_same(a, b)) if len(words) >= 4 else \
            (lambda a, b: content_words(a) == content_words(b))
        if any(same(sentence, earlier) for earlier in seen) and sentence not in out:
            out.append(sentence)
        seen.append(sentence)
    return out


def check_opening_prose(preamble: str, parts: ThinkingParts, index: int | None) -> list[Finding]:
    """An opening's own prose (before the kept plan) against the original's: it may say why
    this plan answers the request, not restate the plan, acknowledge nobody, or claim the work
    the steps after it do."""
    out = []
    steps = plan_steps(parts.plan)
    restated = restated_steps(preamble, steps)
    if len(restated) >= max(RESTATED_STEPS, len(steps) / 3) \
            and len(restated_steps(parts.preamble, steps)) < RESTATED_STEPS:
        out.append(Finding("OPENING_RESTATES_PLAN", index,
                           f"the opening repeats {len(restated)} of the {len(steps)} planned steps "
                           f"in prose before the plan lists them, first {restated[0]!r}"))
    original = parts.preamble.strip()
    added = preamble[:-len(original)] if original and preamble.endswith(original) else preamble
    # A question, quoted or asked, does not answer ("Does the text say that Jonas is not ...?").
    said = _QUOTED.sub(" ", _QUESTION.sub(" ", _WHETHER_OR_NOT.sub(" ", added)))
    verdict = _PREJUDGES.search(said)
    if verdict and states_verdict(parts.closing) and not _PREJUDGES.search(
            _WHETHER_OR_NOT.sub(" ", original)):
        out.append(Finding("OPENING_PREJUDGES_ANSWER", index,
                           f"the opening says the answer before any step ({verdict.group(0)!r} in "
                           f"{shorten(added, 100)!r}); the thinking ends with the verdict"))
    twice = repeated_sentences(preamble) or repeated_sentences(f"{added}\n{parts.closing}")
    if twice and not repeated_sentences(parts.preamble):
        out.append(Finding("OPENING_REPEATS_ITSELF", index,
                           f"the opening says {shorten(twice[0], 80)!r} twice, or what the "
                           f"closing says"))
    nod = _ACKNOWLEDGES.match(preamble)
    if nod and not _ACKNOWLEDGES.match(parts.preamble):
        out.append(Finding("OPENING_NON_SEQUITUR", index,
                           f"the opening answers a remark nobody made: {nod.group(0).strip()!r}"))
    claim = _CLAIMS_DONE.search(preamble)
    if claim and (parts.plan or parts.middle) and not _CLAIMS_DONE.search(parts.preamble):
        out.append(Finding("OPENING_CLAIMS_DONE", index,
                           f"the opening claims as done what the steps after it still do: "
                           f"{claim.group(0)!r}"))
    return out


def replans(text: str) -> list[str]:
    """Sentences of ``text`` that announce a step still to come ("In my second step, I will
    ..."): in a closing, after the middle has done the steps, that is planning in the wrong
    place. A look back ("With Step 3 done, ...") is no announcement."""
    return [sentence.strip() for sentence in _SENTENCE.split(text)
            if _STEP_REF.search(sentence) and _FUTURE.search(sentence)]


def missing_references(closing: str, middle: str, after: str = "") -> list[str]:
    """Sentences of a closing that point at content the thinking does not have: "the SMT-LIB
    code snippet above" over a middle with no code. What lies "above" must be in the middle;
    what lies "below", or "the code" itself, may also be in ``after`` (the answer that follows).
    """
    out = []
    for sentence in _SENTENCE.split(closing):
        pointer = _POINTS.search(sentence)
        if not pointer:
            continue
        where = middle if (pointer.group(1) or "").lower() == "above" else f"{middle}\n{after}"
        kinds = [kind for kind, named in _CONTENT_KINDS.items() if named.search(sentence)]
        if any(not _HAS_KIND[kind].search(where) for kind in kinds):
            out.append(sentence.strip())
    return out


def states_verdict(closing: str) -> bool:
    """Whether a closing says yes or no ("No, it is not.", "... is deductively closed: yes")."""
    return bool(_VERDICT_WORD.search(closing))


def check_closing(closing: str, *, original_thinking: str, request: str = "", source: str = "",
                  answer: str = "", index: int | None = None) -> list[Finding]:
    """A new closing (everything after the kept middle) against the original thinking.

    Args:
        request: the instructions the thinking answers (without the source text).
        source: the source text of the user message.
        answer: what follows the thinking (the answer or the next tool call).
    """
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the thinking")
           for marker in leaked(closing, original_thinking)]
    parts = split_thinking(original_thinking)
    original_closing = parts.closing
    out += _written(closing, original_thinking, "thinking", index)
    out += _markup(closing, original_closing, "closing", index)
    out += _frame(closing, original_closing, request, "closing", index)
    announced = replans(closing)
    if announced and not replans(original_closing):
        out.append(Finding("CLOSING_REPLANS", index,
                           f"the closing announces steps instead of leading to the answer: "
                           f"{shorten(announced[0], 120)!r}"))
    span = next(filter(None, (copied_span(closing, text, allowed=(original_thinking,))
                              for text in (request, source))), None)
    if span:
        out.append(Finding("CLOSING_COPIES_INPUT", index,
                           f"the closing copies the user's message: {span!r}"))
    pointing = missing_references(closing, parts.middle, answer)
    if pointing and not missing_references(original_closing, parts.middle, answer):
        out.append(Finding("CLOSING_REFERS_TO_MISSING", index,
                           f"the closing points at what the thinking does not have: "
                           f"{shorten(pointing[0], 120)!r}"))
    if closing.strip() and answer_task(answer) == "verdict" and states_verdict(original_closing) \
            and not states_verdict(closing):
        out.append(Finding("CLOSING_DROPS_VERDICT", index,
                           f"the original closing states the verdict "
                           f"({shorten(original_closing, 80)!r}); the new one does not"))
    return out


def is_request(text: str) -> bool:
    """Whether ``text`` asks the assistant for something: an imperative ("Number the
    premises."), a polite or wanting form ("Please ...", "I'd like ..."), or words addressed to
    the assistant ("you", "should"). A statement about the text ("The argument does not say
    ...") is not a request, however true."""
    first_word = (_TOKEN.findall(text.lower()) or [""])[0]
    return first_word in _IMPERATIVES or bool(_ASKING.search(text))


def check_clarification(clarification: str, *, request: str, response: Delivered,
                        index: int | None = None) -> list[Finding]:
    """Mode B: an appended clarification against the request it follows and the response."""
    if not clarification.strip():
        return []
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the clarification")
           for marker in leaked(clarification)]
    out += _written(clarification, request, "clarification", index)
    words = content_words(clarification)
    if words and len(words & content_words(request)) / len(words) >= REPEAT_SHARE:
        out.append(Finding("CLARIFICATION_REPEATS", index,
                           "the clarification adds no word the request does not already have"))
    if not is_request(clarification):
        out.append(Finding("CLARIFICATION_NOT_A_REQUEST", index,
                           f"the user does not ask anything here: {shorten(clarification, 120)!r}"))
    foreign = sorted((asked(clarification) & set(TASKS)) - response.everything - asked(request))
    if foreign:
        out.append(Finding("CLARIFICATION_CONTRADICTS", index,
                           f"asks for {', '.join(foreign)}, which the answer does not deliver"))
    return out


# --- a whole aligned row ------------------------------------------------------------------

def check_quality(original: dict[str, Any], aligned: dict[str, Any], mode: str) -> list[Finding]:
    """Every quality finding of an aligned row against its original.

    Expects a row that passed the hard invariants (same messages, roles and answers).
    """
    # A mode that only appends to the request (Mode B) adds a clarification; any other rewrites it.
    appends = user_change_policy(mode) is UserChange.APPEND
    conversation = parse_conversation(original, str(original.get("source_id", "row")))
    new_messages = aligned["messages"]
    system = conversation.system.content or "" if conversation.system else ""
    out: list[Finding] = []
    for number, turn in enumerate(conversation.turns):
        i = turn.user_index
        old_user = conversation.messages[i].content or ""
        new_user = new_messages[i].get("content") or ""
        source, request = rewritten_instructions(old_user, new_user)
        response = _delivered(conversation, turn)
        if new_user != old_user:
            if appends and new_user.startswith(old_user):
                out += check_clarification(new_user[len(old_user):].strip(),
                                           request=instructions(old_user), response=response,
                                           index=i)
            else:
                out += check_request(request, original=instructions(old_user),
                                     answer=_final_answer(conversation, turn), system=system,
                                     source=source, response=response,
                                     thinking=turn_thinking(conversation, turn),
                                     first_turn=number == 0, index=i)
        for j in turn.assistant_indices:
            old = conversation.messages[j].thinking
            new = new_messages[j].get("thinking")
            if not old or not isinstance(new, str) or new == old:
                continue
            opening, closing = new_frame(old, new)
            out += check_opening(opening, original_thinking=old, request=request, index=j)
            out += check_closing(closing, original_thinking=old, request=request, source=source,
                                 answer=what_follows(conversation, turn, j), index=j)
            preamble = ThinkingParts(opening, "", "").preamble
            if first_reply(conversation, turn, j) and preamble != split_thinking(old).preamble:
                out += check_method_named(preamble, response=response, request=request, index=j)
    return out


def first_reply(conversation, turn, index: int) -> bool:
    """Whether the assistant message at ``index`` replies before any tool result of its turn."""
    return not any(conversation.messages[k].role == "tool" for k in turn.reply_indices
                   if k < index)


def rewritten_instructions(old_user: str, new_user: str) -> tuple[str, str]:
    """``(source, instructions)``: the source text of the original user message and what the
    new one asks besides it."""
    source = (split_source(old_user) or ("", "", ""))[1]
    return source, (new_user.replace(source, "", 1) if source and source in new_user
                    else instructions(new_user))


def new_frame(old: str, new: str) -> tuple[str, str]:
    """The opening and closing of ``new``, a rewrite of the thinking ``old`` around its kept
    middle (split afresh when the middle is not found)."""
    middle = split_thinking(old).middle
    at = new.find(middle) if middle else -1
    if at > 0:
        return new[:at], new[at + len(middle):]
    parts = split_thinking(new)
    return parts.opening, parts.closing


def what_follows(conversation, turn, index: int) -> str:
    """The first content of the turn's assistant messages from ``index`` on: what a thinking
    leads to (its answer; "" when a tool call comes first)."""
    return next((conversation.messages[i].content or "" for i in turn.assistant_indices
                 if i >= index and conversation.messages[i].content), "")


# --- a rewrite that changed nothing that matters ------------------------------------------

def jaccard(a: str, b: str) -> float:
    """Content-word Jaccard similarity of two texts (1.0 for two texts without content words)."""
    x, y = content_words(a), content_words(b)
    return len(x & y) / len(x | y) if x | y else 1.0


def nearly_same(a: str, b: str) -> bool:
    """Whether two texts have nearly the same content words: Jaccard at least
    :data:`TRIVIAL_JACCARD`, or one word swapped for another (in a short text, one word alone
    moves the Jaccard below it)."""
    x, y = content_words(a), content_words(b)
    return jaccard(a, b) >= TRIVIAL_JACCARD or (len(x - y) <= 1 and len(y - x) <= 1)


def trivial_request(old: str, new: str) -> bool:
    """Whether new instructions only swap a word of the old ones ("following query:" to
    "following question:"): the same labels asked, the same questions, and nearly the same
    content words (:func:`nearly_same`)."""
    return asked(old) == asked(new) and questions(old) == questions(new) and nearly_same(old, new)


def trivial_thinking(old: str, new: str) -> bool:
    """Whether a rewritten thinking kept its middle and its frame (preamble and closing) only
    dropped a sentence or swapped a word (:func:`nearly_same`), naming no label that the old
    frame did not name."""
    old_parts = split_thinking(old)
    if old_parts.middle and old_parts.middle not in new:
        return False  # the kept part changed: more than the frame
    opening, closing = new_frame(old, new)
    before = f"{old_parts.preamble}\n{old_parts.closing}"
    after = f"{ThinkingParts(opening, '', '').preamble}\n{closing}"
    return nearly_same(before, after) and asked(after) <= asked(before)


def trivial_change(original: dict[str, Any], aligned: dict[str, Any], mode: str) -> str | None:
    """Why a rewrite that keeps the invariants is no alignment: every field it changed changed
    trivially (:func:`trivial_request`, :func:`trivial_thinking`); None when one changed for
    real. A Mode B clarification is never trivial."""
    appends = user_change_policy(mode) is UserChange.APPEND
    changed = []
    for i, (old, new) in enumerate(zip(original["messages"], aligned["messages"])):
        if old.get("role") == "user" and old.get("content") != new.get("content"):
            before, after = old.get("content") or "", new.get("content") or ""
            if appends or not trivial_request(instructions(before),
                                              rewritten_instructions(before, after)[1]):
                return None
            changed.append(f"the request at {i}")
        elif isinstance(old.get("thinking"), str) and old.get("thinking") != new.get("thinking"):
            if not trivial_thinking(old["thinking"], new.get("thinking") or ""):
                return None
            changed.append(f"the thinking at {i}")
    if not changed:
        return None
    return f"only trivial edits (a word swapped, a sentence dropped) in {', '.join(changed)}"


def turn_thinking(conversation, turn) -> str:
    """The turn's original reasoning, every assistant message of it."""
    return "\n\n".join(conversation.messages[i].thinking or "" for i in turn.assistant_indices)


def _final_answer(conversation, turn) -> str:
    for i in reversed(turn.assistant_indices):
        if conversation.messages[i].content:
            return conversation.messages[i].content or ""
    return ""


def _delivered(conversation, turn) -> Delivered:
    messages = [conversation.messages[i] for i in turn.assistant_indices]
    return delivered(_final_answer(conversation, turn),
                     [m.tool_calls for m in messages if m.tool_calls],
                     [m.thinking for m in messages if m.thinking])


# --- the assistant's own sentences --------------------------------------------------------------
# A thinking's prose is the assistant's voice. Sentences that copy the request, give orders in the
# user's voice, or write a tool call as text are not: the metric leaves them out of a thinking's
# frame, so that echoing the request or its label words raises no part of a score.
ECHO_SHARE = 0.8
ECHO_MIN_WORDS = 5
_TOOL_TEXT = re.compile(r"\btool[ _-]?call\b|<tool_call>|\b[a-z][a-z0-9_]*\(\s*\{", re.I)
_USER_VOICE = re.compile(r"\bI want you to\b|\byou should\b|\byour task\b|\bplease\b", re.I)
_FIRST_PERSON = re.compile(r"\b(?:I|me|my|I'm|I'll|let's)\b")


def is_own_sentence(sentence: str, request_words: set[str]) -> bool:
    """Whether a sentence of a thinking's prose is the assistant's own (see above)."""
    first = _TOKEN.findall(sentence[:40].lower())
    if first and first[0] in _IMPERATIVES:
        return False
    if _TOOL_TEXT.search(sentence) or _USER_VOICE.search(sentence):
        return False
    # A restatement in the assistant's own voice ("I need to reconstruct ...") is its own; the
    # request's words in nobody's voice are a copy.
    words = content_words(sentence)
    return bool(_FIRST_PERSON.search(sentence)) or not (
        len(words) >= ECHO_MIN_WORDS and len(words & request_words) >= ECHO_SHARE * len(words))


def own_sentences(prose: str, request: str) -> str:
    """The sentences of a thinking's prose that are the assistant's own, joined by spaces."""
    if not prose:
        return ""
    request_words = content_words(request)
    return " ".join(s.strip() for s in _SENTENCE.split(prose)
                    if s.strip() and is_own_sentence(s.strip(), request_words))


def check_method_named(opening: str, *, response: Delivered, request: str,
                       index: int | None = None) -> list[Finding]:
    """A first reply's new opening prose names none of the major methods its plan carries out:
    it does not say why this request calls for this plan (``OPENING_SKIPS_METHOD``)."""
    methods = response.method & MAJOR_METHODS  # every major method its plan carries out
    if not response.major_methods or asked(own_sentences(opening, request)) & methods:
        return []
    return [Finding("OPENING_SKIPS_METHOD", index,
                    "the opening names none of the analysis its plan carries out ("
                    + ", ".join(sorted(methods)) + ")")]
