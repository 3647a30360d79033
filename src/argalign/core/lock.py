"""One command at a time changes a data folder: ``run``, ``merge``, ``clean``, ``publish`` and
``pipeline`` hold its lock, ``<data>/.argalign.core.lock``.

Two runs at once on one folder would align every example twice and write each id twice; a
merge beside a run would read half-written results. The lock file holds the holder's process
id, command and start time, and the holder keeps an exclusive ``fcntl.flock`` on it: the
kernel drops that lock when the process ends, however it ends (``kill -9`` too), so a lock
file whose flock is free was left by a process that is gone and is taken over, with a
warning. A second command refuses with the holder's process id (ConfigError: exit 2). The
holder removes the file when it is done, also when it fails. Within one process the lock is
re-entrant (``pipeline`` holds it around the steps, which take it again).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from argalign.core.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_NAME = ".argalign.core.lock"

_held: dict[str, int] = {}  # lock file -> how many blocks of this process hold it
_guard = threading.Lock()


def lock_path(data: str | Path) -> Path:
    return Path(data) / LOCK_NAME


@contextmanager
def locked(data: str | Path, command: str) -> Iterator[None]:
    """Hold the data folder's lock for the block; ConfigError naming the holder if it is taken.

    A folder that does not exist is not locked: there is nothing in it to protect, and the
    command reports the missing folder itself.
    """
    path = lock_path(data)
    if not path.parent.is_dir():
        yield
        return
    key = os.path.realpath(path)
    with _guard:
        if key in _held:
            _held[key] += 1
            fd = None
        else:
            fd = _acquire(path, command)
            _held[key] = 1
    try:
        yield
    finally:
        with _guard:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
                if fd is not None:
                    _release(path, fd)


def _acquire(path: Path, command: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ConfigError(
                f"{path.parent} is in use by process {holder.get('pid', '(unknown)')} (argalign "
                f"{holder.get('command', '?')}, since {holder.get('since', '?')}): wait for it to "
                f"end, or stop it; one command at a time changes a data folder (lock: {path})"
            ) from None
        try:  # the holder before us may have removed the file between our open and our flock
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    stale = _holder(fd)
    if stale:
        log.warning("%s: taking over the lock of process %s (argalign %s, since %s), which is "
                    "gone", path, stale.get("pid"), stale.get("command"), stale.get("since"))
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode(), 0)
    return fd


def _holder(fd: int) -> dict:
    """What a lock file says of its holder (``{}`` if empty or unreadable)."""
    try:
        found = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _release(path: Path, fd: int) -> None:
    try:
        path.unlink(missing_ok=True)  # while still holding it: a waiter then sees a removed file
    finally:
        os.close(fd)
