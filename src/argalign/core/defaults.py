"""The defaults that the CLI shows and the library falls back on, each defined once.

A command's ``--help`` and the function it calls take the same value from here, so they cannot
drift apart, and building the parser imports no library code for them. This module imports
nothing of argalign; the registries these values name (modes, comparisons, thinking scopes)
check them where they are used.
"""

from __future__ import annotations

# The modes of a run that names none (``run``/``pipeline --modes``; see argalign.modes.MODES).
# A registered mode joins default runs only when it is added here: joining changes the default
# run's mix and its name (run-AB-...), so the runs made before it would no longer resume.
DEFAULT_MODES = ("A", "B")
# The data folder every stage reads and writes (``--data``), and the one of ``--debug``.
DEFAULT_DATA = "data"
DEFAULT_DEBUG_DATA = "data_debug"
# How much of a thinking is aligned: the blocks before the answer (``--thinking``; see
# argalign.modes.THINKING_SCOPES).
DEFAULT_THINKING = "blocks"
# The metric comparison (``--comparison``; see argalign.scoring.metrics.COMPARISONS).
DEFAULT_COMPARISON = "hybrid"
# The acceptance gate's margin (``run``/``pipeline --accept-margin``): how much better than its
# original a rewrite must score to be kept. The metric's repeatability: the same conversation
# scored twice differed by at most 0.0007 with ``hybrid``; 0.01 is well above it, so a kept
# rewrite is better by more than the judge's noise.
DEFAULT_ACCEPT_MARGIN = 0.01
# Examples of a run traced in MLflow, a deterministic sample (``--trace-sample``; 0: none).
DEFAULT_TRACE_SAMPLE = 100
# The optimizer of ``optimize`` (``--optimizer``; see argalign.programs.optimizers.OPTIMIZERS).
DEFAULT_OPTIMIZER = "bootstrap"
# Fresh samples after a rewrite the acceptance gate refused (``run``/``pipeline --accept-retries``).
DEFAULT_ACCEPT_RETRIES = 2
# The message column of a published dataset (``publish --messages-field``).
DEFAULT_MESSAGES_FIELD = "messages"
