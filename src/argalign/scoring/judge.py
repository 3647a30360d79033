"""The judge's multiple-choice readings, scored from token probabilities, not from samples.

A reading shows the judge one text (a request, a response, a thinking's frame) and asks which
of the task labels of :data:`argalign.core.deliverables.TASKS` it points to, or (the method
reading of a request) how much analysis it calls for (:data:`METHOD_OPTIONS`). The judge answers with
one token; its ``top_logprobs`` give a probability for every option letter. So a reading is a
distribution, not a sampled guess: at temperature 0 the same text gets the same distribution,
and a small model's uncertainty shows as spread instead of as noise.

Small models prefer some letters whatever they read. Contextual calibration removes that
prior: the same question is asked once about an empty text, and each option's probability is
divided by its probability there (then renormalised).

Readings are cached in memory by (model, prompt): at temperature 0 they are deterministic,
and the original and the aligned row share most of them (the response is byte-identical).
"""

from __future__ import annotations

import logging
import math
import string
import threading
from collections import OrderedDict
from typing import Any

import dspy

from argalign.core.deliverables import TASKS
from argalign.core.errors import ArgalignError
from argalign.scoring.readings import ReadMethod, ReadRequest, ReadResponse, ReadThinking

LETTERS = string.ascii_uppercase
TOP_LOGPROBS = 20
EMPTY_TEXT = "(empty)"
# Below this share of probability on option letters, the judge did not answer the question.
MIN_LETTER_MASS = 0.5

# The options of the method reading: how far the assistant will go before it answers. The
# keys are the method labels of argalign.core.deliverables.METHODS, joined with "none" (it answers
# directly) and with gist and paraphrase as one light option.
METHOD_OPTIONS: dict[str, str] = {
    "none": "no analysis beyond the answer itself: it answers directly",
    "gist": "a short gist or paraphrase of the text",
    "argument_map": "an informal argument map or inference graph",
    "reconstruction": "the argument reconstructed as numbered premises and conclusions",
    "formalization": "logical formalizations of the premises and conclusions",
    "annotation": "the text annotated with its reasons and conjectures",
    "smt": "SMT-LIB code that checks the inferences",
}

# kind -> (fixed prompt, options). Request, response and thinking readings choose a task label;
# the method reading chooses how much analysis the request calls for.
READINGS: dict[str, tuple[type[dspy.Signature], dict[str, str]]] = {
    "request": (ReadRequest, TASKS),
    "response": (ReadResponse, TASKS),
    "thinking": (ReadThinking, TASKS),
    "method": (ReadMethod, METHOD_OPTIONS),
}


class _OneTokenReplies(logging.Filter):
    """Drops DSPy's "response was truncated" warning for the judge's own one-token calls."""

    active = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(self.active, "on", False) and "truncated" in record.getMessage())


_FILTER = _OneTokenReplies()
logging.getLogger("dspy.clients.lm").addFilter(_FILTER)


class JudgeError(ArgalignError):
    """The judge model cannot give a reading (no logprobs, no answer)."""


def render(signature: type[dspy.Signature], text: str, options: dict[str, str]) -> str:
    """The prompt of one reading: instruction and lettered options, then the text.

    The part that is the same for every reading of a kind comes first, so that a server with a
    prompt cache (llama.cpp, vLLM) reads it once and only the text after it is new.
    """
    (name, field), = signature.input_fields.items()
    label = field.json_schema_extra.get("desc", name) if field.json_schema_extra else name
    lettered = "\n".join(f"{LETTERS[i]}) {description}"
                         for i, description in enumerate(options.values()))
    return (f"{signature.instructions}\n\nOptions:\n{lettered}\n\n{label}:\n<<<\n"
            f"{text.strip() or EMPTY_TEXT}\n>>>\n\nAnswer with the letter of one option only.")


def letter_distribution(output: Any, n: int) -> tuple[list[float], float]:
    """Probabilities of the first ``n`` letters at the first output token, renormalised, and the
    share of probability they had before renormalising."""
    logprobs = output.get("logprobs") if isinstance(output, dict) else None
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content:
        raise JudgeError("the judge model returned no logprobs: use an endpoint that returns "
                         "them (llama.cpp, vLLM, OpenAI) or --comparison structural")
    mass = [0.0] * n
    for top in content[0].get("top_logprobs") or ():
        token = str(top.get("token", "")).strip()
        if len(token) == 1 and token in LETTERS[:n]:
            mass[LETTERS.index(token)] += math.exp(float(top["logprob"]))
    total = sum(mass)
    if total <= 0:
        return [1.0 / n] * n, 0.0
    return [m / total for m in mass], total


class Judge:
    """Multiple-choice readings over fixed options, from one LM's token probabilities.

    Args:
        lm: the judge model; ``None`` uses ``dspy.settings.lm`` at call time.
        calibrate: divide by the reading of an empty text (contextual calibration).
        cache_size: readings kept in memory (``0`` keeps none).
    """

    def __init__(self, lm: dspy.BaseLM | None = None, *, calibrate: bool = True,
                 cache_size: int = 4096):
        self.lm = lm
        self.calibrate = calibrate
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[tuple[float, ...], float]] = OrderedDict()
        self._lock = threading.Lock()
        self.calls = 0

    def _lm(self) -> dspy.BaseLM:
        lm = self.lm if self.lm is not None else dspy.settings.lm
        if lm is None:
            raise JudgeError("no judge model: pass one or configure dspy.settings.lm")
        return lm

    def _ask(self, prompt: str, n: int) -> tuple[tuple[float, ...], float]:
        lm = self._lm()
        key = (str(getattr(lm, "model", "")), prompt)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        _FILTER.active.on = True
        try:
            outputs = lm(prompt, max_tokens=1, temperature=0.0, logprobs=True,
                         top_logprobs=TOP_LOGPROBS)
        finally:
            _FILTER.active.on = False
        with self._lock:
            self.calls += 1
        probs, mass = letter_distribution(outputs[0] if outputs else None, n)
        value = (tuple(probs), mass)
        if self.cache_size:
            with self._lock:
                self._cache[key] = value
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return value

    def read(self, kind: str, text: str) -> dict[str, float]:
        """P(option | text) for a reading of :data:`READINGS` (``request``, ``response``,
        ``thinking``: over the task labels; ``method``: over :data:`METHOD_OPTIONS`)."""
        signature, options = READINGS[kind]
        probs, mass = self._ask(render(signature, text, options), len(options))
        if mass < MIN_LETTER_MASS:
            raise JudgeError(f"the judge put only {mass:.0%} of its probability on the option "
                             f"letters of a {kind} reading; it does not follow the format")
        if self.calibrate:
            prior, _ = self._ask(render(signature, "", options), len(options))
            probs = tuple(p / max(q, 1e-6) for p, q in zip(probs, prior))
            total = sum(probs)
            probs = tuple(p / total for p in probs)
        return dict(zip(options, probs))
