"""Files that are whole or absent: the one atomic write, and the one file digest."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from argalign.core.errors import ConfigError


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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _naming(e, path) from e
    try:
        with naming(path), os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and tmp in (e.filename, e.filename2):
            raise _naming(e, path) from e
        raise


def _naming(error: OSError, path: Path) -> OSError:
    """The same error about ``path``: the user asked for it, not for the temporary file beside it."""
    return type(error)(error.errno, error.strerror or str(error), str(path))


def regular_file(path: str | Path, flag: str) -> Path:
    """``path`` if it is a regular file (symlinks followed); ConfigError otherwise.

    Checked before the file is opened: a FIFO would block the open and ``/dev/zero`` never ends.

    Args:
        flag: the option that names the file, for the message (``--in``).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{flag} {path}: cannot read it: {e.strerror or e}") from e
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"
        raise ConfigError(f"{flag} {path}: not a regular file ({what}); give a JSON Lines file")
    return path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
