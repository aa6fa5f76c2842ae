"""`RunWriter`: what a training process uses to log one run into the store.

Logging only appends to in-memory buffers; a background thread commits them in
small batches: as soon as 200 rows are waiting, and when the oldest waiting
row is 0.5 s old (so a run that pauses for a long evaluation still shows its
last step). ``flush()`` and ``finish()`` commit at once. The training loop
therefore never waits for SQLite, and a store that is busy for a while (another
process deleting a huge run) delays the commits instead of crashing training.

Two locks: a short one around the buffers (taken by every ``log_*`` call, from
any thread: the training loop and a GPU-sampler thread log at the same time),
and one around the connection, held while a batch is written.

A writer copied into a forked child (a DataLoader worker) does nothing there:
the SQLite connection belongs to the process that created it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from rerankctl.store.connection import connect, write_transaction
from rerankctl.store.models import ARTIFACT_KINDS, FINAL_STATUSES, GPU_SAMPLE_FIELDS

FLUSH_ROWS = 200
FLUSH_SECONDS = 0.5
# Back-pressure: past this many waiting rows the logging call itself commits them, so a
# loop that logs faster than SQLite commits slows down instead of growing memory.
MAX_PENDING = 20_000

# One INSERT per buffered table; the buffers hold the parameter tuples in this column order.
_INSERTS = {
    "metrics": "INSERT INTO metrics (run_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)",
    "events": "INSERT INTO events (run_id, time, level, message, step) VALUES (?, ?, ?, ?, ?)",
    "artifacts": "INSERT INTO artifacts (run_id, time, kind, path, step, meta) VALUES (?, ?, ?, ?, ?, ?)",
    "gpu_samples": "INSERT INTO gpu_samples (run_id, time, gpu_index, name, util, mem_used, mem_total, "
    "temperature, power, power_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "evals": "INSERT INTO evals (run_id, model, dataset, metric, value, time) VALUES (?, ?, ?, ?, ?, ?)",
}


def _as_float(value: Any) -> float | None:
    """A metric value as a float; NaN as None (SQLite stores NaN as NULL anyway)."""
    out = float(value)
    return None if math.isnan(out) else out


def _opt_float(value: Any) -> float | None:
    """A GPU reading as a float, or None for "N/A", None and NaN."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)


