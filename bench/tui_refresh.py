"""Benchmark: dashboard refresh cost and first paint on a large run store.

Builds (once; reused with --store) a store of --runs runs x --rows-per-run metric rows
(default 100 x 100,000 = 10^7 rows, 4 keys per step), then measures:

* first paint: wall time from constructing `RerankctlApp` to the first data drawn, headless at
  80x24 (``App.run_test``), and the CPU of the model's first load;
* refresh CPU (``time.process_time``): `DashboardModel.refresh` with nothing new, and with a
  writer appending 40 rows (10 steps x 4 keys) before each refresh; compared with a naive full
  reload (latest values of every run + the selected series, re-read each time);
* the app end to end: a writer process appends 10 steps/s while the headless app refreshes every
  0.5 s; process CPU / refreshes (includes Textual's rendering and idle work: an upper bound).

    python bench/tui_refresh.py [--runs 100] [--rows-per-run 100000] [--store /tmp/bench-runs.db]

Prints a Markdown snippet. Runs are pinned to this process's pid so the store keeps them
"running" while the benchmark lasts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

KEYS = ("loss", "lr", "grad_norm", "eval/ndcg@10")
RUNNING = 5  # runs left "running" (re-listed each refresh; ETA computed)


def build(path: Path, runs: int, rows_per_run: int) -> None:
    """Create the runs through RunStore; bulk-insert metrics with executemany (10^7 rows via the
    buffered writer would take minutes and measure the writer, not the dashboard)."""
    from rerankctl.store import RunStore

    steps = rows_per_run // len(KEYS)
    t = time.perf_counter()
    ids = []
    with RunStore.open(path) as store:
        for i in range(runs):
            w = store.create_run(kind="sft", config={"max_steps": steps * 2}, name=f"bench-{i:03d}")
            ids.append(w.id)
            w.finish("completed")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    for n, run_id in enumerate(ids):
        start = 1_700_000_000.0 + n * 100_000
        rows = (
            (run_id, s, k, 1.0 / (1 + s) + j, start + s * 0.5)
            for s in range(steps)
            for j, k in enumerate(KEYS)
        )
        with conn:
            conn.executemany(
                "INSERT INTO metrics (run_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)", rows
            )
            conn.execute("UPDATE runs SET started_at = ? WHERE id = ?", (start, run_id))
    conn.close()
    print(f"built {runs} runs x {rows_per_run} rows in {time.perf_counter() - t:.0f} s", file=sys.stderr)


def pin_running(path: Path) -> list[str]:
    """Mark the newest RUNNING runs as running and owned by this process."""
    conn = sqlite3.connect(path)
    with conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT ?", (RUNNING,))]
        conn.execute("UPDATE runs SET status = 'completed', ended_at = started_at + 1000")
        for run_id in ids:
            conn.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, pid = ?, proc_start = NULL WHERE id = ?",
                (os.getpid(), run_id),
            )
    conn.close()
    return ids


def cpu_ms(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        out.append((time.process_time() - t) * 1000)
    return out


def model_figures(path: Path, selected: str) -> dict:
    from rerankctl.gpu.fake import FakeGpuSource
    from rerankctl.store import RunStore
    from rerankctl.tui.model import DashboardModel

    store = RunStore.open(path)
    model = DashboardModel(store, FakeGpuSource(2))
    t = time.process_time()
    w0 = time.perf_counter()
    model.refresh(selected, "loss")
    first_cpu = (time.process_time() - t) * 1000
    first_wall = (time.perf_counter() - w0) * 1000
    idle = cpu_ms(lambda: model.refresh(selected, "loss"), 50)

    conn = sqlite3.connect(path)
    last = conn.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", (selected,)).fetchone()[0]
    state = {"step": last}

    def append_then_refresh() -> None:
        rows = []
        for _ in range(10):
            state["step"] += 1
            rows += [(selected, state["step"], k, 0.1, time.time()) for k in KEYS]
        with conn:
            conn.executemany(
                "INSERT INTO metrics (run_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)", rows
            )

    busy = []
    for _ in range(30):
        append_then_refresh()  # not timed: the writer is another process in real life
        t = time.process_time()
        view = model.refresh(selected, "loss")
        busy.append((time.process_time() - t) * 1000)
        assert view.rows_read == 40 and view.points[-1][0] == state["step"]
    conn.close()

    def naive() -> None:
        for run_id in model.runs:
            store.latest_metrics(run_id)
        store.metric_series(selected, "loss")

    naive_ms = cpu_ms(naive, 5)
    store.close()
    return {"first_cpu": first_cpu, "first_wall": first_wall, "idle": idle, "busy": busy, "naive": naive_ms}


WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1]); run_id = sys.argv[2]
    step = conn.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
    end = time.time() + float(sys.argv[3])
    while time.time() < end:
        step += 1
        with conn:
            conn.executemany("INSERT INTO metrics (run_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)",
                             [(run_id, step, k, 0.1, time.time()) for k in ("loss", "lr", "grad_norm", "eval/ndcg@10")])
        time.sleep(0.1)
    """
)


