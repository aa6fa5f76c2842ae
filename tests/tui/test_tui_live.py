"""Live tail: another process appends metrics; the dashboard shows the new step within 2 s.

Also checks that refreshes read incrementally (by row id), never the whole store.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from tui_fixtures import make_app, settle

from rerankctl.tui.model import DashboardModel
from rerankctl.tui.widgets import RunsTable

WRITER = textwrap.dedent(
    """
    import sys, time
    from rerankctl.store import RunStore
    store = RunStore.open(sys.argv[1])
    w = store.create_run(kind="sft", config={"max_steps": 100}, name="live-run")
    w.log_metrics(1, {"loss": 1.0}); w.flush()
    print("ready", flush=True)
    for step in range(2, 8):
        sys.stdin.readline()          # the test says when to write the next step
        w.log_metrics(step, {"loss": 1.0 / step}); w.flush()
        print(step, time.time(), flush=True)
    w.finish()
    """
)


@pytest.mark.asyncio
async def test_new_step_from_another_process_shows_within_2s(demo_store):
    path, _ = demo_store
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        app = make_app(path, refresh_interval=0.25, clock=time.time)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            table = app.query_one(RunsTable)
            assert table.get_row_at(0)[1] == "live-run"  # newest first, and selected
            assert app.view.points == [(1, 1.0)]
            latencies = []
            for step in (2, 3, 4):
                proc.stdin.write("\n")
                proc.stdin.flush()
                written_step, written_at = proc.stdout.readline().split()
                assert int(written_step) == step
                while table.get_row_at(0)[4] != str(step):
                    assert time.time() - float(written_at) < 2.0, f"step {step} not shown within 2 s"
                    await pilot.pause(0.02)
                latencies.append(time.time() - float(written_at))
                # the chart of the selected run follows too
                await settle(pilot)
                assert app.view.points[-1] == (step, 1.0 / step)
            assert max(latencies) < 2.0
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


class CountingStore:
    """Wraps a RunStore and records the reads the model makes."""

    def __init__(self, store):
        self.store = store
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr

        def wrapped(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)

        return wrapped


def test_refresh_reads_only_new_rows(demo_store):
    from rerankctl.gpu.fake import FakeGpuSource
    from rerankctl.store import RunStore

    path, ids = demo_store
    store = RunStore.open(path)
    counting = CountingStore(store)
    model = DashboardModel(counting, FakeGpuSource(1, advance=False), clock=lambda: 0.0)
    run = ids["sft-qwen3-4b-lora"]
    first = model.refresh(run, "loss")
    total = store.max_ids()["metrics"]
    assert model.last_metric_id == total
    assert first.points[-1][0] == 300
    # First paint never scans the metrics table: one index seek per run/key, one series.
    assert not [c for c in counting.calls if c[0] == "metrics_since"]
    assert [c[1] for c in counting.calls if c[0] == "metric_series"] == [(run, "loss")]

    counting.calls.clear()
    idle = model.refresh(run, "loss")
    assert idle.rows_read == 0
    assert {c[0] for c in counting.calls} <= {"max_ids", "list_runs"}

    with RunStore.open(path) as other:
        w = other.create_run(kind="sft", config={}, name="late")
        w.log_metrics(1, {"loss": 0.5, "lr": 1e-5})
        w.finish()
    writer = store.create_run(kind="sft", config={}, name="more")
    writer.finish()
    # Three new rows for the selected run (steps after its last one), straight into SQLite.
    conn_rows = [(run, 310, "loss", 0.25), (run, 320, "loss", 0.24), (run, 320, "lr", 1e-6)]
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO metrics (run_id, step, key, value, time) VALUES (?, ?, ?, ?, 0)", conn_rows
        )
    conn.close()
    counting.calls.clear()
    view = model.refresh(run, "loss")
    assert view.rows_read == 5  # 2 rows of "late" + 3 rows above
    since = [c for c in counting.calls if c[0] == "metrics_since"]
    assert len(since) == 1 and since[0][2]["after_id"] == total
    assert not [c for c in counting.calls if c[0] in ("metric_series", "latest_metrics")]
    assert view.points[-2:] == [(310, 0.25), (320, 0.24)]
    row = next(r for r in view.rows if r.id == run)
    assert (row.step, row.loss) == (320, 0.24)
    assert {r.name for r in view.rows} >= {"late", "more"}
    store.close()