class RunWriter:
    """Logs metrics, events, artifacts, GPU samples and evals of one run.

    Made by `RunStore.create_run`; use it as a context manager to finish the run
    as failed (or killed, on Ctrl-C) when the body raises.
    """

    def __init__(self, path: str, run_id: str, name: str) -> None:
        self.id = run_id
        self.name = name
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = connect(path)
        self._buf_lock = threading.Lock()
        self._io_lock = threading.RLock()
        self._buffers: dict[str, list[tuple]] = {table: [] for table in _INSERTS}
        self._pending = 0
        self._oldest: float | None = None
        self._finished = False
        self._warned = False
        self.committed_metrics = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._flush_loop, name=f"rerankctl-store-{run_id}", daemon=True
        )
        self._thread.start()
        # A script that forgets finish() still gets its last rows committed and a final status.
        atexit.register(self._at_exit)

    # ------------------------------------------------------------------ logging
    def log_metrics(self, step: int, values: Mapping[str, Any]) -> None:
        """Buffer one row per ``key: value`` at ``step``; values that are not numbers are skipped."""
        now = time.time()
        rows = []
        for key, value in values.items():
            try:
                rows.append((self.id, int(step), str(key), _as_float(value), now))
            except (TypeError, ValueError):
                continue
        self._add("metrics", rows, now)

    def log_event(self, message: str, level: str = "info", step: int | None = None) -> None:
        """Buffer a log line of the run (level: debug, info, warning, error)."""
        now = time.time()
        self._add("events", [(self.id, now, str(level), str(message), step)], now)

    def log_artifact(self, kind: str, path: str, step: int | None = None, meta: dict | None = None) -> None:
        """Record a checkpoint, best/final model, report or export written by the run."""
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"artifact kind must be one of {', '.join(ARTIFACT_KINDS)}, not {kind!r}")
        now = time.time()
        self._add("artifacts", [(self.id, now, kind, str(path), step, _dumps(meta or {}))], now)

    def log_gpu_samples(self, samples: Iterable[Mapping[str, Any]]) -> None:
        """Buffer GPU readings (keys as in `GPU_SAMPLE_FIELDS`; missing or "N/A" values become NULL)."""
        now = time.time()
        rows = [
            (self.id, now, int(s.get("gpu_index", 0)), s.get("name"))
            + tuple(_opt_float(s.get(k)) for k in GPU_SAMPLE_FIELDS[2:])
            for s in samples
        ]
        self._add("gpu_samples", rows, now)

    def log_eval(self, dataset: str, metric: str, value: float, model: str | None = None) -> None:
        """Record an evaluation result of this run's model."""
        now = time.time()
        self._add("evals", [(self.id, model, str(dataset), str(metric), _as_float(value), now)], now)

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        """Replace the run's summary (final figures: best metric, total steps, ...); committed at once."""
        self._write_run("UPDATE runs SET summary = ? WHERE id = ?", (_dumps(dict(summary)), self.id))

    # ------------------------------------------------------------- committing
    def flush(self) -> None:
        """Commit every buffered row now (raises when the store cannot be written)."""
        with self._io_lock:
            if not self._usable():
                return
            with self._buf_lock:
                taken = self._buffers
                n_rows = self._pending
                if not n_rows:
                    return
                self._buffers = {table: [] for table in _INSERTS}
                self._pending = 0
                self._oldest = None
            try:
                with write_transaction(self._conn):
                    for table, rows in taken.items():
                        if rows:
                            self._conn.executemany(_INSERTS[table], rows)
            except sqlite3.IntegrityError:
                if self._run_exists():
                    self._put_back(taken, n_rows)
                    raise
                self._detach()  # the run was deleted (`runs rm --force`): stop logging, keep training
                return
            except BaseException:
                self._put_back(taken, n_rows)
                raise
            self.committed_metrics += len(taken["metrics"])

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """Commit what is buffered and close the run with ``status``; later calls do nothing."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}, not {status!r}")
        if self._finished or not self._usable():
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        with self._io_lock:
            if self._finished:
                return
            try:
                self.flush()
            finally:
                self._write_run(
                    "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ?",
                    (status, time.time(), error, self.id),
                )
                self._finished = True
                self._close()

    @property
    def finished(self) -> bool:
        return self._finished

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("completed")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("killed", error="interrupted")
        else:
            self.finish("failed", error=f"{exc_type.__name__}: {exc}")

    # --------------------------------------------------------------- internals
    def _usable(self) -> bool:
        return self._conn is not None and os.getpid() == self._pid

    def _add(self, table: str, rows: list[tuple], now: float) -> None:
        if not rows or self._finished or os.getpid() != self._pid:
            return
        with self._buf_lock:
            self._buffers[table].extend(rows)
            self._pending += len(rows)
            if self._oldest is None:
                self._oldest = now
            pending = self._pending
        if pending >= MAX_PENDING:
            # On error the rows stay buffered; the background thread retries and warns.
            with contextlib.suppress(sqlite3.Error):
                self.flush()
        elif pending >= FLUSH_ROWS:
            self._wake.set()

    def _put_back(self, taken: dict[str, list[tuple]], n_rows: int) -> None:
        """Return rows whose commit failed to the front of the buffers, to be retried."""
        with self._buf_lock:
            for table, rows in taken.items():
                self._buffers[table][:0] = rows
            self._pending += n_rows
            self._oldest = time.time() if self._oldest is None else self._oldest

    def _due(self) -> bool:
        with self._buf_lock:
            if self._pending >= FLUSH_ROWS:
                return True
            return self._oldest is not None and time.time() - self._oldest >= FLUSH_SECONDS

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS / 2)
            self._wake.clear()
            if self._stop.is_set() or not self._due():
                continue
            try:
                self.flush()
            except sqlite3.Error as exc:
                # Keep training: the rows stay buffered and the next round retries them.
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"run store: could not commit rows of run {self.name} yet: {exc}", stacklevel=1
                    )
                self._stop.wait(FLUSH_SECONDS)

    def _run_exists(self) -> bool:
        return self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (self.id,)).fetchone() is not None

    def _detach(self) -> None:
        warnings.warn(
            f"run {self.name} ({self.id}) was deleted from the run store; no longer logging it", stacklevel=3
        )
        with self._buf_lock:
            self._buffers = {table: [] for table in _INSERTS}
            self._pending = 0
            self._oldest = None
        self._finished = True
        self._stop.set()
        self._close()

    def _write_run(self, sql: str, params: tuple) -> None:
        with self._io_lock:
            if not self._usable():
                return
            with write_transaction(self._conn):
                self._conn.execute(sql, params)

    def _close(self) -> None:
        with self._io_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        if os.getpid() == self._pid and not self._finished:
            self.finish("failed", error="process exited without finishing the run")
