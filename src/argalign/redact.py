"""Secrets stay in memory: every text that leaves the process is scrubbed of them first.

Logs, error messages, result files, MLflow params and artifacts, and the dataset card pass
through :func:`scrub`, which replaces the value of every secret in the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

# Environment variables whose values are secrets, besides any *_KEY, *_TOKEN, *_SECRET.
SECRET_ENV = ("API_ENDPOINT_KEY", "HF_TOKEN", "OPENAI_API_KEY", "HUGGING_FACE_HUB_TOKEN")
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
REDACTED = "[redacted]"


def secret_values() -> list[str]:
    """Values of the environment's secrets (long enough to be worth hiding)."""
    values = {os.environ[name] for name in os.environ
              if (name in SECRET_ENV or _SECRET_NAME.search(name)) and len(os.environ[name]) >= 6}
    return sorted(values, key=len, reverse=True)


def scrub(value: Any) -> Any:
    """Replace every secret value inside strings, dicts and lists with ``[redacted]``."""
    if not value:  # None, "", [], {}: nothing to look through (and no environment scan)
        return value
    secrets = secret_values()
    if not secrets:
        return value

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            for secret in secrets:
                v = v.replace(secret, REDACTED)
            return v
        if isinstance(v, Mapping):
            return {clean(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return clean(value)