async def app_figures(path: Path, selected: str, seconds: float) -> dict:
    from rerankctl.gpu.fake import FakeGpuSource
    from rerankctl.tui.app import RerankctlApp

    t0 = time.perf_counter()
    app = RerankctlApp(store_path=path, gpu_source=FakeGpuSource(2), refresh_interval=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        while app.first_view_at is None:
            await asyncio.sleep(0.005)
        first_paint = app.first_view_at - t0
        await pilot.pause()
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), selected, str(seconds)])
        n0, c0, w0 = app.refreshes, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        n, cpu, wall = app.refreshes - n0, time.process_time() - c0, time.perf_counter() - w0
        writer.wait()
        last_step = app.view.points[-1][0] if app.view and app.view.points else None
    return {"first_paint": first_paint, "refreshes": n, "cpu_per_refresh": cpu / max(n, 1) * 1000,
            "wall": wall, "last_step": last_step}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rows-per-run", type=int, default=100_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/rerankctl-bench-tui/runs.db"))
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the end-to-end app run")
    args = parser.parse_args()
    if not args.store.exists():
        args.store.parent.mkdir(parents=True, exist_ok=True)
        build(args.store, args.runs, args.rows_per_run)
    running = pin_running(args.store)
    selected = running[0]
    rows = sqlite3.connect(args.store).execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    m = model_figures(args.store, selected)
    a = asyncio.run(app_figures(args.store, selected, args.seconds))

    def stats(xs):
        return f"median {statistics.median(xs):.2f} ms, p95 {sorted(xs)[int(len(xs) * 0.95) - 1]:.2f} ms, max {max(xs):.2f} ms"

    naive = statistics.median(m["naive"])
    print(f"""### TUI refresh (`bench/tui_refresh.py`)

Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},
SQLite {sqlite3.sqlite_version}; shared with other jobs while measured (timings under load).
Command: `python bench/tui_refresh.py --runs {args.runs} --rows-per-run {args.rows_per_run}`
Store: {args.runs} runs, {rows:,} metric rows ({os.path.getsize(args.store) / 2**20:.0f} MiB), {RUNNING} running.

| figure | value | target |
|---|---|---|
| first paint (construct app -> first data drawn, 80x24 headless) | {a["first_paint"] * 1000:.0f} ms | <= 1500 ms |
| model first load, CPU (wall) | {m["first_cpu"]:.0f} ms ({m["first_wall"]:.0f} ms) | |
| refresh CPU, nothing new (50x) | {stats(m["idle"])} | <= 50 ms |
| refresh CPU, 40 new rows each (30x) | {stats(m["busy"])} | <= 50 ms |
| naive full reload CPU (latest of every run + selected series) | median {naive:.1f} ms | |
| app end to end: CPU per refresh incl. rendering, writer at 10 steps/s | {a["cpu_per_refresh"]:.1f} ms ({a["refreshes"]} refreshes in {a["wall"]:.1f} s) | |

Incremental refresh vs naive reload: {statistics.median(m["busy"]) / naive:.3f}x the CPU
({naive / max(statistics.median(m["busy"]), 1e-6):.0f}x less). The live app followed the writer to step {a["last_step"]}.
""")


if __name__ == "__main__":
    main()
