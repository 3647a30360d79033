"""JSON Lines: streaming reads, torn lines, atomic writes and appends."""

from __future__ import annotations

import errno
import json

import pytest

from argalign.core.errors import ArgalignError
from argalign.core.jsonl import (
    Appender,
    JsonlError,
    iter_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
)


def _files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_iter_jsonl_yields_physical_line_numbers_and_skips_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n  \n[2]\n"three"\n', encoding="utf-8")
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, [2]), (5, "three")]


def test_a_bad_line_raises_with_file_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n', encoding="utf-8")
    with pytest.raises(JsonlError) as info:
        list(iter_jsonl(path))
    assert (info.value.path, info.value.lineno) == (path, 2)
    assert str(info.value).startswith(f"{path}:2:")
    # Callers that catch ValueError or the project's base error both see it.
    assert isinstance(info.value, ValueError) and isinstance(info.value, ArgalignError)


@pytest.mark.parametrize("torn", [b'{"id": "c", "row": {"mess', b"\xff\xfe{}", b"{]"])
def test_only_a_torn_last_line_is_skipped_when_tolerated(tmp_path, torn):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n' + torn)
    assert [r["id"] for _, r in iter_jsonl(path, tolerate_torn=True)] == ["a", "b"]
    with pytest.raises(JsonlError):
        list(iter_jsonl(path))


@pytest.mark.parametrize("bad", [b'{"id": "c", "row": {"mess', b"\xff\xfe{}", b"{]"])
@pytest.mark.parametrize("where", ["middle", "last with newline"])
def test_a_bad_line_that_a_kill_cannot_make_is_an_error_even_when_tolerated(tmp_path, bad, where):
    path = tmp_path / "a.jsonl"
    lines = [b'{"id": "a"}', b'{"id": "b"}']
    lines.insert(1 if where == "middle" else 2, bad)
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(JsonlError, match=f"a.jsonl:{2 if where == 'middle' else 3}"):
        list(iter_jsonl(path, tolerate_torn=True))


def test_appender_cuts_off_a_torn_tail(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b", "ro')
    with Appender(path) as appender:
        appender.write({"id": "c"})
        appender.write({"id": "d"})
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "c"}\n{"id": "d"}\n'
    assert [(n, r["id"]) for n, r in iter_jsonl(path)] == [(1, "a"), (2, "c"), (3, "d")]


@pytest.mark.parametrize("existing", [b'{"id": "a"}', b'{"id": "a"}\n{"id": "b"}',
                                      b'{"x": "' + b"y" * 70000 + b'"}'])
def test_appender_completes_a_whole_last_line_that_lacks_its_newline(tmp_path, existing):
    path = tmp_path / "out.jsonl"
    path.write_bytes(existing)
    with Appender(path, fsync=False) as appender:
        appender.write({"id": "z"})
    assert path.read_bytes() == existing + b'\n{"id": "z"}\n'


def test_appender_cuts_a_torn_tail_that_is_the_whole_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a", "ro')
    with Appender(path, fsync=False) as appender:
        appender.write({"id": "z"})
    assert path.read_bytes() == b'{"id": "z"}\n'


@pytest.mark.parametrize("existing", [None, b"", b'{"id": "a"}\n'])
def test_appender_adds_no_blank_line_to_a_clean_file(tmp_path, existing):
    path = tmp_path / "sub" / "out.jsonl"
    if existing is not None:
        path.parent.mkdir()
        path.write_bytes(existing)
    with Appender(path, fsync=False) as appender:
        appender.write({"id": "z", "text": "ä\nb"})
    assert path.read_bytes() == (existing or b"") + '{"id": "z", "text": "ä\\nb"}\n'.encode()


def test_each_appended_line_is_on_disk_before_the_next_write(tmp_path):
    path = tmp_path / "out.jsonl"
    with Appender(path) as appender:
        appender.write({"n": 1})
        # A reader (or a kill) between writes sees only whole lines.
        assert path.read_bytes() == b'{"n": 1}\n'
        appender.write({"n": 2})
        assert [r["n"] for _, r in iter_jsonl(path)] == [1, 2]


