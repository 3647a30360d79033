"""Write the bundled oracle file: pairs of versions of sample conversations, labelled by us.

Each pair changes one thing about how well a conversation's request, thinking and answer fit
together, and we labelled which version is better aligned, with the reason. Four kinds:

- ``complete``: the request names everything the answer delivers vs. only its main task;
- ``explicit``: a vague request vs. an explicit request for what the answer does (the better
  one is ``b`` here, so that a scorer that favours ``a`` gains nothing);
- ``plan``: the thinking as it is vs. its opening without the step list its middle follows;
- ``preamble``: a thinking that opens with a generic line vs. one that opens by stating the
  task the answer carries out (``b`` is better).

The pairs are built from the bundled sample, so the file is reproducible:

    python scripts/make_oracle.py          # writes src/argalign/data/oracle/pairs.jsonl
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from argalign.core.deliverables import TASKS, asked
from argalign.core.schema import split_source
from argalign.core.thinking import split_thinking
from argalign.scoring.checks import instructions
from argalign.scoring.comparison import turn_views

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "argalign" / "data" / "sample"
OUT = ROOT / "src" / "argalign" / "data" / "oracle" / "pairs.jsonl"
BY = "argalign developers"
PER_KIND = 6

# Requests for the main task alone, one per task: what a request that names only the task says.
TASK_ONLY = {
    "reconstruction": "Reconstruct the argument.",
    "rhetoric": "Look at the premises of this argument.",
    "annotation": "Annotate the text.",
    "smt": "Write SMT-LIB code for this argument.",
    "argument_map": "Map the argument.",
}
VAGUE = "What do you make of this text?"
GENERIC_PREAMBLE = "Let me think about this."
STATES_TASK = {
    "reconstruction": "The user wants the argument reconstructed in Argdown standard form, so "
                      "I build the premises and conclusions step by step.",
    "annotation": "The user wants the text annotated with its reasons and conjectures, so I "
                  "reconstruct the argument first and then mark the passages.",
    "smt": "The user wants SMT-LIB code that checks each inference, so I reconstruct and "
           "formalize the argument before I write the program.",
    "verdict": "The user asks a question about the argument, so I reconstruct it first and "
               "answer from the reconstruction.",
    "argument_map": "The user wants an informal argument map, so I reconstruct the argument "
                    "and then draw its support relations.",
    "rhetoric": "The user wants the premises' tone and persuasion profiled, so I reconstruct "
                "the argument and pass its premises to the analysis tool.",
}


def rows() -> list[dict]:
    out = []
    for path in sorted(SAMPLE.glob("*/*.jsonl")):
        out += [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return out


def first_user(row: dict) -> int:
    return next(i for i, m in enumerate(row["messages"]) if m["role"] == "user")


def first_thinking(row: dict) -> int | None:
    return next((i for i, m in enumerate(row["messages"]) if m.get("thinking")), None)


def with_request(row: dict, text: str) -> dict:
    new = copy.deepcopy(row)
    i = first_user(row)
    _, source, _ = split_source(row["messages"][i]["content"])
    new["messages"][i]["content"] = f"{text}\n\nThe text:\n{source}"
    return new


def with_opening(row: dict, opening: str | None = None, preamble: str | None = None) -> dict:
    new = copy.deepcopy(row)
    i = first_thinking(row)
    parts = split_thinking(row["messages"][i]["thinking"])
    new["messages"][i]["thinking"] = parts.join(opening=opening, preamble=preamble)
    return new


def pairs() -> list[dict]:
    out: list[dict] = []
    counts = dict.fromkeys(("complete", "explicit", "plan", "preamble"), 0)
    explicit_by_task: dict[str, dict] = {}
    for row in rows():
        if split_source(row["messages"][first_user(row)]["content"] or "") is None:
            continue
        view = turn_views(row)[0]
        task = view.delivered.task
        named = asked(instructions(row["messages"][first_user(row)]["content"]))
        if task in named:
            explicit_by_task.setdefault(task, row)
    for row in rows():
        if split_source(row["messages"][first_user(row)]["content"] or "") is None:
            continue
        view = turn_views(row)[0]
        task, delivered = view.delivered.task, view.delivered.deliverables
        named = asked(instructions(row["messages"][first_user(row)]["content"]))
        sid = row["source_id"]
        if counts["complete"] < PER_KIND and task in TASK_ONLY and task in named \
                and len(delivered & named) >= 3:
            counts["complete"] += 1
            out.append(pair(f"complete/{sid}", row, with_request(row, TASK_ONLY[task]), "a",
                            "Both ask for the main task; only a also asks for the further "
                            f"things the answer delivers ({', '.join(sorted(delivered - {task}))})."))
        if counts["explicit"] < PER_KIND and task in explicit_by_task and not (named & set(TASKS)):
            donor = explicit_by_task[task]
            text = instructions(donor["messages"][first_user(donor)]["content"])
            counts["explicit"] += 1
            out.append(pair(f"explicit/{sid}", with_request(row, VAGUE), with_request(row, text),
                            "b", f"A vague request is answered with {TASKS[task]}; b asks for it."))
        i = first_thinking(row)
        if i is None:
            continue
        parts = split_thinking(row["messages"][i]["thinking"])
        if counts["plan"] < PER_KIND and parts.plan and task and sid.endswith(("0", "3", "6")):
            counts["plan"] += 1
            out.append(pair(f"plan/{sid}", row, with_opening(
                row, opening=f"{parts.preamble} I will work through the steps below."), "a",
                "b's opening no longer lists the steps its middle works through."))
        if counts["preamble"] < PER_KIND and parts.plan and task in STATES_TASK \
                and sid.endswith(("1", "4", "8")):
            counts["preamble"] += 1
            out.append(pair(f"preamble/{sid}", with_opening(row, preamble=GENERIC_PREAMBLE),
                            with_opening(row, preamble=STATES_TASK[task]), "b",
                            "b's thinking starts from what the user asked for and why the plan "
                            "serves it; a's starts nowhere."))
    return out


def pair(pair_id: str, a: dict, b: dict, better: str, why: str) -> dict:
    return {"id": pair_id, "a": a, "b": b, "better": better, "by": BY, "why": why}


def main() -> None:
    found = pairs()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in found), "utf-8")
    kinds = sorted({p["id"].split("/")[0] for p in found})
    print(f"{len(found)} pairs ({', '.join(kinds)}) -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
