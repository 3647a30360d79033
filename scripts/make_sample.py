"""Write the sample dataset bundled with argalign (src/argalign/data/sample).

The sample mirrors the layout and row schema of the Hub dataset DebateLabKIT/argunauts-thinking:
four configs, three splits, ten rows per split, one JSON object per line with the columns
``source_id`` and ``messages``. Every text in it is written for argalign: sixteen small
argumentative cases (four per config, each with a reconstruction, a formalization and an
annotation; read from the data file ``scripts/sample_cases.yaml``), composed into
conversations that vary the task and the phrasing of the request.
About a third of the rows carry the flaw argalign repairs: a vague request ("Have a look at
this.") answered with an elaborate method.

Output is deterministic (fixed seeds, no clock): running the script twice gives byte-identical
files. Inference steps are checked by brute force over small models before anything is written.

    python scripts/make_sample.py                 # rewrite the bundled sample
    python scripts/make_sample.py --out /tmp/s    # write elsewhere (tests compare the bytes)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from argalign.core.schema import MESSAGE_KEYS, parse_conversation, split_source  # noqa: E402
from argalign.stages.prepare import CONFIGS, SPLITS  # noqa: E402

DEFAULT_OUT = ROOT / "src" / "argalign" / "data" / "sample"
CASES_FILE = Path(__file__).with_name("sample_cases.yaml")
SEED = 20240611
MAX_CHARS = 5600  # per conversation; a 1.5B model on 2 cores must align one in under a minute


# --- formulas: a tiny ASCII logic, rendered as LaTeX and SMT-LIB and checked by brute force ---
#
#   all x: F(x) -> (G(x) | ~H(x))     F(a) & ~G(a)     (p & ~s) -> ~r     p <-> q
#
# Upper-case letters are one-place predicates, a-e individual constants, x the bound variable,
# other lower-case letters sentence letters.

Formula = tuple
_TOKEN = re.compile(r"\s*(<->|->|[~&|():]|[A-Z]\([a-z]\)|[a-z]+)")
_PREC = {"iff": 1, "imp": 2, "or": 3, "and": 4}


def parse_formula(source: str) -> Formula:
    tokens: list[str] = []
    pos = 0
    while pos < len(source.rstrip()):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ValueError(f"cannot read formula {source!r} at {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    formula, rest = _parse_iff(tokens)
    if rest:
        raise ValueError(f"trailing tokens {rest} in {source!r}")
    return formula


def _parse_iff(tokens: list[str]) -> tuple[Formula, list[str]]:
    left, tokens = _parse_imp(tokens)
    if tokens[:1] == ["<->"]:
        right, tokens = _parse_imp(tokens[1:])
        return ("iff", left, right), tokens
    return left, tokens


def _parse_imp(tokens: list[str]) -> tuple[Formula, list[str]]:
    left, tokens = _parse_nary(tokens, "|")
    if tokens[:1] == ["->"]:
        right, tokens = _parse_imp(tokens[1:])
        return ("imp", left, right), tokens
    return left, tokens


def _parse_nary(tokens: list[str], op: str) -> tuple[Formula, list[str]]:
    sub = _parse_unary if op == "&" else (lambda t: _parse_nary(t, "&"))
    parts = []
    part, tokens = sub(tokens)
    parts.append(part)
    while tokens[:1] == [op]:
        part, tokens = sub(tokens[1:])
        parts.append(part)
    if len(parts) == 1:
        return parts[0], tokens
    return ("or" if op == "|" else "and", *parts), tokens


def _parse_unary(tokens: list[str]) -> tuple[Formula, list[str]]:
    head, rest = tokens[0], tokens[1:]
    if head == "~":
        inner, rest = _parse_unary(rest)
        return ("not", inner), rest
    if head == "(":
        inner, rest = _parse_iff(rest)
        if rest[:1] != [")"]:
            raise ValueError("missing ')'")
        return inner, rest[1:]
    if head == "all":
        variable, colon, rest = rest[0], rest[1], rest[2:]
        if colon != ":":
            raise ValueError("expected ':' after the quantified variable")
        body, rest = _parse_iff(rest)
        return ("all", variable, body), rest
    if re.fullmatch(r"[A-Z]\([a-z]\)", head):
        return ("pred", head[0], head[2]), rest
    if re.fullmatch(r"[a-z]", head):
        return ("prop", head), rest
    raise ValueError(f"unexpected token {head!r}")


def latex(f: Formula, parent: int = 0) -> str:
    kind = f[0]
    if kind == "pred":
        return f"{f[1]}({f[2]})"
    if kind == "prop":
        return f[1]
    if kind == "not":
        return r"\lnot " + latex(f[1], 5)
    if kind == "all":
        return rf"\forall {f[1]}: " + latex(f[2], 5)
    ops = {"and": r" \land ", "or": r" \lor ", "imp": r" \rightarrow ", "iff": r" \leftrightarrow "}
    # Inside a conditional, conjunctions and disjunctions get brackets for readability.
    inner = 4 if kind in ("imp", "iff") else _PREC[kind]
    text = ops[kind].join(latex(g, inner) for g in f[1:])
    return f"({text})" if _PREC[kind] <= parent else text


def smt(f: Formula) -> str:
    kind = f[0]
    if kind == "pred":
        return f"({f[1]} {f[2]})"
    if kind == "prop":
        return f[1]
    if kind == "all":
        return f"(forall (({f[1]} Universal)) {smt(f[2])})"
    op = {"not": "not", "and": "and", "or": "or", "imp": "=>", "iff": "="}[kind]
    return f"({op} {' '.join(smt(g) for g in f[1:])})"


def symbols(f: Formula, bound: frozenset[str] = frozenset()) -> list[str]:
    """Predicates, constants and sentence letters of ``f`` in order of first occurrence."""
    kind = f[0]
    if kind == "pred":
        return [f[1]] + ([] if f[2] in bound else [f[2]])
    if kind == "prop":
        return [f[1]]
    if kind == "all":
        return symbols(f[2], bound | {f[1]})
    return [s for g in f[1:] for s in symbols(g, bound)]


def _holds(f: Formula, model: dict, env: dict[str, int]) -> bool:
    kind = f[0]
    if kind == "prop":
        return model[f[1]]
    if kind == "pred":
        return (env[f[2]] if f[2] in env else model[f[2]]) in model[f[1]]
    if kind == "not":
        return not _holds(f[1], model, env)
    if kind == "and":
        return all(_holds(g, model, env) for g in f[1:])
    if kind == "or":
        return any(_holds(g, model, env) for g in f[1:])
    if kind == "imp":
        return not _holds(f[1], model, env) or _holds(f[2], model, env)
    if kind == "iff":
        return _holds(f[1], model, env) == _holds(f[2], model, env)
    return all(_holds(f[2], model, {**env, f[1]: d}) for d in model["__domain__"])


def entails(premises: list[Formula], conclusion: Formula) -> bool:
    """Brute-force check over all models with up to three individuals.

    Enough for the monadic, one-variable arguments of the sample: a counter-model needs at
    most one individual per constant plus one witness.
    """
    names = list(dict.fromkeys(s for f in [*premises, conclusion] for s in symbols(f)))
    preds = [s for s in names if s.isupper()]
    consts = [s for s in names if s in "abcde"]
    props = [s for s in names if s.islower() and s not in "abcde"]
    for size in (1, 2, 3) if preds or consts else (1,):
        domain = range(size)
        for exts in itertools.product(range(2**size), repeat=len(preds)):
            for refs in itertools.product(domain, repeat=len(consts)):
                for values in itertools.product((False, True), repeat=len(props)):
                    model: dict = {"__domain__": domain}
                    model.update({p: {d for d in domain if e >> d & 1} for p, e in zip(preds, exts)})
                    model.update(zip(consts, refs))
                    model.update(zip(props, values))
                    if all(_holds(p, model, {}) for p in premises) and not _holds(
                        conclusion, model, {}
                    ):
                        return False
    return True


# --- the cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prop:
    """A numbered proposition of a reconstruction; a conclusion names what it is inferred from."""

    n: int
    text: str
    formula: str
    uses: tuple[int, ...] = ()
    rule: str = ""
    implicit: bool = False

    @property
    def is_premise(self) -> bool:
        return not self.uses

    @property
    def parsed(self) -> Formula:
        return parse_formula(self.formula)


@dataclass(frozen=True)
class Span:
    """A passage of the source text that states a reason or a conjecture (``ref`` = Prop.n)."""

    kind: str
    quote: str
    ref: int


@dataclass(frozen=True)
class Case:
    slug: str
    title: str
    gist: str
    about: str
    keys: dict[str, str]
    text: str
    props: tuple[Prop, ...]
    spans: tuple[Span, ...]
    fallacy: str = ""
    diagnosis: str = ""
    weak: tuple[int, ...] = ()

    def prop(self, n: int) -> Prop:
        return self.props[n - 1]

    @property
    def premises(self) -> list[Prop]:
        return [p for p in self.props if p.is_premise]

    @property
    def conclusions(self) -> list[Prop]:
        return [p for p in self.props if not p.is_premise]

    @property
    def explicit(self) -> set[int]:
        return {s.ref for s in self.spans}


def load_cases(path: Path = CASES_FILE) -> dict[str, tuple[Case, ...]]:
    """The cases of every config from the YAML file (see its header for the fields)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if list(data) != list(CONFIGS):
        raise ValueError(f"{path}: expected the configs {CONFIGS}, found {list(data)}")

    def case(entry: dict) -> Case:
        props = tuple(Prop(p["n"], p["text"], p["formula"], tuple(p.get("uses", ())),
                           p.get("rule", ""), p.get("implicit", False)) for p in entry["props"])
        spans = tuple(Span(kind, span[kind], span["ref"]) for span in entry["spans"]
                      for kind in ("reason", "conjecture") if kind in span)
        return Case(entry["slug"], entry["title"], entry["gist"], entry["about"], entry["keys"],
                    entry["text"], props, spans, entry.get("fallacy", ""),
                    entry.get("diagnosis", ""), tuple(entry.get("weak", ())))

    return {config: tuple(case(entry) for entry in entries) for config, entries in data.items()}


