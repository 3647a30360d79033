"""Secrets stay in memory: every text that leaves the process is scrubbed of them first.

Logs, error messages, result files, MLflow params and artifacts, and the dataset card pass
through :func:`scrub`, which replaces the value of every secret in the environment and the
credentials written into a URL (:func:`scrub_urls`: ``user:pass@`` becomes ``***@``, and the
value of a query parameter such as ``api_key=`` or ``token=`` becomes ``***``).
:func:`scrub_log_records` makes every log record pass through it, whichever handler prints it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

# Environment variables whose values are secrets, besides any *_KEY, *_TOKEN, *_SECRET.
SECRET_ENV = ("API_ENDPOINT_KEY", "HF_TOKEN", "OPENAI_API_KEY", "HUGGING_FACE_HUB_TOKEN")
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
REDACTED = "[redacted]"
HIDDEN = "***"

# The user info of a URL with a scheme (``http://user:pass@host``, ``postgresql://u:p@db``) ...
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@'\"<>]+@")
# ... and ``user:pass@host`` without one (a client's connection error quotes only the host part).
_BARE_USERINFO = re.compile(r"(?<![^\s'\"(\[<,;=])[^\s/?#@:'\"<>]+:[^\s/?#@'\"<>]+@(?=[\w\[])")
# A query parameter that holds a credential: ``?api_key=``, ``&token=``, ``&client_secret=``.
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[\w.]*[_-])?(?:api[_-]?key|key|token|secret|password|passwd|pwd|sig|signature"
    r"|auth|credentials?)=)[^&#\s'\"<>]+")


def secret_values() -> list[str]:
    """Values of the environment's secrets (long enough to be worth hiding)."""
    values = {os.environ[name] for name in os.environ
              if (name in SECRET_ENV or _SECRET_NAME.search(name)) and len(os.environ[name]) >= 6}
    return sorted(values, key=len, reverse=True)


def scrub_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden: ``user:pass@`` as ``***@``, the
    value of a credential query parameter (``api_key``, ``token``, ``password``, ...) as ``***``."""
    if "@" in text:
        text = _BARE_USERINFO.sub(HIDDEN + "@", _URL_USERINFO.sub(r"\1" + HIDDEN + "@", text))
    if "=" in text:
        text = _SECRET_PARAM.sub(r"\1" + HIDDEN, text)
    return text


def scrub(value: Any) -> Any:
    """Replace every secret value inside strings, dicts and lists with ``[redacted]``, and hide
    the credentials of every URL in them (:func:`scrub_urls`)."""
    if not value:  # None, "", [], {}: nothing to look through (and no environment scan)
        return value
    secrets = secret_values()

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            for secret in secrets:
                v = v.replace(secret, REDACTED)
            return scrub_urls(v)
        if isinstance(v, Mapping):
            return {clean(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return clean(value)


def scrub_log_records() -> None:
    """Scrub every log record as it is made, so no handler (ours, LiteLLM's or MLflow's own)
    can print a secret: the message and a traceback's text. Installed once per process."""
    make = logging.getLogRecordFactory()
    if getattr(make, "scrubs", False):
        return

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg, record.args = scrub(record.getMessage()), ()
        except Exception:  # noqa: BLE001 - a bad format string: the handler reports it
            return record
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return record

    scrubbed.scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbed)
