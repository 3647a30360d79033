"""One command at a time changes a data folder: a second one is refused naming the holder's
process id, a lock its process left behind is taken over, and the lock goes when the block ends."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap

import pytest

from argalign import cli
from argalign.core.errors import ConfigError
from argalign.core.lock import lock_path, locked
from support import subprocess_env

HOLD = textwrap.dedent("""
    import sys, time
    from argalign.core.lock import locked
    with locked(sys.argv[1], "run"):
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """Another process that holds the lock of ``tmp_path / "data"``."""
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(data)], stdout=subprocess.PIPE,
                            env=subprocess_env(tmp_path), text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield data, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("command", [
    ["merge"], ["clean"], ["run", "--no-track", "--no-progress"],
    ["publish", "--org", "o", "--repo-name", "r", "--dry-run", "DRY"],
])
def test_a_second_command_on_a_locked_folder_is_refused_naming_the_holder(holder, caplog, command):
    data, proc = holder
    args = [a.replace("DRY", str(data.parent / "dry")) for a in command]
    with caplog.at_level(logging.ERROR, logger="argalign"):
        assert cli.main([*args, "--data", str(data)]) == cli.EXIT_CONFIG
    assert f"in use by process {proc.pid} (argalign run" in caplog.text
    assert json.loads(lock_path(data).read_text())["pid"] == proc.pid  # the holder's lock stays


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_warning(holder, caplog):
    data, proc = holder
    proc.send_signal(signal.SIGKILL)  # no cleanup: the lock file stays, with its pid
    proc.wait(timeout=10)
    assert json.loads(lock_path(data).read_text())["pid"] == proc.pid
    with caplog.at_level(logging.WARNING, logger="argalign"), locked(data, "merge"):
        assert json.loads(lock_path(data).read_text())["command"] == "merge"
    assert f"taking over the lock of process {proc.pid}" in caplog.text
    assert not lock_path(data).exists()


def test_the_lock_is_released_on_an_exception_and_is_reentrant(tmp_path):
    with pytest.raises(RuntimeError), locked(tmp_path, "pipeline"):
        with locked(tmp_path, "run"):  # the same process: the steps of a pipeline
            assert lock_path(tmp_path).exists()
        assert lock_path(tmp_path).exists()  # still the pipeline's
        raise RuntimeError("boom")
    assert not lock_path(tmp_path).exists()
    proc = subprocess.run([sys.executable, "-c", "import sys; from argalign.core.lock import locked\n"
                           "with locked(sys.argv[1], 'merge'): pass", str(tmp_path)],
                          env=subprocess_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr


def test_the_library_functions_take_the_lock(holder):
    from argalign.stages.clean import clean
    from argalign.stages.merge import merge

    data, proc = holder
    for step in (merge, clean):
        with pytest.raises(ConfigError, match=f"process {proc.pid}"):
            step(data)