CASES = load_cases()
FALLACIES = ("slippery slope", "ad hominem", "appeal to popularity", "false dilemma",
             "straw man", "hasty generalization")


def check_case(case: Case) -> None:
    """Fail loudly on a broken case: numbering, valid inferences, quotes that exist."""
    for i, prop in enumerate(case.props, start=1):
        if prop.n != i or any(u >= i for u in prop.uses):
            raise ValueError(f"{case.slug}: bad numbering at ({prop.n})")
        for symbol in symbols(prop.parsed):
            if symbol not in case.keys:
                raise ValueError(f"{case.slug}: no key for {symbol} in ({prop.n})")
        if prop.uses and not entails([case.prop(u).parsed for u in prop.uses], prop.parsed):
            raise ValueError(f"{case.slug}: ({prop.n}) does not follow from {prop.uses}")
    if not 400 <= len(case.text) <= 1200:
        raise ValueError(f"{case.slug}: source text has {len(case.text)} characters")
    annotate(case)  # raises if a quote is missing or out of order
    for p in case.premises:
        if (p.n in case.explicit) == p.implicit:
            raise ValueError(f"{case.slug}: premise ({p.n}) implicit flag contradicts the spans")


# --- renderers -----------------------------------------------------------------------------


def fence(body: str, lang: str = "argdown") -> str:
    return f"```{lang}\n{body}\n```"


