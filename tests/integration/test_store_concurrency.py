"""The run store across processes: a fast writer with a tailing reader, kill -9, concurrent opens.

The writer runs in a child process (the script below), as a trainer would; this
test process reads through its own `RunStore`, as the TUI and `runs` commands do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rerankctl.store import RunStore
from rerankctl.store.schema import LATEST_VERSION

# Logs `keys` metrics per step at `rate` rows/s for `seconds` (forever when 0), with
# value = step * 1000 + key index, and an event every 100 steps; prints the run id first.
WRITER = r"""
import json, sys, time
from rerankctl.store import RunStore

path, seconds, rate, keys = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
store = RunStore.open(path)
w = store.create_run(kind="stress", config={"rate": rate, "keys": keys})
print(w.id, flush=True)
steps_per_s = rate / keys
t0 = time.monotonic()
step = 0
while seconds == 0 or time.monotonic() - t0 < seconds:
    wait = t0 + step / steps_per_s - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    w.log_metrics(step, {f"k{j}": step * 1000 + j for j in range(keys)})
    if step % 100 == 0:
        w.log_event(f"step {step}", step=step)
    step += 1
w.finish()
print(json.dumps({"steps": step, "rows": step * keys, "seconds": time.monotonic() - t0}), flush=True)
"""

KEYS = 10


def _start_writer(path: Path, seconds: float, rate: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(seconds), str(rate), str(KEYS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    return proc, run_id


def _check_rows(rows) -> None:
    """Rows arrive in id order, each with the value the writer gave it."""
    ids = [r.id for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for r in rows:
        assert r.value == r.step * 1000 + int(r.key[1:])


def _steps_are_a_prefix(rows) -> int:
    """Committed rows are whole steps 0..n-1 (a batch never splits a step); return n."""
    by_step: dict[int, set[str]] = {}
    for r in rows:
        by_step.setdefault(r.step, set()).add(r.key)
    n = len(by_step)
    assert sorted(by_step) == list(range(n))
    assert all(keys == {f"k{j}" for j in range(KEYS)} for keys in by_step.values())
    return n


def test_reader_tails_a_1000_rows_per_second_writer(tmp_path):
    path = tmp_path / "runs.db"
    reader = RunStore.open(path)
    proc, run_id = _start_writer(path, seconds=3.0, rate=1000)
    seen = []
    after = 0
    polls = 0
    try:
        while True:
            exited = proc.poll() is not None
            batch = reader.metrics_since(after_id=after, run_id=run_id)  # any error fails the test
            polls += 1
            if batch:
                seen.extend(batch)
                after = batch[-1].id
            elif exited:
                break
            time.sleep(0.01)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    report = json.loads(proc.stdout.readline())
    assert report["rows"] >= 2000  # it really wrote at speed (about 3,000 rows in 3 s)
    assert len(seen) == report["rows"]
    _check_rows(seen)
    assert _steps_are_a_prefix(seen) == report["steps"]
    assert reader.get_run(run_id).status == "completed"
    assert polls > 50  # the reader really read while the writer wrote
    assert reader.busy_retries == 0  # WAL: the reader never even had to retry
    reader.close()


def test_kill_9_keeps_committed_rows_and_marks_run_failed(tmp_path):
    path = tmp_path / "runs.db"
    reader = RunStore.open(path)
    proc, run_id = _start_writer(path, seconds=0, rate=1000)
    seen = []
    after = 0
    deadline = time.monotonic() + 60
    while len(seen) < 1000 and time.monotonic() < deadline:
        batch = reader.metrics_since(after_id=after, run_id=run_id)
        if batch:
            seen.extend(batch)
            after = batch[-1].id
        time.sleep(0.01)
    assert len(seen) >= 1000
    os.kill(proc.pid, signal.SIGKILL)  # mid-run, most likely with rows in its buffer
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    reader.metrics_since(after_id=after)  # the old reader still works
    reader.close()
    with RunStore.open(path) as store:
        run = store.get_run(run_id)
        assert (run.status, run.error) == ("failed", "process died")
        rows = store.metrics_since(run_id=run_id)
        assert {r.id for r in seen} <= {r.id for r in rows}  # every row a reader saw is still there
        _check_rows(rows)
        n_steps = _steps_are_a_prefix(rows)
        assert n_steps >= 100
        events = store.events(run_id)
        assert [e.step for e in events] == list(range(0, n_steps, 100))[: len(events)]
        assert store._read("PRAGMA integrity_check") == [("ok",)]


EXITS_WITHOUT_FINISH = r"""
import sys
from rerankctl.store import RunStore
w = RunStore.open(sys.argv[1]).create_run(kind="sft", name="forgetful")
for step in range(3):
    w.log_metrics(step, {"loss": 1.0 / (step + 1)})
"""


def test_process_that_exits_without_finish(tmp_path):
    path = tmp_path / "runs.db"
    subprocess.run([sys.executable, "-c", EXITS_WITHOUT_FINISH, str(path)], check=True, timeout=60)
    with RunStore.open(path, reap=False) as store:
        run = store.get_run("forgetful")
        assert (run.status, run.error) == ("failed", "process exited without finishing the run")
        assert store.metric_series(run.id, "loss") == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]


OPEN_AND_CREATE = r"""
import sys
from rerankctl.store import RunStore
store = RunStore.open(sys.argv[1])
for i in range(5):
    store.create_run(kind="sft", name="same").finish()
"""


def test_concurrent_first_opens_migrate_once(tmp_path):
    path = tmp_path / "new" / "runs.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_CREATE, str(path)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for p in procs:
        p.wait(timeout=120)
        assert p.returncode == 0, p.stderr.read()
    with RunStore.open(path) as store:
        assert store._read("SELECT COUNT(*), COUNT(DISTINCT version) FROM _migrations")[0] == (
            LATEST_VERSION,
            LATEST_VERSION,
        )
        names = sorted(r.name for r in store.list_runs())
        assert names == sorted(["same"] + [f"same-{i}" for i in range(2, 21)])
