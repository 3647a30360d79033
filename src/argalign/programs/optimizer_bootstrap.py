"""The ``bootstrap`` optimizer: few-shot demos taken from the best-scoring rewrites of the
training examples."""

from __future__ import annotations

import logging

import dspy

from argalign.core.records import Outcome
from argalign.programs.gold import as_demo, load_gold
from argalign.programs.optimizer import Optimizer

log = logging.getLogger(__name__)


class Bootstrap(Optimizer):
    """Few-shot demos from the best-scoring rewrites of the training examples.

    The zero-shot program aligns each training example once; every rewrite that passes the
    gate is scored, and so is its original, and the rewrite's accepted LM calls (the last call
    of each predictor) make one demo set. Rewrites rank by how much they raised the score over
    the original (then by score): a vague request made explicit teaches more than a rewrite
    of a request that was clear already. Candidate k takes the k-th best ``max_demos`` demo
    sets; each candidate is scored on the valset.
    """

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        spec = self.spec
        # Seeded with gold, the teacher that aligns the training rows holds the gold demos, and
        # every candidate keeps them ahead of its rewrites: gold first, then the best by gain.
        teacher = self.starting_program(student)
        ranked = self.rewrites(trainset, teacher)
        self.notes["train_rewrites"] = [{"id": i, "gain": round(g, 4), "score": round(s, 4)}
                                        for (g, s), i, _ in ranked]
        for k in range(spec.candidates):
            chosen = ranked[k * spec.max_demos:(k + 1) * spec.max_demos]
            if not chosen:
                log.info("bootstrap: %d scored rewrites, no demos left for candidate %d",
                         len(ranked), k + 1)
                break
            candidate = teacher.deepcopy()
            for name, predictor in candidate.named_predictors():
                predictor.demos = [*predictor.demos,
                                   *(demos[name] for _, _, demos in chosen if name in demos)]
            log.info("bootstrap: candidate %d with demos from %s", k + 1,
                     ", ".join(i for _, i, _ in chosen))
            self.score_on_valset(candidate, valset)

    def rewrites(self, trainset: list[dspy.Example], teacher: dspy.Module
                 ) -> list[tuple[tuple[float, float], str, dict[str, dspy.Example]]]:
        """((gain, score), id, {predictor name: demo}) of each passing training rewrite by the
        teacher, best first; the gain is the score over the original's (0 when the metric has
        no ``scorer`` to score an original with). A training row that a gold demo rewrites is
        left out: its demo is there already."""
        names = {id(p): name for name, p in teacher.named_predictors()}
        scorer = getattr(self.metric, "scorer", None)
        gold_rows = {entry.row_id for entry in load_gold(self.spec.mode)}
        out = []
        for example in trainset:
            if example.row.get("source_id") in gold_rows:
                continue
            with dspy.context(trace=[]):
                try:
                    prediction = teacher(row=example.row)
                except Exception as e:  # noqa: BLE001 - a failed rewrite is no demo
                    log.info("bootstrap: %s gave no rewrite (%s)", example.id, e)
                    continue
                trace = list(dspy.settings.trace)
            result = self.metric(example, prediction)
            if result.outcome is not Outcome.ALIGNED:
                continue
            before = 0.0
            if scorer is not None:
                with dspy.context(trace=None):
                    before = scorer.score(example.row).score
            demos: dict[str, dspy.Example] = {}
            for predictor, inputs, outputs in trace:  # the last call of each is the accepted one
                name = names.get(id(predictor))
                if name is not None:
                    demos[name] = as_demo(inputs, outputs.toDict(), f"train/{example.id}")
            score = float(result.score)
            out.append(((score - before, score), example.id, demos))
        out.sort(key=lambda item: (-item[0][0], -item[0][1]))
        return out