def lower_first(text: str) -> str:
    """Lower-case a sentence start, but not a name ("Jonas is ...")."""
    word = text.split(" ", 1)[0]
    common = {"Every", "Everyone", "No", "If", "The", "A", "Nearly"}
    return text[0].lower() + text[1:] if word in common else text


def refs(numbers: tuple[int, ...] | list[int]) -> str:
    return " ".join(f"({n})" for n in numbers)


def standard_form(case: Case, *, title: bool = True, inferences: bool = False,
                  data: dict[int, str] | None = None) -> str:
    """Premise-conclusion structure; ``data`` adds inline YAML to the numbered lines."""
    lines = [f"<{case.title}>: {case.gist}", ""] if title else []
    for prop in case.props:
        if prop.uses:
            if inferences:
                lines += ["--", f"with {prop.rule} from {refs(prop.uses)}", "--"]
            else:
                lines.append("-----")
        extra = f" {data[prop.n]}" if data and prop.n in data else ""
        lines.append(f"({prop.n}) {prop.text}{extra}")
    return "\n".join(lines)


def yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'" if "\\" in text else json.dumps(text)


def formal_data(case: Case) -> dict[int, str]:
    """Inline YAML per proposition: formula, the keys it introduces, what it follows from."""
    seen: set[str] = set()
    out = {}
    for prop in case.props:
        new = [s for s in dict.fromkeys(symbols(prop.parsed)) if s not in seen]
        seen.update(new)
        items = [f"formalization: {yaml_str(latex(prop.parsed))}"]
        if new:
            keys = ", ".join(f"{s}: {json.dumps(case.keys[s])}" for s in new)
            items.append(f"keys: {{{keys}}}")
        if prop.uses:
            items.append(f"follows_from: [{', '.join(map(str, prop.uses))}]")
        out[prop.n] = "{" + ", ".join(items) + "}"
    return out


def formula_list(props: list[Prop], label: str) -> str:
    return "\n".join(f"{label} ({p.n}): ${latex(p.parsed)}$" for p in props)


def key_list(case: Case, props: list[Prop] | None = None) -> str:
    wanted = props if props is not None else list(case.props)
    used = dict.fromkeys(s for p in wanted for s in symbols(p.parsed))
    return "\n".join(f"- {s}: {case.keys[s]}" for s in used)


def informal_map(case: Case) -> str:
    def node(prop: Prop, depth: int) -> list[str]:
        pad = "    " * depth
        arrow = "" if depth == 0 else "<+ "
        if prop.uses:
            label = "Main conclusion" if prop is case.props[-1] else f"Conclusion {prop.n}"
        else:
            label = f"Premise {prop.n}"
        note = " // implicit" if prop.implicit else ""
        lines = [f"{pad}{arrow}[{label}]: {prop.text}{note}"]
        for u in prop.uses:
            lines += node(case.prop(u), depth + 1)
        return lines

    return "\n".join(node(case.props[-1], 0))


def annotate(case: Case) -> str:
    """The source text with reason and conjecture spans (quotes are located in order)."""
    found: list[tuple[int, int, Span]] = []
    pos = 0
    for span in case.spans:
        start = case.text.find(span.quote, pos)
        if start < 0:
            raise ValueError(f"{case.slug}: quote not found after {pos}: {span.quote!r}")
        found.append((start, start + len(span.quote), span))
        pos = start + len(span.quote)
    ids = {i: i + 1 for i in range(len(found))}
    out, last = [], 0
    for i, (start, end, span) in enumerate(found):
        targets = [ids[j] for j, (_, _, other) in enumerate(found)
                   if other.kind == "conjecture" and span.ref in case.prop(other.ref).uses]
        attrs = f'class="{span.kind}" id="{ids[i]}" ref_reco="{span.ref}"'
        if targets:
            attrs += f' supports="{",".join(map(str, targets))}"'
        out += [case.text[last:start], f"<span {attrs}>{span.quote}</span>"]
        last = end
    out.append(case.text[last:])
    return "".join(out)


def smt_program(case: Case) -> str:
    names = list(dict.fromkeys(s for p in case.props for s in symbols(p.parsed)))
    lines = []
    if any(s.isupper() or s in "abcde" for s in names):
        lines.append("(declare-sort Universal)")
    for s in names:
        if s.isupper():
            lines.append(f"(declare-fun {s} (Universal) Bool) ; {case.keys[s]}")
        else:
            sort = "Universal" if s in "abcde" else "Bool"
            lines.append(f"(declare-const {s} {sort}) ; {case.keys[s]}")
    name = {p.n: f"{'conclusion' if p.uses else 'premise'}{p.n}" for p in case.props}
    for p in case.props:
        lines.append(f"(define-fun {name[p.n]} () Bool {smt(p.parsed)})")
    for c in case.conclusions:
        ante = " ".join(name[u] for u in c.uses)
        ante = ante if len(c.uses) == 1 else f"(and {ante})"
        lines += [
            f"; ({c.n}) by {c.rule}: unsat means the step is valid",
            "(push)",
            f"(assert (not (=> {ante} {name[c.n]})))",
            f'(echo "inference to ({c.n})")',
            "(check-sat)",
            "(pop)",
        ]
    return "\n".join(lines)


# --- phrasing ------------------------------------------------------------------------------

