"""Files that are whole or absent: the one atomic write, and the one file digest."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; output files get the usual mode.
FILE_MODE = 0o666 & ~_umask()


# A write the disk refused (full, over quota, file too large): the data step failed, not the
# configuration. The kernel's error names no file; :func:`naming` adds it.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Re-raise a refused write (:data:`WRITE_ERRNOS`) inside the block with ``path`` as its file."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno in WRITE_ERRNOS:
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, fsync: bool = True) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place when the block ends.

    If the block raises (or the process dies), ``path`` keeps its old content and the
    temporary file is removed: a reader sees the old file or the new one, never a part.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with naming(path), os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
