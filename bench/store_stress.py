#!/usr/bin/env python
"""Run store under load: a writer process logging metrics while this process tails them by id.

    python bench/store_stress.py [--seconds 10] [--rate 1000] [--keys 10] [--big-rows 1000000]

Phases (each in a fresh store under a temp dir):

1. paced: the writer logs ``--rate`` rows/s (``--keys`` metrics per step) for ``--seconds``;
   the reader polls every 10 ms. Reports rows/s achieved, reader errors and busy
   retries, and reader lag (time from logging a row to the reader seeing it).
2. flat out: the same with no pacing, to show the head-room over 1,000 rows/s.
3. big run: one run with ``--big-rows`` metric rows; times the queries `runs ls`,
   `runs show` and the TUI use (latest metrics, keys, one series) on it.

Prints a Markdown snippet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rerankctl.store import RunStore

WRITER = r"""
import json, sys, time
from rerankctl.store import RunStore
path, seconds, rate, keys = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
w = RunStore.open(path).create_run(kind="bench", config={"rate": rate})
print(w.id, flush=True)
t0 = time.monotonic()
step = 0
calls = 0.0
while time.monotonic() - t0 < seconds:
    if rate > 0:
        wait = t0 + step * keys / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    c0 = time.perf_counter()
    w.log_metrics(step, {f"k{j}": float(step) for j in range(keys)})
    calls += time.perf_counter() - c0
    step += 1
w.finish()
elapsed = time.monotonic() - t0  # up to the last row committed
print(json.dumps({"rows": step * keys, "seconds": elapsed, "us_per_call": 1e6 * calls / max(step, 1)}), flush=True)
"""


def tail_phase(path: Path, seconds: float, rate: float, keys: int) -> dict:
    reader = RunStore.open(path)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(seconds), str(rate), str(keys)],
        stdout=subprocess.PIPE,
        text=True,
    )
    run_id = proc.stdout.readline().strip()
    after, seen, errors, lags, polls = 0, 0, 0, [], 0
    while True:
        exited = proc.poll() is not None
        try:
            batch = reader.metrics_since(after_id=after, run_id=run_id)
        except Exception as exc:  # noqa: BLE001 - counted: the claim is that this never happens
            errors += 1
            print(f"reader error: {exc!r}", file=sys.stderr)
            continue
        polls += 1
        now = time.time()
        if batch:
            seen += len(batch)
            after = batch[-1].id
            lags.extend(now - r.time for r in batch[:: max(1, len(batch) // 20)])
        elif exited:
            break
        time.sleep(0.01)
    report = json.loads(proc.stdout.readline())
    reader.close()
    lags.sort()
    return {
        **report,
        "seen": seen,
        "errors": errors,
        "retries": reader.busy_retries,
        "polls": polls,
        "lag_median": statistics.median(lags) if lags else float("nan"),
        "lag_p99": lags[int(0.99 * (len(lags) - 1))] if lags else float("nan"),
        "lag_max": lags[-1] if lags else float("nan"),
    }


def big_run_phase(path: Path, rows: int, keys: int = 20) -> dict:
    store = RunStore.open(path)
    w = store.create_run(kind="bench", name="big")
    w.finish()
    t0 = time.perf_counter()
    with store._lock:  # bulk load straight through SQL: this phase measures reads, not the writer
        store._conn.execute("BEGIN")
        store._conn.executemany(
            "INSERT INTO metrics (run_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)",
            ((w.id, i // keys, f"key{i % keys:02d}", float(i), 0.0) for i in range(rows)),
        )
        store._conn.execute("COMMIT")
    load_s = time.perf_counter() - t0

    def timed(fn, n=5):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    naive_sql = "SELECT key, MAX(id) FROM metrics WHERE run_id = ? GROUP BY key"
    out = {
        "rows": rows,
        "load_s": load_s,
        "latest_metrics_ms": 1000 * timed(lambda: store.latest_metrics(w.id)),
        "metric_keys_ms": 1000 * timed(lambda: store.metric_keys(w.id)),
        "naive_group_by_ms": 1000 * timed(lambda: store._read(naive_sql, (w.id,))),
        "series_ms": 1000 * timed(lambda: store.metric_series(w.id, "key00"), n=3),
        "tail_1000_ms": 1000 * timed(lambda: store.metrics_since(after_id=rows - 1000)),
        "db_mb": path.stat().st_size / 2**20,
    }
    store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="Rows/s of the paced phase.")
    parser.add_argument("--keys", type=int, default=10, help="Metrics per step.")
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rerankctl-stress-"))
    paced = tail_phase(tmp / "paced.db", args.seconds, args.rate, args.keys)
    flat = tail_phase(tmp / "flat.db", min(args.seconds, 5.0), 0, args.keys)
    big = big_run_phase(tmp / "big.db", args.big_rows) if args.big_rows else None

    load = os.getloadavg()[0]
    print("### Run store under load (`bench/store_stress.py`)\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {__import__('sqlite3').sqlite_version}; 1-min load average {load:.1f} at the end "
          "(shared machine: other jobs were running).\n")  # fmt: skip
    print("| phase | rows written | rows/s | rows seen by reader | reader errors | busy retries "
          "| lag median / p99 / max (s) | log_metrics call |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name, r in ((f"paced {args.rate:.0f} rows/s, {args.seconds:.0f} s", paced), ("flat out, 5 s", flat)):
        print(
            f"| {name} | {r['rows']} | {r['rows'] / r['seconds']:.0f} | {r['seen']} | {r['errors']} | {r['retries']} "
            f"| {r['lag_median']:.3f} / {r['lag_p99']:.3f} / {r['lag_max']:.3f} | {r['us_per_call']:.0f} us |"
        )
    ok = all(r["seen"] == r["rows"] and r["errors"] == 0 for r in (paced, flat))
    print(f"\nEvery committed row reached the reader, with no errors: {'yes' if ok else 'NO'}.")
    if big:
        print(f"\nQueries on one run with {big['rows']:,} metric rows (20 keys; store {big['db_mb']:.0f} MB), "
              "median of 5:\n")  # fmt: skip
        print("| query | ms |")
        print("|---|---:|")
        print(f"| `latest_metrics` (loose index scan, one seek per key) | {big['latest_metrics_ms']:.2f} |")
        print(f"| `metric_keys` | {big['metric_keys_ms']:.2f} |")
        print(f"| naive `GROUP BY key` over the run, for comparison | {big['naive_group_by_ms']:.1f} |")
        print(f"| `metric_series` of one key ({big['rows'] // 20:,} points) | {big['series_ms']:.1f} |")
        print(f"| `metrics_since` tail of the last 1,000 rows | {big['tail_1000_ms']:.2f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