SYSTEM_PROMPTS = (
    "You are an assistant for the logical analysis of argumentative texts. You reconstruct "
    "arguments in Argdown and write logical formalizations in LaTeX.",
    "You help users understand arguments. Present reconstructions in Argdown, think step by "
    "step, and use the available tools where they help.",
    "You are an expert in critical thinking and argument mapping. Use Argdown for "
    "reconstructions and LaTeX for formulas.",
    "You analyse natural-language argumentation with care: premises, conclusions, inference "
    "rules, hidden assumptions. Use Argdown markup.",
    "You are a logic tutor. Your analyses use Argdown, formal logic and, if asked, SMT-LIB.",
)
TOOL_SYSTEM_PROMPTS = (
    "You are an assistant for argument analysis. Use the available tools when a task calls for "
    "data you cannot compute yourself, and present results in Argdown.",
    "You analyse argumentative texts and use tools where they help. Reconstructions are written "
    "in Argdown; tool results go into inline YAML data.",
)
RHETORIC_TOOL = {
    "type": "function",
    "function": {
        "name": "rhetorical_analysis",
        "description": "Profiles each given sentence: its tone, how strongly it appeals to "
        "reason, authority and emotion, and how demanding it is to read (0 to 1).",
        "parameters": {
            "type": "object",
            "properties": {
                "propositions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The sentences to profile.",
                }
            },
            "required": ["propositions"],
        },
    },
}
TONES = ("plain", "formal", "matter-of-fact", "assertive", "conversational", "emphatic")

INTROS = (
    "Here is the text:",
    "The text reads as follows:",
    "This is the argumentative text in question:",
    "Below is the text to work on:",
    "Consider the following text:",
    "The text I have in mind:",
    "Work from this text:",
    "Source text:",
)
# (before the introducer, the introducer, a trailing line) of vague requests.
VAGUE = (
    ("Have a look at this.", "Here is the text:", ""),
    ("Thoughts on this text?", "The text:", ""),
    ("Do the usual analysis.", "Text:", ""),
    ("Can you take care of this one?", "The text is below:", ""),
    ("", "What do you make of this text:", ""),
    ("Something for you.", "Here's the text:", "Use your judgement."),
    ("", "A text someone sent me:", "Use the usual approach."),
    ("Your turn.", "Consider this text:", ""),
)
OPENERS = (
    "I need to {goal}. This takes a few steps, so let me draw up a plan.",
    "The task: {goal}. Let me draw up a plan before I start.",
    "To {goal}, I'll proceed step by step.",
    "Let me plan this first; I am going to {goal}.",
    "A plan first. The aim is to {goal}.",
)

# Each task: what the thinking says it does, and explicit requests for it (before the text;
# those starting with an imperative verb may also come after it).
GOALS = {
    "full": "reconstruct the argument in Argdown and formalize every proposition",
    "standard": "reconstruct the argument in standard form",
    "map": "map the argumentation informally",
    "annotate": "annotate the source text with reasons and conjectures",
    "question": "answer a question about the argument",
    "smt": "write an SMT program that checks every inference step",
    "tool": "assess the rhetorical style of the premises",
    "fallacy": "find out where the reasoning goes wrong",
    "gist": "summarize the argument's gist",
}
REQUESTS = {
    "full": (
        "Reconstruct the argument in Argdown, name the inference rule of each step, and add a "
        "LaTeX formalization of every proposition as inline YAML data (with the keys you use).",
        "Provide a complete logical reconstruction: premise-conclusion structure in Argdown with "
        "inference rules, plus LaTeX formalizations and keys for all propositions as inline data.",
        "I'd like the full treatment for the argument below, please: Argdown standard form, "
        "inference rules, and a LaTeX formalization of each premise and conclusion.",
    ),
    "standard": (
        "Reconstruct the argument as a premise-conclusion structure in Argdown. Give it a title "
        "and a one-sentence gist, and say which inference rule each step uses.",
        "Put the argument below into Argdown standard form, with a title, a gist and the "
        "inference rules between the steps. No formalization needed.",
        "Write out the argument in standard form (Argdown), including title, gist and inference "
        "information, and make implicit premises explicit.",
    ),
    "map": (
        "Create an informal argument map in Argdown: the main conclusion on top, the "
        "intermediate conclusions and premises that support it below, implicit premises "
        "included.",
        "Map the argumentation as an Argdown argument map with support relations only.",
    ),
    "annotate": (
        "Annotate the text: mark every reason and every conjecture with a span and relate each "
        "span to the matching proposition of your reconstruction (attribute ref_reco).",
        "Mark up the text below with <span class=\"reason\"> and <span class=\"conjecture\"> "
        "tags, using ref_reco to point to the numbers of the propositions in your "
        "reconstruction.",
    ),
    "smt": (
        "Generate SMT-LIB code that checks, for each inference step of the argument, whether the "
        "conclusion follows from its premises. Comment the code so that each formula can be "
        "traced back to the argument.",
        "Write an SMT-LIB program (for Z3 or cvc5) that tests every inference in the argument for "
        "deductive validity. Add comments.",
    ),
    "tool": (
        "Assess the rhetorical style of the argument's premises (tone, appeal, complexity). Use "
        "the tools you have, and attach the results to an Argdown reconstruction as inline data.",
        "Evaluate how the premises of the argument below are phrased: tone, persuasive appeal and "
        "complexity. Use a tool for this and put the findings into your Argdown reconstruction.",
    ),
    "fallacy": (
        "Identify the fallacy in the text and explain, with a reconstruction of the argument in "
        "Argdown, where exactly the reasoning goes wrong.",
        "Does this reasoning hold up? Reconstruct the argument in Argdown, name the fallacy it "
        "commits and point to the premise that is to blame.",
    ),
    "gist": (
        "Summarize the argument's gist in one sentence and give the argument a short title, in "
        "Argdown.",
        "Give me the title and gist of the argument below as a single Argdown line.",
    ),
}
QUESTION_REQUESTS = (
    "Analyse the text so that you can answer this question: '{q}'",
    "Answer briefly, after analysing the argument: {q}",
    "Evaluate the argument in the text with respect to the following question, and answer it "
    "in a few words: {q}",
)
STEP_LEADS = {
    "gist": ("The argument's gist, with a title:", "Title and key point of the argument:",
             "First I sum up what the argument is driving at."),
    "standard": ("Let me lay out the premise-conclusion structure.",
                 "The argument in standard form, premises first:",
                 "I reconstruct the argument step by step, making implicit premises explicit."),
    "inferences": ("Now I add which rule licenses each step.",
                   "Next, the inference information for every step:"),
    "premises": ("I formalize each premise in first-order logic (LaTeX).",
                 "The premises, formalized:"),
    "keys": ("The placeholders stand for:", "Keys for the formulas:"),
    "conclusions": ("And the conclusions:", "The conclusions get formalized the same way."),
}


