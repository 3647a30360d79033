"""What a request asks for and what a response delivers, as labels from a fixed taxonomy.

The dataset is generated from a finite set of task templates (annotate the text, reconstruct
the argument in standard form, write SMT-LIB code, answer a question, ...). Each template
leaves marks that rules can read: words in the request, step headings in the thinking, and
the markup of the answer (code-fence languages, ``<span class="reason">``, ``(declare-fun``,
a one-line verdict). These labels are the vocabulary of the ``structural`` comparison, of the
judge's multiple-choice readings, and of the quality checks.

Two kinds of label:

- a *task* label (:data:`TASKS`) names what the answer mainly is; every response has at most
  one main task, and the judge chooses among the task labels;
- a *feature* label (:data:`FEATURES`) names a further property a request can ask for and a
  response can have (a tool call, inline data, inference rules).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Task labels, in the order the judge sees them, with the description it reads.
TASKS: dict[str, str] = {
    "annotation": "the text annotated with reason and conjecture spans",
    "argument_map": "an informal argument map in Argdown (claims with support arrows)",
    "reconstruction": "the argument as numbered premises and conclusions in Argdown",
    "formalization": "logical formulas for premises or conclusions, with a key for the symbols",
    "smt": "SMT-LIB code that checks the inferences",
    "verdict": "a short answer to a question about the argument",
    "gist": "the argument's title and gist in one line",
    "rhetoric": "the premises' tone and persuasion, profiled with a tool and added as data",
    "fallacy": "the name of the fallacy the argument commits",
}
FEATURES: dict[str, str] = {
    "tool": "the assistant calls a tool",
    "inline_data": "inline YAML data attached to the propositions",
    "inference_rules": "the inference rule of each step named",
    "paraphrase": "a paraphrase of the text",
}
LABELS: tuple[str, ...] = (*TASKS, *FEATURES)

# Methods a plan can carry out on its way to the answer, with the words a request uses for them.
# The *major* ones set the level of detail: a request that leaves one of them unexpected
# under-asks (the dataset's flaw: "Is (4) explicitly mentioned?" answered through a
# reconstruction, a formalization and a map).
METHODS: dict[str, str] = {
    "reconstruction": "reconstruct the argument in standard form (numbered premises and "
                      "conclusions in Argdown)",
    "formalization": "formalize its premises and conclusions in logic",
    "argument_map": "map the argument (an informal argument map or inference graph)",
    "annotation": "annotate the source text (which passages are reasons, which are conjectures)",
    "smt": "write SMT-LIB code that checks its inferences",
    "gist": "state the argument's title and gist",
    "paraphrase": "paraphrase the essential source text",
}
MAJOR_METHODS: frozenset[str] = frozenset(
    ("reconstruction", "formalization", "argument_map", "annotation", "smt"))

# Words in an instruction (a request, a step heading, a thinking's prose) that name a label.
_ASKS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "annotation": r"annotat|\bmark(ing)? (up |the |every |each )|<span|reason statements"
                      r"|\breasons? and (the |every |each )?conjectures?",
        "argument_map": r"argument map|\bmap (the|this|it|an?)\b|inference (graph|tree)",
        "reconstruction": r"standard form|premise[- ]conclusion|\breconstruct|argdown format",
        "formalization": r"formali[sz]|\blatex\b|\bnltk\b|logical form|\bformulas?\b|symbolic",
        "smt": r"\bsmt|\bz3\b|\bcvc5\b",
        "verdict": r"\b(propositions?|premises?|conclusions?|argument|valid|validity|explicitly"
                   r"|mentioned|closed|fallacy|state)\b[^?\n]*\?|\byes or no\b|\byes/no\b"
                   r"|answer (the|this|a|my|that) (following )?(question|query)",
        "gist": r"\bgist\b|\btitle\b|summari[sz]",
        "rhetoric": r"rhetoric|\btone\b|persuasi|stylistic",
        "fallacy": r"fallac|slippery slope|ad hominem|false dilemma|straw ?man|appeal to",
        "tool": r"\btools?\b",
        "inline_data": r"\byaml\b|inline data",
        "inference_rules": r"inference rules?|rule of (each|every) (step|inference)",
        "paraphrase": r"paraphrase|own words|rephrase|essential source text",
    }.items()
}

_STEP = re.compile(r"(?:^|(?<=[.:!?] ))(?:#{1,6} )?Step \d+\s*[:.]\s*(.+?)\s*$", re.IGNORECASE | re.M)
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
_SPAN = re.compile(r'<span class="(reason|conjecture)"', re.IGNORECASE)
_SMT = re.compile(r"\((declare-(fun|const|sort)|check-sat|assert)\b")
_NUMBERED = re.compile(r"^\(\d+\) ", re.M)
_MAP_ARROW = re.compile(r"^\s+[<+-]*[+-]>?\s|^\s*<[+-]\s", re.M)
_FORMULA = re.compile(r"\$[^$\n]*\\(forall|exists|lnot|neg|rightarrow|land|lor|leftrightarrow)|"
                      r"formali[sz]ation\s*:|^Premise \(\d+\): \$", re.IGNORECASE | re.M)
_INLINE_DATA = re.compile(r"^\(\d+\) .*\{[^{}\n]*:[^{}\n]*\}\s*$", re.M)
_GIST_LINE = re.compile(r"^<[^<>\n]+>:\s*\S")
_VERDICT = re.compile(r"^(yes|no|none|neither|both|true|false|correct|incorrect)\b", re.IGNORECASE)
_FALLACY_ANSWER = re.compile(r"fallac|appeal to|slippery slope|ad hominem|false dilemma|straw ?man",
                             re.IGNORECASE)
_INFERENCE_RULE = re.compile(r"^-{2,}\s*$\n^with ", re.M)


def asked(text: str | None) -> frozenset[str]:
    """Labels an instruction text names (a request without its source text, a step title)."""
    if not text:
        return frozenset()
    return _asked(text)


@functools.lru_cache(maxsize=4096)  # the same requests and step titles are asked about again
def _asked(text: str) -> frozenset[str]:
    return frozenset(name for name, pattern in _ASKS.items() if pattern.search(text))


# Words that refer back to work already done ("the argument you reconstructed", "your
# reconstruction", "the previously reconstructed argument") name a label without asking for it.
_BACK_REFERENCE = re.compile(
    r"\b(?:you(?:'ve| have)?|previously|earlier|already|above)\s+(?:\w+\s+){0,2}?"
    r"(?:reconstructed|formali[sz]ed|mapped|annotated)\b"
    r"|\b(?:your|the previous|the earlier|the above)\s+(?:\w+\s+){0,2}?"
    r"(?:reconstruction|formali[sz]ation|map|annotation)\b", re.IGNORECASE)


def requested(text: str | None) -> frozenset[str]:
    """Labels a request asks for: what it names, less what it only refers back to."""
    if not text:
        return frozenset()
    return asked(_BACK_REFERENCE.sub(" ", text))


def plan_steps(text: str | None) -> list[str]:
    """Titles of the steps a text lists or heads (``Step 2: Formalize ...``), in order."""
    return [m.group(1).rstrip(".") for m in _STEP.finditer(text or "")]


def step_labels(titles: Iterable[str]) -> frozenset[str]:
    """Labels named by a sequence of step titles (the method of a thinking)."""
    out: set[str] = set()
    for title in titles:
        out |= asked(title) - {"verdict"} if "?" in title else asked(title)
    return frozenset(out)


@dataclass(frozen=True)
class Delivered:
    """What a response does: its main task, its features, and the method its plan names."""

    task: str | None
    features: frozenset[str]
    method: frozenset[str]

    @property
    def deliverables(self) -> frozenset[str]:
        """The main task and the features: what a well-aligned request names."""
        return self.features | ({self.task} if self.task else set())

    @property
    def everything(self) -> frozenset[str]:
        """Deliverables and method: what a request may name and still be answered."""
        return self.deliverables | self.method

    @property
    def major_methods(self) -> frozenset[str]:
        """The major methods the plan carries out beyond the deliverables (its level of
        detail): what a request must make expectable besides the answer."""
        return (self.method & MAJOR_METHODS) - self.deliverables

    @property
    def expectable(self) -> frozenset[str]:
        """Deliverables and major methods: what a well-aligned request names."""
        return self.deliverables | self.major_methods


def answer_task(answer: str, tool_calls: str | None = None, last_step: str = "") -> str | None:
    """The main task label of an answer, read from its markup (and the plan's last step)."""
    text = answer.strip()
    fences = _FENCE.findall(text)
    code = "\n".join(body for _, body in fences)
    last = asked(last_step)
    if (tool_calls or _INLINE_DATA.search(text)) and last & {"rhetoric", "inline_data"}:
        return "rhetoric"
    if _SPAN.search(text):
        return "annotation"
    if _SMT.search(code or text):
        return "smt"
    head = text.split("\n", 1)[0]
    if _FALLACY_ANSWER.search(head) and len(head) < 200:
        return "fallacy"
    if "verdict" in last or (len(text) < 300 and not fences and _VERDICT.match(text)):
        return "verdict"
    if fences and _NUMBERED.search(code):
        return "reconstruction"
    if _FORMULA.search(text) and not fences:
        return "formalization"
    if fences and _MAP_ARROW.search(code):
        return "argument_map"
    if fences and _GIST_LINE.match(code.strip()) and len(code.strip().splitlines()) == 1:
        return "gist"
    for name in TASKS:  # no markup decides it: trust the last step of the plan
        if name in last:
            return name
    if len(text) < 300 and not fences:
        return "verdict"
    return None


def answer_features(answer: str, tool_calls: str | None = None) -> frozenset[str]:
    """Further properties of an answer, and every task its markup delivers besides its main
    one (a tone profile followed by an Argdown reconstruction delivers both)."""
    out: set[str] = set()
    fences = _FENCE.findall(answer)
    code = "\n".join(body for _, body in fences)
    if fences and _NUMBERED.search(code):
        out.add("reconstruction")
    if fences and _MAP_ARROW.search(code) and not _NUMBERED.search(code):
        out.add("argument_map")
    if _SPAN.search(answer):
        out.add("annotation")
    if _SMT.search(code):
        out.add("smt")
    if tool_calls:
        out.add("tool")
    if _INLINE_DATA.search(answer):
        out.add("inline_data")
    if _INFERENCE_RULE.search(answer):
        out.add("inference_rules")
    if _FORMULA.search(answer) and _FENCE.search(answer):
        out.add("formalization")
    return frozenset(out)


def delivered(answer: str, tool_calls: Iterable[str] = (), thinking: Iterable[str] = ()) -> Delivered:
    """What a turn's response delivers: the final answer, the tool calls, the thinking's plan.

    Args:
        answer: the assistant's final content in the turn.
        tool_calls: the JSON ``tool_calls`` strings of the turn's assistant messages.
        thinking: the turn's thinking texts (their step headings are the method).
    """
    calls = [c for c in tool_calls if c]
    names = " ".join(_tool_names(c) for c in calls)
    steps = [title for text in thinking for title in plan_steps(text)]
    last_step = steps[-1] if steps else ""
    task = answer_task(answer, " ".join(calls) or None, last_step + " " + names)
    if task is None and calls:
        task = "rhetoric" if "rhetoric" in asked(names) else None
    features = answer_features(answer, " ".join(calls) or None) - {task}
    return Delivered(task, features, step_labels(steps) - {"verdict"})


def _tool_names(tool_calls: str) -> str:
    try:
        calls = json.loads(tool_calls)
        return " ".join(str(c.get("function", {}).get("name", "")).replace("_", " ")
                        for c in calls if isinstance(c, dict))
    except (json.JSONDecodeError, AttributeError):
        return ""


# How a request asks for a method, in the user's words (each phrase is one that `asked` reads),
# and the sentences Mode A puts them in, chosen per conversation so the data is not one template.
ASK_METHOD: dict[str, str] = {
    "reconstruction": "reconstruct the argument in standard form",
    "formalization": "formalize its premises and conclusions",
    "argument_map": "sketch an informal argument map of it",
    "annotation": "annotate the reasons and conjectures in the text",
    "smt": "write SMT-LIB code that checks its inferences",
}
ASK_METHOD_SENTENCES = ("Before you answer, {methods}.", "Work through the argument first: {methods}.",
                        "Please {methods} before anything else.")


def ask_for_methods(what: Delivered, key: str, *, besides: Iterable[str] = ()) -> str:
    """A sentence asking for the plan's major methods, less those in ``besides`` (labels the
    request already asks for); empty when none is left. ``key`` (the conversation's id) picks
    the phrasing, the same every time."""
    skip = set(besides)
    phrases = [ASK_METHOD[m] for m in METHODS if m in what.major_methods and m not in skip]
    if not phrases:
        return ""
    joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    pick = int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(ASK_METHOD_SENTENCES)
    return ASK_METHOD_SENTENCES[pick].format(methods=joined)


def ask_briefly(what: Delivered, *, besides: Iterable[str] = ()) -> str:
    """One short sentence (at most 200 characters) asking for the major methods a response
    carries out (its plan's, and its answer's own when that is one: a reconstruction, SMT-LIB
    code), less those in ``besides``; empty when none is left. Mode B appends it to a request
    it keeps: "Please reconstruct the argument in standard form, formalize and map it, and
    annotate the text before you answer." """
    wanted = (what.expectable & MAJOR_METHODS) - set(besides)
    verbs = [verb for m, verb in (("formalization", "formalize"), ("argument_map", "map"))
             if m in wanted]
    parts = []
    if "reconstruction" in wanted:
        parts.append("reconstruct the argument in standard form"
                     + (f", then {_and(verbs)} it" if verbs else ""))
    elif verbs:
        parts.append(f"{_and(verbs)} the argument")
    if "annotation" in wanted:
        parts.append("annotate the text")
    if "smt" in wanted:
        parts.append("check the inferences with SMT-LIB code")
    if not parts:
        return ""
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1] \
        if len(parts) > 2 else " and ".join(parts)
    return f"Please {joined} before you answer."


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def method_words(what: Delivered) -> list[str]:
    """The plan's major methods in words, in the order of :data:`METHODS`."""
    return [METHODS[m] for m in METHODS if m in what.major_methods]


def describe(what: Delivered) -> str:
    """What a response delivers, in words, for a rewrite prompt."""
    lines = []
    if what.task:
        lines.append(f"Mainly: {TASKS[what.task]}.")
    if what.features:
        lines.append("Also: " + "; ".join(FEATURES.get(f) or TASKS[f] for f in sorted(what.features))
                     + ".")
    method = sorted(what.method - what.deliverables)
    if method:
        lines.append("On the way, its reasoning produces: "
                     + "; ".join(TASKS.get(m) or FEATURES[m] for m in method) + ".")
    return "\n".join(lines) or "Nothing the rules recognise; read the answer."
