"""JSON Lines files: streaming reads, atomic writes, appends that are complete or absent."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from argalign.core.datadir import TREES
from argalign.core.errors import ArgalignError, ConfigError
from argalign.core.files import atomic_write, naming

log = logging.getLogger(__name__)


class JsonlError(ArgalignError, ValueError):
    """A line that is not valid JSON, with its file and line number."""

    def __init__(self, path: Path, lineno: int, problem: str):
        self.path, self.lineno, self.problem = path, lineno, problem
        super().__init__(f"{path}:{lineno}: {problem}")


def iter_jsonl(path: str | Path, *, tolerate_torn: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, object)`` for each non-blank line, one line in memory at a time.

    With ``tolerate_torn`` the last line, if it has no newline and does not parse, is taken for a
    write cut short by a kill (see :class:`Appender`) and skipped with a warning. Any other line
    that does not parse raises JsonlError: a kill cannot tear a line in the middle of a file.
    """
    for lineno, _offset, record in iter_with_offsets(path, tolerate_torn=tolerate_torn):
        yield lineno, record


def iter_with_offsets(path: str | Path, *, tolerate_torn: bool = False
                      ) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(line number, byte offset, object)`` per non-blank line, for :func:`read_at`.

    ``tolerate_torn`` as for :func:`iter_jsonl`.
    """
    path = Path(path)
    with path.open("rb") as fh:
        lineno = 0
        while True:
            offset = fh.tell()
            raw = fh.readline()
            if not raw:
                return
            lineno += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if tolerate_torn and not raw.endswith(b"\n"):  # the last line, cut short
                    log.warning("%s:%d: skipping a torn line (%d bytes)", path, lineno, len(raw))
                    continue
                raise JsonlError(path, lineno, f"not valid JSON: {e}") from e
            yield lineno, offset, record


def _same_path(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # the same inode: a symlink or a hard link too
    return a.resolve() == b.resolve()


def _data_tree(output: Path, data: Path | None) -> Path | None:
    """The tree of ``data`` (or of any data folder prepare made) that ``output`` lies in."""
    output = output.resolve()
    roots = [data.resolve()] if data is not None else []
    # A folder with raw/manifest.json is a data folder, wherever it is.
    roots += [p for p in output.parents if (p / "raw" / "manifest.json").is_file()]
    for root in roots:
        for tree in TREES:
            if output.is_relative_to(root / tree):
                return root / tree
    return None


def refuse_overwrite(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None], flag: str,
                     *, data_trees: bool = False, data: str | Path | None = None) -> None:
    """ConfigError if writing one of ``outputs`` would replace one of ``inputs`` (checked first).

    Args:
        inputs: the files the command reads; None (an option not given) is left out.
        flag: the option that names the outputs, for the message (``--report``).
        data_trees: refuse an output inside the raw, runs, merged or cleaned tree of ``data``
            or of any data folder (one with ``raw/manifest.json``): only the steps write there.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    for output in map(Path, outputs):
        for inp in inputs:
            if _same_path(output, inp):
                raise ConfigError(f"{flag}: writing {output} would overwrite the input {inp}; "
                                  "choose another output")
        tree = _data_tree(output, Path(data) if data is not None else None) if data_trees else None
        if tree is not None:
            raise ConfigError(f"{flag}: {output} lies in the data folder's {tree.name}/ tree, which "
                              "only its own steps write; choose an output outside it")


def refuse_json_array(path: str | Path, flag: str) -> None:
    """ConfigError if ``path`` holds a JSON array rather than JSON Lines, with the command that
    converts it into a new file (never into itself: ``jq ... x > x`` empties x first)."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        fixed = path.stem + ".jsonl" if path.suffix != ".jsonl" else path.stem + ".lines.jsonl"
        raise ConfigError(f"{flag} {path} holds a JSON array, not JSON Lines (one object per "
                          f"line); convert it into a new file, e.g. jq -c '.[]' {path.name} > {fixed}")


def read_at(path: str | Path, offset: int) -> Any:
    """The object on the line that starts at ``offset``."""
    with Path(path).open("rb") as fh:
        fh.seek(offset)
        return json.loads(fh.readline())


def dumps(record: Any) -> str:
    """One JSON line, UTF-8 text; a lone surrogate (not encodable) is kept as its ``\\u`` escape."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record)  # escapes everything non-ASCII, so the line can be written
    return text


class _Nothing(Exception):
    """Raised inside an atomic write to drop it (:func:`write_jsonl_atomic` with no record)."""


def write_jsonl_atomic(path: str | Path, records: Iterable[Any], *, empty: bool = True) -> int:
    """Write all records to a temp file beside ``path`` and move it into place. Returns count.

    ``empty=False``: without a record nothing is written, and a ``path`` left by an earlier
    write is removed (an empty file would pass for an output).
    """
    count = 0
    try:
        with atomic_write(path) as fh:
            for record in records:
                fh.write(dumps(record) + "\n")
                count += 1
            if not count and not empty:
                raise _Nothing
    except _Nothing:
        Path(path).unlink(missing_ok=True)
    return count


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """One JSON document, indented, written atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2)
        fh.write("\n")


def _repair_tail(path: Path, chunk: int = 1 << 16) -> bool:
    """Cut off a torn last line; True if the last line is complete but has no newline."""
    with path.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        start = size
        while start > 0:  # find the start of the last line
            block_start = max(0, start - chunk)
            fh.seek(block_start)
            block = fh.read(start - block_start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                start = block_start + cut + 1
                break
            start = block_start
        fh.seek(start)
        tail = fh.read()
        try:
            json.loads(tail)
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("%s: cutting off a torn last line (%d bytes)", path, len(tail))
            fh.truncate(start)
            return False
        return True


class Appender:
    """Appends whole lines; each line is written with one write call and flushed to disk.

    If the file ends in a torn line (a kill mid-write: bytes after the last newline that do not
    parse), it is cut off first, so a torn line can only ever be the last line of a file and a
    bad line anywhere else is corruption that readers report. A last line that is complete
    JSON but lacks its newline gets the newline.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        # Never through a symbolic link (ELOOP): appends land in this file, not where a link points.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        self._fh = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        needs_newline = False
        if os.fstat(fd).st_size:
            needs_newline = _repair_tail(self.path)
        if needs_newline:
            self._fh.write("\n")

    def write(self, record: Any) -> None:
        with naming(self.path):
            self._fh.write(dumps(record) + "\n")
            self._fh.flush()
        if self._fsync:
            self.sync()

    def sync(self) -> None:
        """Wait until every line written so far is on disk."""
        with naming(self.path):
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