def pick(rng: random.Random, options: tuple[str, ...] | list[str]) -> str:
    return options[rng.randrange(len(options))]


# --- thinking and answers ------------------------------------------------------------------

Section = tuple[str, str]


def sec_gist(case: Case, rng: random.Random) -> Section:
    body = f"{pick(rng, STEP_LEADS['gist'])}\n\n" + fence(f"<{case.title}>: {case.gist}")
    return "Identify the title and gist of the argument", body


def sec_standard(case: Case, rng: random.Random, *, inferences: bool = False) -> Section:
    lead = pick(rng, STEP_LEADS["inferences" if inferences else "standard"])
    body = f"{lead}\n\n" + fence(standard_form(case, title=False, inferences=inferences))
    implicit = [p.n for p in case.premises if p.implicit]
    if implicit:
        body += (f"\n\nThe text does not state {refs(implicit)}; I add it so that the inference "
                 "goes through.")
    title = ("Reconstruct the argument with inference rules" if inferences
             else "Reconstruct the argument in standard form")
    return title, body


def sec_formalization(case: Case, rng: random.Random) -> Section:
    body = "\n\n".join([
        pick(rng, STEP_LEADS["premises"]),
        formula_list(case.premises, "Premise"),
        pick(rng, STEP_LEADS["keys"]),
        key_list(case),
        pick(rng, STEP_LEADS["conclusions"]),
        formula_list(case.conclusions, "Conclusion"),
    ])
    return "Formalize premises and conclusions", body


def sec_map(case: Case, rng: random.Random) -> Section:
    lead = pick(rng, ("Now the informal map, support arrows only:",
                      "The argument map shows which claims back which:"))
    return "Create an informal argument map", f"{lead}\n\n{fence(informal_map(case))}"


def sec_spans(case: Case, rng: random.Random) -> Section:
    reasons = [s for s in case.spans if s.kind == "reason"]
    conjectures = [s for s in case.spans if s.kind == "conjecture"]
    body = "\n".join(
        [pick(rng, ("Reasons stated in the text:", "Passages that give reasons:"))]
        + [f"- \"{s.quote}\" ({s.ref})" for s in reasons]
        + ["", pick(rng, ("Conjectures (claims argued for):", "Passages that state conclusions:"))]
        + [f"- \"{s.quote}\" ({s.ref})" for s in conjectures]
    )
    return "Identify reasons and conjectures in the text", body


def sec_diagnosis(case: Case, rng: random.Random) -> Section:
    lead = pick(rng, ("Which premises are doubtful?", "Where does the argument break down?"))
    at = " and ".join(f"({n})" for n in case.weak)
    body = (f"{lead} At {at}. {case.diagnosis}\n\n"
            f"This is a case of {case.fallacy}.")
    return "Assess the premises and name the fallacy", body


def thinking(rng: random.Random, goal: str, sections: list[Section], tail: str = "") -> str:
    opener = pick(rng, OPENERS).format(goal=goal)
    plan = "\n".join(f"Step {i}: {title}" for i, (title, _) in enumerate(sections, start=1))
    parts = [f"{opener}\n{plan}"]
    parts += [f"## Step {i}: {title}\n\n{body}" for i, (title, body) in enumerate(sections, 1)]
    if tail:
        parts.append(tail)
    return "\n\n".join(parts)


def full_answer(case: Case) -> str:
    return fence(standard_form(case, inferences=True, data=formal_data(case)))


@dataclass
class Turn:
    request: str  # explicit instruction, or "" for a vague request
    thinking: str
    answer: str


def question_pool(case: Case) -> list[tuple[str, str, str, str]]:
    """(question, auxiliary verb, yes|no, justification) derived from the reconstruction."""
    pool = []
    for p in case.premises:
        quote = next((s.quote for s in case.spans if s.ref == p.n), "")
        if quote:
            why = f"The text states it in so many words: \"{quote}\"."
            answer = "yes"
        else:
            why = (f"No passage says this; ({p.n}) is a premise I had to add to make the "
                   "inference work.")
            answer = "no"
        pool.append((f"Is proposition ({p.n}) explicitly mentioned in the text?", "is", answer,
                     why))
        pool.append((f"Does the text state explicitly that {lower_first(p.text[:-1])}?", "does",
                     answer, why))
    rules = "; ".join(f"({c.n}) by {c.rule}" for c in case.conclusions)
    pool.append(("Is the argument deductively valid?", "is", "yes",
                 f"Every step follows by a valid rule: {rules}."))
    for c in case.conclusions[:-1]:
        pool.append((f"Is ({c.n}) an intermediate conclusion?", "is", "yes",
                     f"({c.n}) is inferred from {refs(c.uses)} and used again later."))
    first = case.premises[0]
    pool.append((f"Is ({first.n}) an intermediate conclusion?", "is", "no",
                 f"({first.n}) is a premise; nothing in the reconstruction supports it."))
    implicit = [p.n for p in case.premises if p.implicit]
    pool.append(("Does the reconstruction need a premise the text leaves implicit?", "does",
                 "yes" if implicit else "no",
                 f"Premise {refs(implicit)} is not in the text." if implicit
                 else "Every premise of the reconstruction is stated in the text."))
    if case.fallacy:
        stated = [p.parsed for p in case.premises if not p.implicit]
        enough = entails(stated, case.props[-1].parsed)
        pool.append(("Do the premises stated in the text suffice to derive the conclusion?",
                     "do", "yes" if enough else "no",
                     "With the stated premises alone, the conclusion "
                     + ("follows." if enough else "does not follow.")))
        pool.append((f"Does the text commit the {case.fallacy} fallacy?", "does", "yes",
                     case.diagnosis))
        other = [f for f in FALLACIES if f != case.fallacy]
        wrong = other[zlib.crc32(case.slug.encode()) % len(other)]
        pool.append((f"Is the text an example of the {wrong} fallacy?", "is", "no",
                     f"No: the flaw is a different one, {case.fallacy}."))
    return pool


