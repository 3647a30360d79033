"""Quality checks: rewrites that keep every hard invariant and are still worse than the original.

A check is not an invariant: the row stays well formed, but the rewrite lost something (the
thinking's plan, a deliverable the request named), leaked a prompt artefact, or games the
metric (a request that quotes the answer). The alignment modules run the field checks on every
LM output and retry with a fresh sample when one fails; a row whose last attempt still fails
ends ``rejected`` with the code. :func:`check_quality` runs the same checks on a whole aligned
row, for ``validate``, ``clean`` and the metric's gate.

Each finding has a stable code (:data:`argalign.codes.QUALITY`) and the index of the message concerned.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from argalign import codes
from argalign.deliverables import TASKS, Delivered, asked, delivered, plan_steps
from argalign.invariants import Violation as Finding  # the same shape: code, message, detail
from argalign.schema import parse_conversation, split_source
from argalign.thinking import shorten, split_thinking

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
    r"|`(?:request|opening|closing|clarification|plan|preamble|answer|middle_outline)`"
    r"|\bthe assistant'?s (?:private )?reasoning\b",
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
    "tell", "test", "translate", "treat", "try", "turn", "use", "verify", "write"))
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


def check_request(request: str, *, original: str, answer: str, system: str, source: str,
                  response: Delivered, thinking: str = "", index: int | None = None
                  ) -> list[Finding]:
    """Mode A: a new request (instructions only) against the original one, the answer and the
    turn's thinking (the request may name the plan's steps, not copy the assistant's prose)."""
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the request")
           for marker in leaked(request, original)]
    out += _written(request, original, "request", index)
    named = asked(original) & response.everything
    dropped = sorted(named - asked(request))
    dropped += [f"the question {question!r}" for question in questions(original)
                if not _kept(question, request)]
    if dropped:
        out.append(Finding("DELIVERABLE_DROPPED", index,
                           f"the original request named {', '.join(dropped)}, which the response "
                           f"uses; the new one does not"))
    foreign = sorted((asked(request) & set(TASKS)) - response.everything - asked(original))
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
    not have are a copy of the middle's outline, or a fence left open."""
    new = _MARKUP.findall(frame)
    if new and len(new) > len(_MARKUP.findall(original_frame)):
        return [Finding("FRAME_HAS_MARKUP", index,
                        f"the {where} has {len(new)} heading or fence line(s), first {new[0]!r}")]
    return []


def check_opening(opening: str, *, original_thinking: str, index: int | None = None
                  ) -> list[Finding]:
    """A new opening (everything before the kept middle) against the original thinking."""
    parts = split_thinking(original_thinking)
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the thinking")
           for marker in leaked(opening, original_thinking)]
    out += _written(opening, original_thinking, "thinking", index)
    out += _markup(opening, parts.opening, "opening", index)
    planned = plan_steps(parts.plan)
    if planned:
        kept = set(plan_steps(opening))
        missing = [step for step in planned if step not in kept]
        if missing:
            out.append(Finding("PLAN_DROPPED", index,
                               f"{len(missing)} of {len(planned)} planned steps are no longer "
                               f"listed, first {missing[0]!r}"))
    return out


def replans(text: str) -> list[str]:
    """Sentences of ``text`` that announce a step still to come ("In my second step, I will
    ..."): in a closing, after the middle has done the steps, that is planning in the wrong
    place. A look back ("With Step 3 done, ...") is no announcement."""
    return [sentence.strip() for sentence in _SENTENCE.split(text)
            if _STEP_REF.search(sentence) and _FUTURE.search(sentence)]


def check_closing(closing: str, *, original_thinking: str, index: int | None = None
                  ) -> list[Finding]:
    """A new closing (everything after the kept middle) against the original thinking."""
    out = [Finding("PLACEHOLDER_LEAKED", index, f"{marker!r} in the thinking")
           for marker in leaked(closing, original_thinking)]
    original_closing = split_thinking(original_thinking).closing
    out += _written(closing, original_thinking, "thinking", index)
    out += _markup(closing, original_closing, "closing", index)
    announced = replans(closing)
    if announced and not replans(original_closing):
        out.append(Finding("CLOSING_REPLANS", index,
                           f"the closing announces steps instead of leading to the answer: "
                           f"{shorten(announced[0], 120)!r}"))
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
    from argalign.invariants import UserChange, user_change_policy

    # A mode that only appends to the request (Mode B) adds a clarification; any other rewrites it.
    appends = user_change_policy(mode) is UserChange.APPEND
    conversation = parse_conversation(original, str(original.get("source_id", "row")))
    new_messages = aligned["messages"]
    system = conversation.system.content or "" if conversation.system else ""
    out: list[Finding] = []
    for turn in conversation.turns:
        i = turn.user_index
        old_user = conversation.messages[i].content or ""
        new_user = new_messages[i].get("content") or ""
        response = _delivered(conversation, turn)
        answer = _final_answer(conversation, turn)
        if new_user != old_user:
            if appends and new_user.startswith(old_user):
                out += check_clarification(new_user[len(old_user):].strip(),
                                           request=instructions(old_user), response=response,
                                           index=i)
            else:
                source = (split_source(old_user) or ("", "", ""))[1]
                request = (new_user.replace(source, "", 1) if source and source in new_user
                           else instructions(new_user))
                out += check_request(request, original=instructions(old_user), answer=answer,
                                     system=system, source=source, response=response,
                                     thinking=turn_thinking(conversation, turn), index=i)
        for j in turn.assistant_indices:
            old = conversation.messages[j].thinking
            new = new_messages[j].get("thinking")
            if not old or not isinstance(new, str) or new == old:
                continue
            middle = split_thinking(old).middle
            at = new.find(middle) if middle else -1
            opening = new[:at] if at > 0 else split_thinking(new).opening
            closing = new[at + len(middle):] if at > 0 else split_thinking(new).closing
            out += check_opening(opening, original_thinking=old, index=j)
            out += check_closing(closing, original_thinking=old, index=j)
    return out


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
    methods = response.major_methods
    if not methods or asked(own_sentences(opening, request)) & methods:
        return []
    return [Finding("OPENING_SKIPS_METHOD", index,
                    "the opening names none of the analysis its plan carries out ("
                    + ", ".join(sorted(methods)) + ")")]
