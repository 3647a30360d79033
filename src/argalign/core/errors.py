"""Errors: configuration mistakes are kept apart from bad input rows and failed runs."""

from __future__ import annotations


class ArgalignError(Exception):
    """Base class of every error argalign raises on purpose."""


class ConfigError(ArgalignError):
    """The user configured something wrong (a flag, a YAML file, a missing model)."""


class RowError(ArgalignError):
    """One input row is malformed. Carries the row id and a machine-readable code."""

    def __init__(self, row_id: str, code: str, problem: str, message_index: int | None = None):
        self.row_id = row_id
        self.code = code
        self.problem = problem
        self.message_index = message_index
        where = f" (message {message_index})" if message_index is not None else ""
        super().__init__(f"row {row_id}{where}: {problem} [{code}]")


class RunError(ArgalignError):
    """A run could not go on (refused resume, too many errors, a dead endpoint)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the CLI's handler and handled as Ctrl-C is (the
    run's conversations in flight dropped, its MLflow run ended KILLED, its lock released)."""