def short_answer(rng: random.Random, aux: str, answer: str) -> str:
    if answer == "yes":
        return pick(rng, ("Yes.", f"Yes, it {aux}." if aux != "do" else "Yes, they do.", "Yes."))
    negative = {"is": "No, it is not.", "does": "No, it does not.", "do": "No, they do not."}
    return pick(rng, ("No.", negative[aux]))


def task_turn(task: str, case: Case, rng: random.Random, *, want: str = "yes",
              used: set[str] | None = None) -> Turn:
    goal = GOALS[task]
    request = pick(rng, REQUESTS[task]) if task in REQUESTS else ""
    if task == "full":
        sections = [sec_gist(case, rng), sec_standard(case, rng), sec_formalization(case, rng)]
        tail = "Putting it together: the reconstruction with inference rules and formulas."
        return Turn(request, thinking(rng, goal, sections, tail), full_answer(case))
    if task == "standard":
        sections = [sec_gist(case, rng), sec_standard(case, rng)]
        answer = fence(standard_form(case, inferences=True))
        tail = pick(rng, ("Each step uses a standard rule, so I can write out the final version.",
                          "That completes the reconstruction."))
        return Turn(request, thinking(rng, goal, sections, tail), answer)
    if task == "map":
        sections = [sec_standard(case, rng), sec_map(case, rng)]
        return Turn(request, thinking(rng, goal, sections), fence(informal_map(case)))
    if task == "annotate":
        sections = [sec_standard(case, rng), sec_spans(case, rng)]
        tail = "Now I mark these passages in the text and link each to its proposition."
        return Turn(request, thinking(rng, goal, sections, tail), annotate(case))
    if task == "smt":
        sections = [sec_standard(case, rng, inferences=True), sec_formalization(case, rng)]
        tail = ("Each inference becomes a push/pop block that asserts the negation of "
                "'premises imply conclusion'; unsat means the step is valid.")
        return Turn(request, thinking(rng, goal, sections, tail), fence(smt_program(case), ""))
    if task == "gist":
        sections = [sec_standard(case, rng), sec_gist(case, rng)]
        return Turn(request, thinking(rng, goal, sections), fence(f"<{case.title}>: {case.gist}"))
    if task == "fallacy":
        sections = [sec_standard(case, rng, inferences=True), sec_diagnosis(case, rng)]
        answer = (f"The argument commits the {case.fallacy} fallacy.\n\n"
                  + fence(standard_form(case, inferences=True))
                  + f"\n\n{case.diagnosis}")
        return Turn(request, thinking(rng, goal, sections), answer)
    if task == "question":
        options = [q for q in question_pool(case) if q[2] == want and q[0] not in (used or ())]
        question, aux, answer, why = pick(rng, options)
        if used is not None:
            used.add(question)
        sections = [sec_standard(case, rng)]
        if "explicitly" in question or "stated" in question:
            sections.append(sec_spans(case, rng))
        elif "valid" in question or "suffice" in question:
            sections.append(sec_formalization(case, rng))
        elif case.fallacy:
            sections.append(sec_diagnosis(case, rng))
        reply = short_answer(rng, aux, answer)
        sections.append(("Answer the question", f"The question: '{question}'\n\n{why}\n\n{reply}"))
        request = pick(rng, QUESTION_REQUESTS).format(q=question)
        return Turn(request, thinking(rng, goal, sections), reply)
    raise ValueError(task)


FOLLOW_UPS = {
    "formalize": ("Now formalize premise ({n}).", "Next, please formalize premise ({n}) in LaTeX.",
                  "Could you also give me a formalization of ({n})?"),
    "valid": ("Is the argument deductively valid? Yes or no is enough.",
              "Quick check: is this argument valid?"),
    "implicit": ("Which premises did you have to supply that the text does not state?",
                 "Are there any implicit premises?"),
    "fallacy_name": ("Which fallacy is it? Just the name.", "Name the fallacy, nothing more."),
}


def follow_up(kind: str, case: Case, rng: random.Random) -> Turn:
    if kind == "formalize":
        prop = case.premises[rng.randrange(len(case.premises))]
        request = pick(rng, FOLLOW_UPS[kind]).format(n=prop.n)
        keys = key_list(case, [prop])
        think = (f"Premise ({prop.n}) says: \"{prop.text}\" With the keys\n{keys}\n"
                 f"it becomes ${latex(prop.parsed)}$.")
        answer = f"Premise ({prop.n}): ${latex(prop.parsed)}$\n\nwhere\n{keys}"
        return Turn(request, think, answer)
    request = pick(rng, FOLLOW_UPS[kind])
    if kind == "valid":
        rules = "; ".join(f"({c.n}) by {c.rule}" for c in case.conclusions)
        return Turn(request, f"Every step is licensed by a valid rule: {rules}.", "Yes.")
    if kind == "implicit":
        implicit = [p for p in case.premises if p.implicit]
        if implicit:
            answer = "\n".join(f"({p.n}) {p.text}" for p in implicit)
            think = "Comparing the reconstruction with the spans: this premise has no passage."
        else:
            answer = "None: every premise is stated in the text."
            think = "Every premise of the reconstruction has a passage in the text."
        return Turn(request, think, answer)
    if kind == "fallacy_name":
        first = case.diagnosis.split(". ")[0]
        return Turn(request, f"{first}. That is the {case.fallacy} fallacy.",
                    case.fallacy.capitalize() + ".")
    raise ValueError(kind)


# --- rows ----------------------------------------------------------------------------------


