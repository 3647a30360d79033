"""The test harness itself: a fresh clone without the shared folder is green: the tests about the
real data skip with a reason, the ones that need realistic rows run on the bundled sample."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_tests_needing_the_real_rows_skip_with_a_reason_when_they_are_absent(tmp_path):
    env = {**os.environ, "ARGALIGN_REAL_ROWS": str(tmp_path / "absent.jsonl")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         f"{TESTS / 'test_schema.py'}::test_there_are_six_real_rows", f"{TESTS / 'test_schema.py'}"
         "::test_split_source_partitions_every_real_user_message"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 skipped" in done.stdout and "passed" not in done.stdout
    assert f"the six real rows are not at {tmp_path / 'absent.jsonl'}" in done.stdout


def test_tests_needing_realistic_rows_run_on_the_bundled_sample_without_the_real_rows(tmp_path):
    env = {**os.environ, "ARGALIGN_REAL_ROWS": str(tmp_path / "absent.jsonl")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{TESTS / 'test_invariants.py'}::test_each_code_is_produced_by_a_one_field_mutation",
         f"{TESTS / 'test_validate.py'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" not in done.stdout and " passed" in done.stdout
