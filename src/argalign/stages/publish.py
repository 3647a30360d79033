"""``argalign publish``: the cleaned rows as a Hub dataset; the only module that talks to the Hub.

Input and the folder that is built: see :mod:`argalign.stages.hub_folder` (the clean step's
``summary.json`` is required; parquet files are written in batches, never the whole split in
memory; the message column has the source's six nullable strings, then any other message key).
The folder is loaded back with ``datasets`` and checked before anything is uploaded; then the
repo is created with ``exist_ok`` (private unless ``public``; an existing repo keeps its
visibility) and the folder goes up in one commit, which replaces the repo's parquet files.
Transient Hub errors are retried with backoff. The token comes from ``HF_TOKEN`` (environment
or ``.env``) only when uploading, and every message that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argalign.core.defaults import DEFAULT_MESSAGES_FIELD
from argalign.core.errors import ConfigError, RunError
from argalign.core.lock import locked
from argalign.core.redact import scrub
from argalign.core.results import StageResult
from argalign.stages.hub_folder import PROVENANCE_TYPES, build_folder, verify_folder  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Written into a dry-run folder, so a later dry run clears only a folder it made itself.
DRY_RUN_MARKER = ".argalign-dry-run"


@dataclass(frozen=True)
class PublishSummary(StageResult):
    """What ``publish`` built and uploaded: the repo, where the rows came from, rows per config
    and split, and either the dry run's ``folder`` or the upload's ``commit_url``."""

    repo_id: str
    private: bool
    dry_run: bool
    source: str
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    folder: str | None = None
    commit_url: str | None = None

    @property
    def rows(self) -> int:
        return sum(sum(splits.values()) for splits in self.configs.values())

    def as_dict(self) -> dict[str, Any]:
        where = {"folder": self.folder} if self.dry_run else {"commit_url": self.commit_url}
        return {"repo_id": self.repo_id, "private": self.private, "dry_run": self.dry_run,
                "source": self.source, **where, "configs": self.configs, "rows": self.rows,
                "skipped": self.skipped}


# --- the Hub -----------------------------------------------------------------------------

def hf_token() -> str:
    """``HF_TOKEN`` from the environment (a ``.env`` file is loaded first), or ConfigError."""
    from argalign.models.config import load_env

    load_env()
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise ConfigError("HF_TOKEN is not set: export it or put it in a .env file "
                          "(or use --dry-run DIR to build and check the folder without uploading)")
    return token


def _status(e: BaseException) -> int | None:
    return getattr(getattr(e, "response", None), "status_code", None)


def _is_transient(e: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(e, HfHubHTTPError):
        status = _status(e)
        return status is not None and (status == 429 or status >= 500)
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover - huggingface_hub >= 1.0 depends on httpx
        return False
    return isinstance(e, httpx.TransportError)


def _hub_call(action: Callable[[], Any], what: str, *, retries: int, backoff: float,
              sleep: Callable[[float], None]) -> Any:
    for attempt in range(1, retries + 1):
        try:
            return action()
        except Exception as e:  # noqa: BLE001 - classified below, re-raised scrubbed
            text = scrub(f"{type(e).__name__}: {e}")
            cause = e if text == f"{type(e).__name__}: {e}" else None  # never chain a leak
            if _is_transient(e) and attempt < retries:
                delay = backoff * 2 ** (attempt - 1)
                log.warning("%s: transient Hub error (%s); retry %d/%d in %.0f s",
                            what, text, attempt, retries - 1, delay)
                sleep(delay)
                continue
            if _status(e) in (401, 403):
                raise ConfigError(f"{what}: the Hub refused the token ({text}); it needs write "
                                  "access to the organisation") from cause
            raise RunError(f"{what} failed after {attempt} attempt(s): {text}") from cause
    raise AssertionError("unreachable")  # pragma: no cover


def upload(folder: Path, repo_id: str, *, private: bool, api: Any, retries: int = 5,
           backoff: float = 2.0, sleep: Callable[[float], None] | None = None) -> str | None:
    """Create the dataset repo (exist_ok) and upload the folder in one commit; the commit URL."""
    retry = {"retries": retries, "backoff": backoff, "sleep": sleep or time.sleep}
    _hub_call(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
              f"create {repo_id}", **retry)
    info = _hub_call(lambda: api.upload_folder(
        repo_id=repo_id, repo_type="dataset", folder_path=str(folder), delete_patterns=["*.parquet"],
        commit_message="Publish aligned configs with argalign"), f"upload to {repo_id}", **retry)
    url = getattr(info, "commit_url", None)
    log.info("uploaded %s in one commit%s", repo_id, f": {url}" if url else "")
    return url


def _dry_run_dir(path: str | Path) -> Path:
    """A folder to build into: new, empty, or one an earlier dry run made (which is cleared).

    A dry run marks its folder with :data:`DRY_RUN_MARKER`; a non-empty folder without the
    marker is refused, whatever it holds, so nothing of the user's is overwritten or deleted.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--dry-run {path} is a file; give a new or empty folder")
        children = list(path.iterdir())
        if children and not (path / DRY_RUN_MARKER).is_file():
            names = ", ".join(sorted(c.name for c in children)[:5])
            raise ConfigError(f"--dry-run {path} is not empty and was not made by a dry run "
                              f"(it holds {names}); give a new or empty folder")
        for child in children:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / DRY_RUN_MARKER).write_text("made by argalign publish --dry-run; the folder is cleared "
                                       "by the next dry run into it\n", encoding="utf-8")
    return path