def message(role: str, content: str | None = None, *, name: str | None = None,
            thinking: str | None = None, tool_calls: str | None = None,
            tools: str | None = None) -> dict:
    values = {"content": content, "name": name, "role": role, "thinking": thinking,
              "tool_calls": tool_calls, "tools": tools}
    return {key: values[key] for key in MESSAGE_KEYS}


def user_message(case: Case, rng: random.Random, request: str) -> str:
    """Instruction, introducer line, source text, optional trailing instruction."""
    if not request:
        before, intro, after = pick(rng, VAGUE)
    else:
        intro = pick(rng, INTROS)
        trailing_ok = re.match(r"(Analy[sz]e|Reconstruct|Annotate|Generate|Identify|Evaluate|"
                               r"Create|Provide|Summari[sz]e|Write|Map)\b", request)
        if trailing_ok and "below" not in request and rng.random() < 0.4:
            before, after = "", request
        else:
            before, after = request, ""
    head = f"{before}\n\n{intro}" if before else intro
    text = f"{head}\n{case.text}"
    return f"{text}\n\n{after}" if after else text


def tool_row(case: Case, rng: random.Random) -> list[dict]:
    goal = GOALS["tool"]
    premises = case.premises
    sections = [
        sec_standard(case, rng),
        ("Profile the premises with the rhetorical analysis tool",
         f"The tool takes a list of sentences; I pass the premises {refs([p.n for p in premises])} "
         "and will attach its findings to them."),
    ]
    first = thinking(rng, goal, sections)
    call = [{"type": "function", "function": {
        "name": "rhetorical_analysis",
        "arguments": {"propositions": [p.text for p in premises]}}}]
    profiles = [{
        "tone": pick(rng, TONES),
        "appeal": {"logos": round(rng.uniform(0.45, 0.95), 2),
                   "ethos": round(rng.uniform(0.05, 0.45), 2),
                   "pathos": round(rng.uniform(0.0, 0.35), 2)},
        "complexity": round(rng.uniform(0.1, 0.7), 2),
    } for _ in premises]
    data = {
        p.n: "{" + f"tone: {prof['tone']}, logos: {prof['appeal']['logos']}, "
        f"ethos: {prof['appeal']['ethos']}, pathos: {prof['appeal']['pathos']}, "
        f"complexity: {prof['complexity']}" + "}"
        for p, prof in zip(premises, profiles)
    }
    strongest = max(zip(premises, profiles), key=lambda pp: pp[1]["appeal"]["logos"])[0]
    pathos = max(prof["appeal"]["pathos"] for prof in profiles)
    final_thinking = (
        f"The tool returned one profile per premise. Premise ({strongest.n}) leans most on "
        f"reasoning (highest logos); the emotional appeal never goes above {pathos}. I attach "
        "each profile as inline YAML data to its premise in the standard form."
    )
    answer = fence(standard_form(case, data=data))
    return [
        message("assistant", thinking=first),
        message("assistant", tool_calls=json.dumps(call, ensure_ascii=False)),
        message("tool", json.dumps(profiles), name="rhetorical_analysis"),
        message("assistant", answer, thinking=final_thinking),
    ]


@dataclass(frozen=True)
class Item:
    task: str
    vague: bool
    slot: int  # which of the split's cases
    follow: str = ""


# Train uses cases 0 and 1 of a config, validation case 2, test case 3: no text is shared
# between splits. Each split holds a tool round trip, a multi-turn row and 2-3 vague requests.
PLANS = {
    "train": (
        Item("full", True, 0), Item("standard", False, 1), Item("tool", False, 0),
        Item("standard", False, 1, "formalize"), Item("question", False, 0),
        Item("annotate", False, 1), Item("smt", True, 1), Item("question", False, 1),
        Item("map", False, 0), Item("full", False, 1),
    ),
    "validation": (
        Item("annotate", True, 0), Item("full", False, 0), Item("full", True, 0, "valid"),
        Item("question", False, 0), Item("tool", True, 0), Item("smt", False, 0),
        Item("map", False, 0), Item("question", False, 0), Item("standard", False, 0),
        Item("gist", False, 0),
    ),
    "test": (
        Item("full", True, 0), Item("question", False, 0), Item("map", False, 0, "formalize"),
        Item("tool", False, 0), Item("annotate", False, 0), Item("smt", False, 0),
        Item("standard", True, 0), Item("question", False, 0), Item("full", False, 0),
        Item("annotate", False, 0, "implicit"),
    ),
}
SPLIT_CASES = {"train": (0, 1), "validation": (2,), "test": (3,)}
# The folly config asks about fallacies where the others ask for maps, gists and validity.
FOLLY_TASKS = {("train", 8): "fallacy", ("validation", 9): "fallacy"}
FOLLY_FOLLOW_UPS = {("validation", 2): "fallacy_name"}


def build_split(config: str, split: str) -> list[dict]:
    cases = [CASES[config][i] for i in SPLIT_CASES[split]]
    plan = list(enumerate(PLANS[split]))
    random.Random(f"{SEED}/{config}/{split}").shuffle(plan)
    rows, used, answers = [], set(), iter(("yes", "no", "yes"))
    for nn, (slot, item) in enumerate(plan):
        source_id = f"sample/{config}/{split}/{nn:02d}"
        rng = random.Random(zlib.crc32(f"{SEED}/{source_id}".encode()))
        case = cases[item.slot]
        task, follow = item.task, item.follow
        if config == "deepa2-folly-thinking":
            task = FOLLY_TASKS.get((split, slot), task)
            follow = FOLLY_FOLLOW_UPS.get((split, slot), follow)
        if task == "tool":
            request = "" if item.vague else pick(rng, REQUESTS["tool"])
            system = message("system", pick(rng, TOOL_SYSTEM_PROMPTS),
                             tools=json.dumps([RHETORIC_TOOL], ensure_ascii=False))
            messages = [system, message("user", user_message(case, rng, request))]
            messages += tool_row(case, rng)
        else:
            want = next(answers) if task == "question" else "yes"
            turn = task_turn(task, case, rng, want=want, used=used)
            request = "" if item.vague else turn.request
            messages = [
                message("system", pick(rng, SYSTEM_PROMPTS), tools="[]"),
                message("user", user_message(case, rng, request)),
                message("assistant", turn.answer, thinking=turn.thinking),
            ]
            if follow:
                second = follow_up(follow, case, rng)
                messages += [message("user", second.request),
                             message("assistant", second.answer, thinking=second.thinking)]
        rows.append({"source_id": source_id, "messages": messages})
    for row in rows:
        check_row(row, cases)
    return rows


