"""Write the sample dataset bundled with argalign (src/argalign/data/sample).

The sample mirrors the layout and row schema of the Hub dataset DebateLabKIT/argunauts-thinking:
four configs, three splits, ten rows per split, one JSON object per line with the columns
``source_id`` and ``messages``. Every text in it is written for argalign: sixteen small
argumentative cases (four per config, each with a reconstruction, a formalization and an
annotation), composed into conversations that vary the task and the phrasing of the request.
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
import textwrap
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from argalign.prepare import CONFIGS, SPLITS  # noqa: E402
from argalign.schema import MESSAGE_KEYS, parse_conversation, split_source  # noqa: E402

DEFAULT_OUT = ROOT / "src" / "argalign" / "data" / "sample"
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


def P(n: int, text: str, formula: str, *, implicit: bool = False) -> Prop:
    return Prop(n, text, formula, implicit=implicit)


def C(n: int, text: str, formula: str, uses: tuple[int, ...], rule: str) -> Prop:
    return Prop(n, text, formula, uses, rule)


def R(quote: str, ref: int) -> Span:
    return Span("reason", quote, ref)


def J(quote: str, ref: int) -> Span:
    return Span("conjecture", quote, ref)


def prose(text: str) -> str:
    """Dedent; join the lines of each paragraph; paragraphs stay separated by a blank line."""
    paragraphs = textwrap.dedent(text).strip().split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


AAAC01 = (
    Case(
        slug="velvet-rain",
        title="Cocamide DEA",
        gist="Velvet Rain shampoo is not recommended by Greenleaf pharmacies, because it contains "
        "Cocamide DEA, and products with that ingredient fail the Sensitive Scalp certification.",
        about="whether Greenleaf pharmacies recommend Velvet Rain shampoo",
        keys={
            "F": "product made of Cocamide DEA",
            "G": "product that fails the Sensitive Scalp certification",
            "H": "product recommended by Greenleaf pharmacies",
            "a": "Velvet Rain shampoo",
        },
        text=prose("""
            Shoppers who expect to find Velvet Rain shampoo on the recommended shelf at Greenleaf
            pharmacies will be disappointed. The reason has nothing to do with its scent or its
            price. Velvet Rain contains Cocamide DEA, as the small print on the back of the bottle
            admits, and every product that contains Cocamide DEA fails the Sensitive Scalp
            certification.

            That matters, because Greenleaf has a firm house rule: no product that fails the
            Sensitive Scalp certification is ever recommended by its pharmacists. Hence no product
            made with Cocamide DEA gets a Greenleaf recommendation, and Velvet Rain is not
            recommended by Greenleaf either.
        """),
        props=(
            P(1, "Every product made of Cocamide DEA fails the Sensitive Scalp certification.",
              "all x: F(x) -> G(x)"),
            P(2, "No product that fails the Sensitive Scalp certification is recommended by "
              "Greenleaf pharmacies.", "all x: G(x) -> ~H(x)"),
            C(3, "No product made of Cocamide DEA is recommended by Greenleaf pharmacies.",
              "all x: F(x) -> ~H(x)", (1, 2), "hypothetical syllogism"),
            P(4, "Velvet Rain shampoo is a product made of Cocamide DEA.", "F(a)"),
            C(5, "Velvet Rain shampoo is not recommended by Greenleaf pharmacies.", "~H(a)",
              (3, 4), "instantiation and modus ponens"),
        ),
        spans=(
            J("Shoppers who expect to find Velvet Rain shampoo on the recommended shelf at "
              "Greenleaf pharmacies will be disappointed", 5),
            R("Velvet Rain contains Cocamide DEA", 4),
            R("every product that contains Cocamide DEA fails the Sensitive Scalp certification",
              1),
            R("no product that fails the Sensitive Scalp certification is ever recommended by its "
              "pharmacists", 2),
            J("no product made with Cocamide DEA gets a Greenleaf recommendation", 3),
            J("Velvet Rain is not recommended by Greenleaf either", 5),
        ),
    ),
    Case(
        slug="rovers-fan",
        title="Rovers membership",
        gist="Jonas is a critic of Harbour Athletic, since every member of the Rovers supporters' "
        "club is such a critic or a former Millbrook FC player, and he never played for Millbrook.",
        about="whether Jonas is a critic of Harbour Athletic",
        keys={
            "F": "member of the Riverside Rovers supporters' club",
            "G": "critic of Harbour Athletic",
            "H": "former player of Millbrook FC",
            "a": "Jonas",
        },
        text=prose("""
            Ask anyone at the Riverside Rovers supporters' club about Harbour Athletic and you will
            get an earful. Jonas is no different. People sometimes take him for a neutral because
            he grew up near the harbour, but the facts say otherwise.

            Jonas has been a member of the Rovers supporters' club for six years; his membership
            card is older than his car. And everyone who is a member of that club is either a
            critic of Harbour Athletic or a former player of Millbrook FC, a quirk of local history
            the founders are oddly proud of. So Jonas is a critic of Harbour Athletic or a former
            player of Millbrook FC. Given his actual football career, the rest is obvious: Jonas is
            a critic of Harbour Athletic.
        """),
        props=(
            P(1, "Every member of the Riverside Rovers supporters' club is a critic of Harbour "
              "Athletic or a former player of Millbrook FC.", "all x: F(x) -> (G(x) | H(x))"),
            P(2, "Jonas is a member of the Riverside Rovers supporters' club.", "F(a)"),
            C(3, "Jonas is a critic of Harbour Athletic or a former player of Millbrook FC.",
              "G(a) | H(a)", (1, 2), "instantiation and modus ponens"),
            P(4, "Jonas is not a former player of Millbrook FC.", "~H(a)", implicit=True),
            C(5, "Jonas is a critic of Harbour Athletic.", "G(a)", (3, 4),
              "disjunctive syllogism"),
        ),
        spans=(
            R("Jonas has been a member of the Rovers supporters' club for six years", 2),
            R("everyone who is a member of that club is either a critic of Harbour Athletic or a "
              "former player of Millbrook FC", 1),
            J("Jonas is a critic of Harbour Athletic or a former player of Millbrook FC", 3),
            J("Jonas is a critic of Harbour Athletic", 5),
        ),
    ),
    Case(
        slug="codenames",
        title="Team game",
        gist="Codenames is a poor choice for an evening for two but a favourite at family "
        "reunions, because it is played in teams and so needs at least four players.",
        about="whether Codenames suits an evening for two",
        keys={
            "F": "game played in teams",
            "G": "game that needs at least four players",
            "H": "good choice for an evening for two",
            "K": "favourite at family reunions",
            "a": "Codenames",
        },
        text=prose("""
            Our game night group keeps asking whether Codenames is worth bringing along to a quiet
            evening for two. It is not, and the reasoning is short.

            Codenames is played in teams; there is no way around the two rival groups of
            spymasters and guessers. Therefore Codenames needs at least four players. Moreover,
            any game that needs at least four players is a poor choice for an evening for two,
            while being a favourite at family reunions, where there are always enough people around
            the table. It follows that Codenames is no good for an evening for two, but a safe bet
            for the next family reunion.
        """),
        props=(
            P(1, "Codenames is a game played in teams.", "F(a)"),
            P(2, "Every game played in teams needs at least four players.",
              "all x: F(x) -> G(x)", implicit=True),
            C(3, "Codenames needs at least four players.", "G(a)", (1, 2),
              "instantiation and modus ponens"),
            P(4, "Every game that needs at least four players is not a good choice for an evening "
              "for two and is a favourite at family reunions.", "all x: G(x) -> (~H(x) & K(x))"),
            C(5, "Codenames is not a good choice for an evening for two and is a favourite at "
              "family reunions.", "~H(a) & K(a)", (3, 4), "instantiation and modus ponens"),
        ),
        spans=(
            R("Codenames is played in teams", 1),
            J("Codenames needs at least four players", 3),
            R("any game that needs at least four players is a poor choice for an evening for two, "
              "while being a favourite at family reunions", 4),
            J("Codenames is no good for an evening for two, but a safe bet for the next family "
              "reunion", 5),
        ),
    ),
    Case(
        slug="rook-and-pawn",
        title="Sunday league",
        gist="Tomasz volunteers at the junior tournament, because he is a member of the Rook & "
        "Pawn club but, lacking a FIDE rating, does not play in its Sunday league.",
        about="whether Tomasz volunteers at the junior tournament of the Rook & Pawn club",
        keys={
            "F": "player in the Sunday league of the Rook & Pawn club",
            "G": "holder of a FIDE rating",
            "M": "member of the Rook & Pawn club",
            "H": "volunteer at the junior tournament",
            "a": "Tomasz",
        },
        text=prose("""
            Who will help out at the junior tournament of the Rook & Pawn chess club next month?
            The organisers have a list, and Tomasz is on it whether he knows it yet or not.

            Here is why. Everyone who plays in the club's Sunday league holds a FIDE rating, and
            Tomasz has never had one. Consequently, Tomasz does not play in the Sunday league. He is
            a member of the Rook & Pawn club, though, even if he mostly turns up for the summer
            blitz evenings. And the club's rule for the tournament is simple: every member who does
            not play in the Sunday league volunteers at the junior tournament. So Tomasz will be
            volunteering.
        """),
        props=(
            P(1, "Everyone who plays in the Sunday league of the Rook & Pawn club holds a FIDE "
              "rating.", "all x: F(x) -> G(x)"),
            P(2, "Tomasz does not hold a FIDE rating.", "~G(a)"),
            C(3, "Tomasz does not play in the Sunday league of the Rook & Pawn club.", "~F(a)",
              (1, 2), "instantiation and modus tollens"),
            P(4, "Tomasz is a member of the Rook & Pawn club.", "M(a)"),
            P(5, "Every member of the Rook & Pawn club who does not play in its Sunday league "
              "volunteers at the junior tournament.", "all x: (M(x) & ~F(x)) -> H(x)"),
            C(6, "Tomasz volunteers at the junior tournament.", "H(a)", (3, 4, 5),
              "instantiation and modus ponens"),
        ),
        spans=(
            R("Everyone who plays in the club's Sunday league holds a FIDE rating", 1),
            R("Tomasz has never had one", 2),
            J("Tomasz does not play in the Sunday league", 3),
            R("He is a member of the Rook & Pawn club", 4),
            R("every member who does not play in the Sunday league volunteers at the junior "
              "tournament", 5),
            J("Tomasz will be volunteering", 6),
        ),
    ),
)

AAAC02 = (
    Case(
        slug="nordic-table",
        title="Romance Languages Circle",
        gist="No evening-class learner of Portuguese takes part in the Nordic conversation table, "
        "since all of them belong to the Romance Languages Circle, whose members never do.",
        about="whether learners of Portuguese in evening classes join the Nordic table",
        keys={
            "F": "learner of Portuguese in evening classes",
            "G": "advanced speaker of Spanish",
            "H": "university student of Italian",
            "K": "member of the Romance Languages Circle",
            "L": "participant in the Nordic conversation table",
        },
        text=prose("""
            A note for the organisers of the Nordic conversation table at our language centre: do
            not expect many sign-ups from the Portuguese evening class.

            The evening learners of Portuguese are a particular crowd. Every one of them either
            already speaks Spanish at an advanced level or studies Italian at the university next
            door. All advanced speakers of Spanish in this building are members of the Romance
            Languages Circle, and so is every university student of Italian. Hence every
            evening-class learner of Portuguese belongs to the Romance Languages Circle. The Circle
            meets on Thursday nights, the same evening as the Nordic table, so no member of the
            Circle takes part in the Nordic conversation table. The upshot: no evening-class learner
            of Portuguese will be joining the Nordic conversation table.
        """),
        props=(
            P(1, "Every learner of Portuguese in evening classes is an advanced speaker of Spanish "
              "or a university student of Italian.", "all x: F(x) -> (G(x) | H(x))"),
            P(2, "Every advanced speaker of Spanish is a member of the Romance Languages Circle.",
              "all x: G(x) -> K(x)"),
            P(3, "Every university student of Italian is a member of the Romance Languages Circle.",
              "all x: H(x) -> K(x)"),
            C(4, "Every learner of Portuguese in evening classes is a member of the Romance "
              "Languages Circle.", "all x: F(x) -> K(x)", (1, 2, 3), "generalized dilemma"),
            P(5, "No member of the Romance Languages Circle takes part in the Nordic conversation "
              "table.", "all x: K(x) -> ~L(x)"),
            C(6, "No learner of Portuguese in evening classes takes part in the Nordic "
              "conversation table.", "all x: F(x) -> ~L(x)", (4, 5), "hypothetical syllogism"),
        ),
        spans=(
            R("Every one of them either already speaks Spanish at an advanced level or studies "
              "Italian at the university next door", 1),
            R("All advanced speakers of Spanish in this building are members of the Romance "
              "Languages Circle", 2),
            R("so is every university student of Italian", 3),
            J("every evening-class learner of Portuguese belongs to the Romance Languages Circle",
              4),
            R("no member of the Circle takes part in the Nordic conversation table", 5),
            J("no evening-class learner of Portuguese will be joining the Nordic conversation "
              "table", 6),
        ),
    ),
    Case(
        slug="annual-pass",
        title="Mobility bonus",
        gist="Every colleague who commutes by regional train is entitled to the discounted annual "
        "pass, because such commuters get the mobility bonus, which brings the pass with it.",
        about="who is entitled to the discounted annual pass",
        keys={
            "F": "commuter by regional train",
            "G": "person registered for the company car park",
            "H": "recipient of the mobility bonus",
            "K": "person entitled to the discounted annual pass",
        },
        text=prose("""
            Re: Who gets the discounted annual pass?

            Several colleagues have asked whether the new discounted annual pass is only meant for
            people who live in town. It is not. Every colleague who commutes by regional train
            qualifies for it, and the reasoning HR gave us at the staff meeting is worth repeating.

            Everyone who is not registered for the company car park receives the mobility bonus;
            that has been the rule since spring. From this it follows that every regional-train
            commuter receives the mobility bonus. Finally, whoever receives the mobility bonus is
            entitled to the discounted annual pass, no forms required.
        """),
        props=(
            P(1, "No commuter by regional train is registered for the company car park.",
              "all x: F(x) -> ~G(x)", implicit=True),
            P(2, "Everyone who is not registered for the company car park receives the mobility "
              "bonus.", "all x: ~G(x) -> H(x)"),
            C(3, "Every commuter by regional train receives the mobility bonus.",
              "all x: F(x) -> H(x)", (1, 2), "hypothetical syllogism"),
            P(4, "Everyone who receives the mobility bonus is entitled to the discounted annual "
              "pass.", "all x: H(x) -> K(x)"),
            C(5, "Every commuter by regional train is entitled to the discounted annual pass.",
              "all x: F(x) -> K(x)", (3, 4), "hypothetical syllogism"),
        ),
        spans=(
            J("Every colleague who commutes by regional train qualifies for it", 5),
            R("Everyone who is not registered for the company car park receives the mobility "
              "bonus", 2),
            J("every regional-train commuter receives the mobility bonus", 3),
            R("whoever receives the mobility bonus is entitled to the discounted annual pass", 4),
        ),
    ),
    Case(
        slug="adas-cousins",
        title="Marta's grandchildren",
        gist="Every cousin of Ada is a child of Rosa, since Ada's cousins are all grandchildren "
        "of Marta, whose grandchildren are children of Paul or Rosa, and none is Paul's child.",
        about="whose children Ada's cousins are",
        keys={
            "F": "cousin of Ada",
            "G": "grandchild of Marta",
            "H": "child of Paul",
            "K": "child of Rosa",
        },
        text=prose("""
            Dear Aunt Helga,

            you asked me at the wedding how all of Ada's cousins fit into the family tree, and I
            promised to sort it out. Marta, our grandmother, had exactly two children, Paul and
            Rosa, so every grandchild of Marta is a child of Paul or a child of Rosa. Every cousin
            of Ada, on the other hand, is a grandchild of Marta; Ada's mother's side of the family
            is tiny and has no children at all. Putting this together, every cousin of Ada is a
            child of Paul or a child of Rosa.

            And since Ada is Paul's daughter, the conclusion is plain: every cousin of Ada is a
            child of Rosa. I hope that helps with the seating plan.

            Love, Jana
        """),
        props=(
            P(1, "Every cousin of Ada is a grandchild of Marta.", "all x: F(x) -> G(x)"),
            P(2, "Every grandchild of Marta is a child of Paul or a child of Rosa.",
              "all x: G(x) -> (H(x) | K(x))"),
            C(3, "Every cousin of Ada is a child of Paul or a child of Rosa.",
              "all x: F(x) -> (H(x) | K(x))", (1, 2), "hypothetical syllogism"),
            P(4, "No cousin of Ada is a child of Paul.", "all x: F(x) -> ~H(x)", implicit=True),
            C(5, "Every cousin of Ada is a child of Rosa.", "all x: F(x) -> K(x)", (3, 4),
              "generalized disjunctive syllogism"),
        ),
        spans=(
            R("every grandchild of Marta is a child of Paul or a child of Rosa", 2),
            R("Every cousin of Ada, on the other hand, is a grandchild of Marta", 1),
            J("every cousin of Ada is a child of Paul or a child of Rosa", 3),
            J("every cousin of Ada is a child of Rosa", 5),
        ),
    ),
    Case(
        slug="nordlys-balm",
        title="Vegan lip balm",
        gist="Every Nordlys lip balm is made with candelilla wax, because each is made with "
        "beeswax or candelilla wax, and being vegan-certified, none contains beeswax.",
        about="which wax the Nordlys lip balms are made with",
        keys={
            "F": "Nordlys lip balm",
            "G": "product made with beeswax",
            "H": "product made with candelilla wax",
            "K": "vegan-certified product",
        },
        text=prose("""
            Is there beeswax in the Nordlys lip balms? Readers of this blog keep asking, so I went
            through the whole range.

            Every Nordlys lip balm is made either with beeswax or with candelilla wax; the brand
            uses no other base. No product made with beeswax can carry the vegan certificate, for
            obvious reasons. Yet every single Nordlys lip balm carries that certificate, the small
            green leaf on the lid. So no Nordlys lip balm contains beeswax. In other words, every
            lip balm in the Nordlys range is made with candelilla wax, which also explains why they
            feel a little firmer than the competition.
        """),
        props=(
            P(1, "Every Nordlys lip balm is made with beeswax or with candelilla wax.",
              "all x: F(x) -> (G(x) | H(x))"),
            P(2, "No product made with beeswax is vegan-certified.", "all x: G(x) -> ~K(x)"),
            P(3, "Every Nordlys lip balm is vegan-certified.", "all x: F(x) -> K(x)"),
            C(4, "No Nordlys lip balm is made with beeswax.", "all x: F(x) -> ~G(x)", (2, 3),
              "transposition and hypothetical syllogism"),
            C(5, "Every Nordlys lip balm is made with candelilla wax.", "all x: F(x) -> H(x)",
              (1, 4), "generalized disjunctive syllogism"),
        ),
        spans=(
            R("Every Nordlys lip balm is made either with beeswax or with candelilla wax", 1),
            R("No product made with beeswax can carry the vegan certificate", 2),
            R("every single Nordlys lip balm carries that certificate", 3),
            J("no Nordlys lip balm contains beeswax", 4),
            J("every lip balm in the Nordlys range is made with candelilla wax", 5),
        ),
    ),
)

AAAC03 = (
    Case(
        slug="train-strike",
        title="Early bus",
        gist="Lena leaves home before seven on Monday, because the train strike puts her on the "
        "bus, and on the bus she is only on time for the meeting if she leaves that early.",
        about="when Lena leaves home on Monday",
        keys={
            "p": "the regional train drivers strike on Monday",
            "q": "Lena takes the bus to the office on Monday",
            "r": "Lena arrives at the meeting on time",
            "s": "Lena leaves home before seven on Monday",
        },
        text=prose("""
            Don't worry about Monday's budget meeting. Lena will be there on time, but she will
            have to set her alarm early.

            The union confirmed this morning that the regional train drivers are on strike on
            Monday. If the drivers strike, Lena has no choice but to take the bus to the office. So
            she is taking the bus. Now, if she takes the bus and doesn't leave home before seven,
            she won't make it to the meeting at nine; the bus crawls through the roadworks at the
            bridge. But she is chairing the meeting, and she will be on time, she always is. So
            Lena is leaving home before seven on Monday.
        """),
        props=(
            P(1, "If the regional train drivers strike on Monday, Lena takes the bus to the "
              "office.", "p -> q"),
            P(2, "The regional train drivers strike on Monday.", "p"),
            C(3, "Lena takes the bus to the office on Monday.", "q", (1, 2), "modus ponens"),
            P(4, "If Lena takes the bus and does not leave home before seven, she does not arrive "
              "at the meeting on time.", "(q & ~s) -> ~r"),
            P(5, "Lena arrives at the meeting on time.", "r"),
            C(6, "Lena leaves home before seven on Monday.", "s", (3, 4, 5),
              "modus tollens (complex variant)"),
        ),
        spans=(
            R("Lena will be there on time", 5),
            J("she will have to set her alarm early", 6),
            R("the regional train drivers are on strike on Monday", 2),
            R("If the drivers strike, Lena has no choice but to take the bus to the office", 1),
            J("she is taking the bus", 3),
            R("if she takes the bus and doesn't leave home before seven, she won't make it to the "
              "meeting at nine", 4),
            R("she will be on time", 5),
            J("Lena is leaving home before seven on Monday", 6),
        ),
    ),
    Case(
        slug="last-round",
        title="Top seed",
        gist="Priya will not qualify for the regional final, because she meets the top seed in "
        "the last round and will therefore not win that game.",
        about="whether Priya qualifies for the regional chess final",
        keys={
            "t": "Priya faces the top seed in the last round",
            "p": "Priya wins her last-round game",
            "q": "Priya qualifies for the regional final",
        },
        text=prose("""
            Club newsletter, round-up of the county championship

            Congratulations first of all to Marek, who finished third in the open section with a
            lovely rook ending in round five. Many of you have asked whether Priya will represent
            the club at the regional final. We are sorry to say that she will not.

            The pairings for the last round were published yesterday, and Priya faces the top seed,
            Okafor. If she faces the top seed in the last round, she will not win that game; Okafor
            has not lost a game in two seasons. It follows that Priya will not win her last-round
            game, and her season ends there.
        """),
        props=(
            P(1, "If Priya faces the top seed in the last round, she does not win her last-round "
              "game.", "t -> ~p"),
            P(2, "Priya faces the top seed in the last round.", "t"),
            C(3, "Priya does not win her last-round game.", "~p", (1, 2), "modus ponens"),
            P(4, "If Priya does not win her last-round game, she does not qualify for the "
              "regional final.", "~p -> ~q", implicit=True),
            C(5, "Priya does not qualify for the regional final.", "~q", (3, 4), "modus ponens"),
        ),
        spans=(
            J("We are sorry to say that she will not", 5),
            R("Priya faces the top seed, Okafor", 2),
            R("If she faces the top seed in the last round, she will not win that game", 1),
            J("Priya will not win her last-round game", 3),
            J("her season ends there", 5),
        ),
    ),
    Case(
        slug="easter-guest-room",
        title="Guest room",
        gist="Grandma will not visit at Easter, because she only comes when the guest room is "
        "free, and Uncle Tim's stay means it will not be.",
        about="whether Grandma visits at Easter",
        keys={
            "p": "Grandma visits at Easter",
            "q": "the guest room is free at Easter",
            "r": "Uncle Tim stays over Easter",
        },
        text=prose("""
            About Easter: I'm afraid Grandma won't be coming to stay with us this year, and I want
            to explain why before anyone gets upset.

            Grandma only ever stays with us when the guest room is free; she refuses to sleep on the
            sofa bed, and who can blame her. Uncle Tim has announced that he is staying over the
            whole Easter weekend. If Uncle Tim stays over Easter, the guest room is not free, since
            he always takes it. Therefore the guest room will not be free at Easter. And so Grandma
            will not be visiting at Easter.

            We'll drive over to see her on Easter Monday instead, cake included.
        """),
        props=(
            P(1, "If Grandma visits at Easter, the guest room is free at Easter.", "p -> q"),
            P(2, "If Uncle Tim stays over Easter, the guest room is not free at Easter.",
              "r -> ~q"),
            P(3, "Uncle Tim stays over Easter.", "r"),
            C(4, "The guest room is not free at Easter.", "~q", (2, 3), "modus ponens"),
            C(5, "Grandma does not visit at Easter.", "~p", (1, 4), "modus tollens"),
        ),
        spans=(
            J("Grandma won't be coming to stay with us this year", 5),
            R("Grandma only ever stays with us when the guest room is free", 1),
            R("Uncle Tim has announced that he is staying over the whole Easter weekend", 3),
            R("If Uncle Tim stays over Easter, the guest room is not free", 2),
            J("the guest room will not be free at Easter", 4),
            J("Grandma will not be visiting at Easter", 5),
        ),
    ),
    Case(
        slug="garden-grant",
        title="Tap water",
        gist="The garden's water bill will exceed the budget, because without the grant there is "
        "no rain-water tank, so the beds are watered from the tap all summer.",
        about="whether the community garden's water bill exceeds the budget",
        keys={
            "p": "the garden gets the city grant",
            "q": "a rain-water tank is built",
            "r": "the beds are watered from the tap all summer",
            "s": "the water bill exceeds the budget",
        },
        text=prose("""
            Minutes of the Linden Street community garden meeting

            Treasurer's report. The council wrote on Friday: our application for the city's
            green-spaces grant has been turned down. That has consequences for the summer. A
            rain-water tank will only be built if we get the grant, so there will be no tank this
            year. Either we build a tank or the beds are watered from the tap all summer, as the
            tomatoes will not survive July otherwise. Hence the beds will be watered from the tap
            all summer.

            The treasurer warned that the water bill will exceed this year's budget. Members agreed
            to hold a fundraising plant sale in May.
        """),
        props=(
            P(1, "The garden does not get the city grant.", "~p"),
            P(2, "If a rain-water tank is built, the garden gets the city grant.", "q -> p"),
            C(3, "No rain-water tank is built.", "~q", (1, 2), "modus tollens"),
            P(4, "A rain-water tank is built or the beds are watered from the tap all summer.",
              "q | r"),
            C(5, "The beds are watered from the tap all summer.", "r", (3, 4),
              "disjunctive syllogism"),
            P(6, "If the beds are watered from the tap all summer, the water bill exceeds the "
              "budget.", "r -> s", implicit=True),
            C(7, "The water bill exceeds the budget.", "s", (5, 6), "modus ponens"),
        ),
        spans=(
            R("our application for the city's green-spaces grant has been turned down", 1),
            R("A rain-water tank will only be built if we get the grant", 2),
            J("there will be no tank this year", 3),
            R("Either we build a tank or the beds are watered from the tap all summer", 4),
            J("the beds will be watered from the tap all summer", 5),
            J("the water bill will exceed this year's budget", 7),
        ),
    ),
)

FOLLY = (
    Case(
        slug="school-night-games",
        title="School-night games",
        gist="Allowing one board game on a school night will end with falling grades, because it "
        "leads to game evenings, then to skipped homework, then to worse marks.",
        about="whether children may play a board game on school nights",
        keys={
            "p": "the children are allowed a board game on a school night",
            "q": "the children demand whole game evenings during the week",
            "r": "homework is rushed or skipped",
            "s": "the children's grades fall",
        },
        text=prose("""
            Subject: Board games on school nights? Absolutely not.

            Some parents in this group think a quick round of a board game after dinner on a school
            night is harmless. I disagree, and I want to say why.

            If we allow one board game on a school night, the children will soon demand whole game
            evenings during the week. If they get whole game evenings during the week, homework
            will be rushed or skipped. And once homework is skipped, their grades will fall; it is
            as simple as that. So letting them play a single board game on a school night will end
            with falling grades. No parent who cares about their child's future can want that.
        """),
        props=(
            P(1, "If the children are allowed a board game on a school night, they demand whole "
              "game evenings during the week.", "p -> q"),
            P(2, "If the children demand whole game evenings during the week, homework is rushed "
              "or skipped.", "q -> r"),
            C(3, "If the children are allowed a board game on a school night, homework is rushed "
              "or skipped.", "p -> r", (1, 2), "hypothetical syllogism"),
            P(4, "If homework is rushed or skipped, the children's grades fall.", "r -> s"),
            C(5, "If the children are allowed a board game on a school night, their grades fall.",
              "p -> s", (3, 4), "hypothetical syllogism"),
        ),
        spans=(
            R("If we allow one board game on a school night, the children will soon demand whole "
              "game evenings during the week", 1),
            R("If they get whole game evenings during the week, homework will be rushed or "
              "skipped", 2),
            R("once homework is skipped, their grades will fall", 4),
            J("letting them play a single board game on a school night will end with falling "
              "grades", 5),
        ),
        fallacy="slippery slope",
        diagnosis="Each link of the chain, (1), (2) and (4), is asserted as if it were certain, "
        "yet none is supported: one game after dinner need not turn into whole game evenings, "
        "and those need not crowd out homework. Chaining several doubtful conditionals makes an "
        "unlikely outcome look inevitable.",
        weak=(1, 2),
    ),
    Case(
        slug="mill-street-lane",
        title="Councillor's car",
        gist="The council should reject the Mill Street cycle lane because the councillor who "
        "proposes it drives an SUV and so cannot be trusted on cycling.",
        about="whether the council should reject the Mill Street cycle lane",
        keys={
            "p": "Councillor Brandt drives an SUV to every council meeting",
            "q": "Councillor Brandt's case for the Mill Street cycle lane can be trusted",
            "r": "the council should reject the Mill Street cycle lane",
        },
        text=prose("""
            To the editor,

            Councillor Brandt wants a protected cycle lane on Mill Street, and half the council
            seems ready to nod it through. Before they do, they should remember who is asking.
            Councillor Brandt drives a large SUV to every single council meeting; I have seen it
            parked outside the town hall more times than I can count.

            Someone who drives an SUV everywhere has no business lecturing the rest of us about
            cycling. His case for the cycle lane simply cannot be trusted. The council should
            reject the Mill Street cycle lane.

            A. Hoffmann, Elm Grove
        """),
        props=(
            P(1, "Councillor Brandt drives an SUV to every council meeting.", "p"),
            P(2, "If Councillor Brandt drives an SUV to every council meeting, his case for the "
              "Mill Street cycle lane cannot be trusted.", "p -> ~q"),
            C(3, "Councillor Brandt's case for the Mill Street cycle lane cannot be trusted.",
              "~q", (1, 2), "modus ponens"),
            P(4, "If Councillor Brandt's case for the Mill Street cycle lane cannot be trusted, "
              "the council should reject the cycle lane.", "~q -> r", implicit=True),
            C(5, "The council should reject the Mill Street cycle lane.", "r", (3, 4),
              "modus ponens"),
        ),
        spans=(
            R("Councillor Brandt drives a large SUV to every single council meeting", 1),
            R("Someone who drives an SUV everywhere has no business lecturing the rest of us "
              "about cycling", 2),
            J("His case for the cycle lane simply cannot be trusted", 3),
            J("The council should reject the Mill Street cycle lane", 5),
        ),
        fallacy="ad hominem",
        diagnosis="The letter attacks the person who makes the proposal instead of the proposal. "
        "Premise (2) is where it fails: how the councillor gets to work says nothing about "
        "whether a cycle lane on Mill Street is a good idea, and the implicit premise (4) turns "
        "distrust of the speaker into a verdict on the plan.",
        weak=(2, 4),
    ),
    Case(
        slug="stadium-phone-in",
        title="Forty thousand fans",
        gist="The town should fund the stadium expansion, since Harbour Athletic plays the best "
        "football in the league, as nearly everyone in town supports it, and the lease runs out.",
        about="whether the town should pay for the stadium expansion",
        keys={
            "p": "nearly everyone in town supports Harbour Athletic",
            "q": "Harbour Athletic plays the best football in the league",
            "s": "the lease on the old ground runs out next year",
            "r": "the town should fund the stadium expansion",
        },
        text=prose("""
            [A radio phone-in on the plan to expand the Harbour Athletic stadium with money from the
            town budget.]

            Host: Our next caller is Gerry. Gerry, should the town pay for the new stand?

            Gerry: Of course it should. Go to any pub on a Saturday: nearly everyone in this town
            supports Harbour Athletic. Forty thousand people cannot all be wrong, so Harbour plays
            the best football in the league, full stop.

            Host: Some listeners say the money is needed for the swimming pool.

            Gerry: The lease on the old ground runs out next year. If Harbour plays the best
            football in the league and the lease runs out, the town has to fund the expansion.
            Simple as that.
        """),
        props=(
            P(1, "Nearly everyone in town supports Harbour Athletic.", "p"),
            P(2, "If nearly everyone in town supports Harbour Athletic, then Harbour Athletic "
              "plays the best football in the league.", "p -> q"),
            C(3, "Harbour Athletic plays the best football in the league.", "q", (1, 2),
              "modus ponens"),
            P(4, "The lease on the old ground runs out next year.", "s"),
            P(5, "If Harbour Athletic plays the best football in the league and the lease on the "
              "old ground runs out next year, the town should fund the stadium expansion.",
              "(q & s) -> r"),
            C(6, "The town should fund the stadium expansion.", "r", (3, 4, 5),
              "adjunction and modus ponens"),
        ),
        spans=(
            J("Of course it should", 6),
            R("nearly everyone in this town supports Harbour Athletic", 1),
            R("Forty thousand people cannot all be wrong", 2),
            J("Harbour plays the best football in the league", 3),
            R("The lease on the old ground runs out next year", 4),
            R("If Harbour plays the best football in the league and the lease runs out, the town "
              "has to fund the expansion", 5),
        ),
        fallacy="appeal to popularity",
        diagnosis="The caller infers the quality of the team from the number of its supporters. "
        "Premise (2) carries the whole weight and is false: a club can be hugely popular in its "
        "town and still play mediocre football. Premise (5) is doubtful as well, but the "
        "characteristic mistake is the move from popularity to quality.",
        weak=(2,),
    ),
    Case(
        slug="daily-practice",
        title="Daily or never",
        gist="Mia should cancel her Spanish course, since either one practises every day or one "
        "never speaks the language, and she skipped some days.",
        about="whether Mia should cancel her Spanish course",
        keys={
            "p": "Mia practises with the app every day",
            "q": "Mia will learn to speak Spanish",
            "r": "Mia should cancel her course",
        },
        text=prose("""
            Honest advice for Mia, who asked in this group why she still cannot follow a
            conversation after four months. There are only two options with a language: either you
            practise with the app every single day, or you will never speak it. No middle ground,
            no excuses.

            Mia told us herself that she skipped three days last week. So, I'm sorry, but she does
            not practise every day, and that means she will never speak Spanish. At that point the
            course fees are wasted money, and she should cancel her course and take up something
            else.
        """),
        props=(
            P(1, "Mia practises with the app every day or she will never speak Spanish.",
              "p | ~q"),
            P(2, "Mia does not practise with the app every day.", "~p"),
            C(3, "Mia will never speak Spanish.", "~q", (1, 2), "disjunctive syllogism"),
            P(4, "If Mia will never speak Spanish, she should cancel her course.", "~q -> r"),
            C(5, "Mia should cancel her course.", "r", (3, 4), "modus ponens"),
        ),
        spans=(
            R("either you practise with the app every single day, or you will never speak it", 1),
            R("she does not practise every day", 2),
            J("she will never speak Spanish", 3),
            R("At that point the course fees are wasted money", 4),
            J("she should cancel her course", 5),
        ),
        fallacy="false dilemma",
        diagnosis="Premise (1) offers only two options, daily practice or never speaking the "
        "language, and ignores everything in between: people learn with irregular practice, "
        "classes, conversation and time. Once (1) is dropped, nothing follows about Mia's "
        "prospects, let alone that she should cancel her course.",
        weak=(1,),
    ),
)

CASES = dict(zip(CONFIGS, (AAAC01, AAAC02, AAAC03, FOLLY)))
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