def publish(data: str | Path, *, org: str, repo_name: str, configs: list[str], public: bool = False,
            messages_field: str = DEFAULT_MESSAGES_FIELD, with_provenance: bool = False,
            from_merged: bool = False, dry_run: str | Path | None = None, api: Any = None
            ) -> PublishSummary:
    """Build, verify and (unless ``dry_run``) upload; returns a summary. ``api``: an HfApi-like.

    The data folder is locked meanwhile (:mod:`argalign.core.lock`): no clean rewrites it under us.
    """
    with locked(data, "publish"):
        return _publish(data, org=org, repo_name=repo_name, configs=configs, public=public,
                        messages_field=messages_field, with_provenance=with_provenance,
                        from_merged=from_merged, dry_run=dry_run, api=api)


def _publish(data: str | Path, *, org: str, repo_name: str, configs: list[str], public: bool,
             messages_field: str, with_provenance: bool, from_merged: bool,
             dry_run: str | Path | None, api: Any) -> PublishSummary:
    if not (_NAME.match(org) and _NAME.match(repo_name)):
        raise ConfigError(f"{org}/{repo_name} is not a valid Hub repo id")
    if not _FIELD.match(messages_field):
        raise ConfigError(f"--messages-field {messages_field!r} is not a valid column name")
    if not configs:
        raise ConfigError("--configs is empty")
    repo_id = f"{org}/{repo_name}"
    if from_merged:
        log.warning("publishing from merged results, not from the clean step: only rows with "
                    "outcome 'aligned' are published and the clean step's checks are skipped")
    token = None if dry_run is not None or api is not None else hf_token()  # fail before work
    options = {"messages_field": messages_field, "with_provenance": with_provenance,
               "from_merged": from_merged}
    summary = PublishSummary(repo_id=repo_id, private=not public, dry_run=dry_run is not None,
                             source="merged" if from_merged else "cleaned")
    if dry_run is not None:
        built = build_folder(data, _dry_run_dir(dry_run), repo_id, configs, **options)
        verify_folder(built.folder, built.counts, messages_field)
        log.info("dry run: %s is what would be uploaded to %s", built.folder, repo_id)
        return dataclasses.replace(summary, folder=str(built.folder), configs=built.counts,
                                   skipped=built.skipped)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="argalign-publish-") as tmp:
        built = build_folder(data, Path(tmp), repo_id, configs, **options)
        verify_folder(built.folder, built.counts, messages_field)
        url = upload(built.folder, repo_id, private=not public, api=api)
    return dataclasses.replace(summary, commit_url=url, configs=built.counts,
                               skipped=built.skipped)