def conversation_chars(row: dict) -> int:
    return sum(len(v) for m in row["messages"] for v in m.values() if isinstance(v, str))


def check_row(row: dict, cases: list[Case]) -> None:
    parse_conversation(row, row["source_id"])
    user = next(m["content"] for m in row["messages"] if m["role"] == "user")
    parts = split_source(user)
    if parts is None or parts[1] not in {c.text for c in cases}:
        raise ValueError(f"{row['source_id']}: split_source does not recover the source text")
    size = conversation_chars(row)
    if size > MAX_CHARS:
        raise ValueError(f"{row['source_id']}: {size} characters (limit {MAX_CHARS})")


# --- files ---------------------------------------------------------------------------------


def shape_counts(rows: list[dict]) -> Counter:
    counts: Counter = Counter()
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        if "tool" in roles:
            counts["tool round trip"] += 1
        elif roles.count("user") > 1:
            counts["multi-turn"] += 1
        else:
            counts["single turn"] += 1
        user = row["messages"][1]["content"]
        before, _, after = split_source(user)
        instruction = before.strip().rsplit("\n", 1)[0] if "\n" in before.strip() else ""
        if len(instruction) + len(after.strip()) < 60:
            counts["vague request"] += 1
        last = row["messages"][-1]["content"] or ""
        if len(last) <= 20:
            counts["short answer"] += 1
    return counts


def readme(all_rows: dict[str, list[dict]]) -> str:
    config_yaml = []
    for config in CONFIGS:
        config_yaml.append(f"- config_name: {config}\n  data_files:")
        config_yaml += [f"  - split: {s}\n    path: {config}/{s}.jsonl" for s in SPLITS]
    kinds = ("single turn", "tool round trip", "multi-turn", "vague request", "short answer")
    table = ["| config | rows | " + " | ".join(kinds) + " |",
             "|---" * (len(kinds) + 2) + "|"]
    for config in CONFIGS:
        counts = shape_counts(all_rows[config])
        cells = " | ".join(str(counts[k]) for k in kinds)
        table.append(f"| {config} | {len(all_rows[config])} | {cells} |")
    front = "\n".join([
        "---", "license: apache-2.0", "language:", "- en",
        "pretty_name: argalign sample (argunauts-thinking layout)",
        "size_categories:", "- n<1K", "configs:", *config_yaml, "---",
    ])
    body = f"""
# argalign sample dataset

A small dataset written for **argalign** so that its tests, examples and smoke runs work
offline. It has the layout and row schema of the Hugging Face dataset
`DebateLabKIT/argunauts-thinking`, but it is **not** that dataset: every text here was written
for argalign, and none is taken from the real data. License of this sample: Apache-2.0.

Four configs, each with the splits `train`, `validation` and `test` of 10 rows:
{chr(10).join(f"- `{c}`" for c in CONFIGS)}

Each config has four argumentative cases of its own (aaac01: a named individual and universal
premises; aaac02: universal generalizations; aaac03: propositional arguments; folly:
fallacious, debate-style texts). Train uses two cases, validation and test one each, so
no source text is shared between splits.

## Rows

One JSON object per line: `{{"source_id": "sample/<config>/<split>/<nn>", "messages": [...]}}`.
Every message has exactly the keys `content, name, role, thinking, tool_calls, tools`, absent
values `null`. `tools` is a JSON string on the system message (`"[]"` without tools);
`tool_calls` is a JSON string on an assistant message; a tool result is a `tool` message whose
`name` is the tool and whose `content` is JSON text. In a tool round trip the first assistant
message has only `thinking` and the second only `tool_calls`, as in the real data.

The first user message is: optional instruction, a line introducing the text (ending with a
colon), the source text, and optionally one trailing instruction paragraph.

Some rows carry the flaw argalign repairs: a vague request ("Have a look at this.") answered
with an elaborate method (a full Argdown reconstruction with formalization, an annotation, an
SMT program). Other rows ask explicitly for what they get, for contrast.

{chr(10).join(table)}

A "vague request" has under 60 characters of instruction around the source text; a "short
answer" is a final answer of at most 20 characters.

## Loading

```python
from datasets import load_dataset
ds = load_dataset("path/to/argalign/data/sample", "deepa2-aaac01-thinking", split="train")
```

## Regenerating

The files are generated; do not edit them by hand. `python scripts/make_sample.py` rewrites
them byte for byte (`--out DIR` writes elsewhere).
"""
    return front + "\n" + body


def dump_rows(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory (default: {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    for cases in CASES.values():
        for case in cases:
            check_case(case)
    all_rows = {}
    for config in CONFIGS:
        all_rows[config] = []
        for split in SPLITS:
            rows = build_split(config, split)
            path = args.out / config / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump_rows(rows), encoding="utf-8", newline="\n")
            all_rows[config] += rows
    (args.out / "README.md").write_text(readme(all_rows), encoding="utf-8", newline="\n")
    total = sum(len(r) for r in all_rows.values())
    largest = max(conversation_chars(r) for rows in all_rows.values() for r in rows)
    print(f"wrote {total} rows to {args.out} (largest conversation: {largest} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
