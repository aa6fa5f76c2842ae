"""Runs whose process died are marked failed on the next open; live ones are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from rerankctl.store import RunStore
from rerankctl.store.procs import pid_alive, process_start_time


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_pid_alive_cases():
    assert pid_alive(os.getpid())
    assert pid_alive(os.getpid(), process_start_time(os.getpid()))
    assert not pid_alive(os.getpid(), (process_start_time(os.getpid()) or 0) + 1)  # pid reused by us
    assert not pid_alive(_dead_pid())
    assert not pid_alive(None) and not pid_alive(0) and not pid_alive(-5)


def test_zombie_counts_as_dead():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        # Not reaped yet: the pid exists as a zombie until wait().
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        else:
            raise AssertionError("the killed child never became a zombie")
        assert not pid_alive(proc.pid)
    finally:
        proc.wait()


def test_open_marks_dead_runs_failed(tmp_path):
    path = tmp_path / "runs.db"
    with RunStore.open(path) as store:
        dead = store.create_run(kind="sft", pid=_dead_pid())
        mine = store.create_run(kind="sft")
        done = store.create_run(kind="sft", pid=_dead_pid())
        done.finish("completed")
        remote = store.create_run(kind="sft", pid=_dead_pid())
        store._write([("UPDATE runs SET host = 'another-host' WHERE id = ?", (remote.id,))])
        # A pid that is alive but belongs to a process started at another time (pid reuse).
        reused = store.create_run(kind="sft")
        store._write([("UPDATE runs SET proc_start = proc_start + 1 WHERE id = ?", (reused.id,))])

    with RunStore.open(path) as store:
        assert store.get_run(dead.id).status == "failed"
        assert store.get_run(dead.id).error == "process died"
        assert store.get_run(dead.id).ended_at is not None
        assert store.get_run(reused.id).status == "failed"
        assert store.get_run(mine.id).status == "running"  # this test process is alive
        assert store.get_run(done.id).status == "completed"
        assert store.get_run(remote.id).status == "running"  # cannot judge another host's pids
        assert store.reap_dead_runs() == []
    mine.finish()
    reused.finish()


def test_open_without_reap_leaves_runs(tmp_path):
    path = tmp_path / "runs.db"
    with RunStore.open(path) as store:
        dead = store.create_run(kind="sft", pid=_dead_pid())
    with RunStore.open(path, reap=False) as store:
        assert store.get_run(dead.id).status == "running"
        assert store.reap_dead_runs() == [dead.id]
        assert store.get_run(dead.id).status == "failed"
