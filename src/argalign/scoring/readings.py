"""The judge's readings: fixed multiple-choice prompts, never optimized.

Each reading asks one question about one text (a request, a response, a thinking's opening and
closing); :mod:`argalign.scoring.judge` reads the answer's probabilities over the option letters
(token logprobs), not a sampled letter. The options are the task labels of
:data:`argalign.core.deliverables.TASKS`. They live with the judge, apart from the modes'
signatures (:mod:`argalign.modes.signatures`), which optimizers rewrite.
"""

from __future__ import annotations

import dspy


class ReadRequest(dspy.Signature):
    """A user sent the request below to an assistant that analyses arguments. The text the
    user wants analysed is replaced by a placeholder. From the request alone, predict what the
    assistant's answer will mainly consist of."""

    request: str = dspy.InputField(desc="The user's request")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")


class ReadResponse(dspy.Signature):
    """Below is what an assistant that analyses arguments did in reply to a user: the steps of
    its reasoning, the tools it called and its final answer (shortened). From this alone,
    infer what the user asked the assistant to produce."""

    response: str = dspy.InputField(desc="What the assistant did")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")


class ReadMethod(dspy.Signature):
    """A user sent the request below to an assistant that analyses arguments. The text the
    user wants analysed is replaced by a placeholder. From the request alone, predict the most
    elaborate analysis the assistant will carry out on its way to the answer."""

    request: str = dspy.InputField(desc="The user's request")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")


class ReadThinking(dspy.Signature):
    """Below are the opening and the closing of an assistant's private reasoning about an
    argument; its middle part is left out. From them alone, predict what the assistant is
    going to give the user as its answer."""

    thinking: str = dspy.InputField(desc="The reasoning's opening and closing")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")
