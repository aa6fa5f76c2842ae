"""One live training per output directory: refused while held, taken over when stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rerankctl.errors import UsageError
from rerankctl.train.output_lock import LOCK_NAME, OutputLock


def _holder_process(folder):
    """A child process that takes the lock, says so, and waits on stdin."""
    code = textwrap.dedent(
        f"""
        import sys
        from rerankctl.train.output_lock import OutputLock
        lock = OutputLock.acquire({str(folder)!r})
        print("locked", flush=True)
        sys.stdin.read()
        lock.release()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_is_refused_naming_the_pid(tmp_path):
    proc = _holder_process(tmp_path)
    try:
        with pytest.raises(UsageError, match=rf"in use by a running training \(pid {proc.pid}\)") as exc:
            OutputLock.acquire(tmp_path)
        assert exc.value.exit_code == 2
    finally:
        proc.communicate("", timeout=30)
    assert not (tmp_path / LOCK_NAME).exists()  # released cleanly
    with OutputLock.acquire(tmp_path) as lock:  # free again
        assert lock.stale_message() is None


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    proc = _holder_process(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()  # SIGKILL: no clean-up ran
    lock = OutputLock.acquire(tmp_path)
    try:
        assert lock.previous["pid"] == proc.pid
        assert f"pid {proc.pid}" in lock.stale_message()
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_lock_file_naming_a_dead_pid_without_flock_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 7, "host": "x"}))
    with OutputLock.acquire(tmp_path) as lock:
        assert lock.previous["pid"] == 2**22 + 7