def test_write_jsonl_atomic_writes_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "deep" / "out.jsonl"
    records = [{"id": i, "text": "naïve – “quoted”"} for i in range(3)]
    assert write_jsonl_atomic(path, records) == 3
    assert [r for _, r in iter_jsonl(path)] == records
    assert "naïve" in path.read_text("utf-8"), "non-ASCII is written as UTF-8, not escaped"
    assert write_jsonl_atomic(path, iter([{"id": "only"}])) == 1
    assert [r for _, r in iter_jsonl(path)] == [{"id": "only"}]
    assert _files(path.parent) == ["out.jsonl"]


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl_atomic(path, [{"id": "old"}])

    def records():
        yield {"id": "new"}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(path, records())
    assert [r for _, r in iter_jsonl(path)] == [{"id": "old"}]
    assert _files(tmp_path) == ["out.jsonl"]


def test_write_json_atomic(tmp_path):
    path = tmp_path / "m" / "manifest.json"
    write_json_atomic(path, {"n": 5, "name": "ü"})
    assert json.loads(path.read_text("utf-8")) == {"n": 5, "name": "ü"}
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text("utf-8")) == {"n": 5, "name": "ü"}
    assert _files(path.parent) == ["manifest.json"]


def _disk_full(*args):
    raise OSError(errno.ENOSPC, "No space left on device")  # as the kernel says it: no file


@pytest.mark.parametrize("write", [
    lambda path: write_jsonl_atomic(path, [{"a": 1}]),
    lambda path: write_json_atomic(path, {"a": 1}),
    lambda path: Appender(path).write({"a": 1}),
])
def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, monkeypatch, write):
    monkeypatch.setattr("argalign.core.files.os.fsync", _disk_full)
    monkeypatch.setattr("argalign.core.jsonl.os.fsync", _disk_full)
    path = tmp_path / "out.jsonl"
    with pytest.raises(OSError) as caught:
        write(path)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)


def test_an_appender_never_writes_through_a_symbolic_link(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"a": 1}\n{"torn": ')
    link = tmp_path / "results.jsonl"
    link.symlink_to(outside)
    with pytest.raises(OSError) as caught:
        Appender(link)
    assert caught.value.filename == str(link)
    assert outside.read_text() == '{"a": 1}\n{"torn": '  # not even its torn tail cut off


# --- an error of the temporary file names the file asked for (#21 item 20) ----------------

def _denied_for(name: str):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", name)
    return denied


@pytest.mark.parametrize("step", ["mkstemp", "replace"])
def test_a_failed_atomic_write_names_the_target_not_its_temp_file(tmp_path, monkeypatch, step):
    import os
    import tempfile

    target = tmp_path / "a.jsonl"
    temp = str(tmp_path / ".a.jsonl.w1zb_flp.tmp")
    if step == "mkstemp":
        monkeypatch.setattr(tempfile, "mkstemp", _denied_for(temp))
    else:
        real = os.replace
        monkeypatch.setattr(os, "replace", lambda src, dst: _denied_for(src)() if dst == target
                            else real(src, dst))
    with pytest.raises(PermissionError) as info:
        write_jsonl_atomic(target, [{"a": 1}])
    assert info.value.filename == str(target)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_the_cli_names_the_report_it_could_not_write(tmp_path, sample_rows, monkeypatch, caplog):
    import tempfile

    from argalign.cli import EXIT_CONFIG, main

    original = tmp_path / "o.jsonl"
    write_jsonl_atomic(original, sample_rows[:2])
    monkeypatch.setattr(tempfile, "mkstemp", _denied_for(str(tmp_path / ".r.jsonl.x1y2.tmp")))
    assert main(["validate", "--original", str(original), "--aligned", str(original), "--mode", "B",
                 "--out", str(tmp_path / "r.jsonl")]) == EXIT_CONFIG
    assert f"Permission denied: {tmp_path / 'r.jsonl'}" in caplog.text
    assert ".tmp" not in caplog.text
