"""The dashboard's data: an incremental reader of the run store plus live GPU readings.

Every refresh costs what changed, not what exists: the model remembers the highest metric and
event row ids it has seen and asks the store only for rows after them (``metrics_since``,
``events(after_id=...)``). Per-run "latest" values come from the store's index seek once
(`RunStore.latest_metrics`) and are then kept current from the new rows; full series are read
once per (run, key) when a chart first needs them and extended from new rows afterwards.

The model is used from worker threads; one lock serialises its methods. It hands the UI
immutable `DashboardView` snapshots, so the UI thread never touches the store.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rerankctl.gpu.snapshot import GpuSnapshot, GpuSource
from rerankctl.tui.series import downsample, loss_key, total_steps

# Rows read per refresh at most: a refresh that finds a backlog (a run that logged 10^6 rows
# while the TUI was not looking) catches up over several refreshes instead of freezing one.
MAX_ROWS_PER_REFRESH = 20_000
EVENTS_KEPT = 50
GPU_HISTORY = 120


@dataclass(frozen=True)
class RunRow:
    """One line of the runs table."""

    id: str
    name: str
    kind: str
    status: str
    step: int | None
    loss: float | None
    rate: float | None  # optimiser steps per second
    eta: float | None  # seconds left, running runs with a known total only
    started_at: float
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DashboardView:
    """Everything the dashboard draws, read in a worker thread."""

    rows: list[RunRow]
    gpus: list[GpuSnapshot]
    gpu_ok: bool
    gpu_message: str
    gpu_history: dict[int, list[float | None]]
    selected: str | None = None
    keys: list[str] = field(default_factory=list)
    key: str | None = None
    points: list[tuple[int, float]] = field(default_factory=list)
    events: list = field(default_factory=list)
    rows_read: int = 0


class _RunState:
    """What the model keeps per run: the latest (step, value, time) per key."""

    __slots__ = ("latest", "last_time")

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, float]] = {}
        self.last_time: float | None = None


class DashboardModel:
    """Incremental reader behind the dashboard (see the module docstring).

    Args:
        store: an open `rerankctl.store.RunStore`.
        gpu_source: where GPU readings come from (None: no GPU panel data).
        clock: ``time.time`` normally; fixed in snapshot tests so durations do not move.
        max_points: points per chart series after downsampling.
    """

    def __init__(
        self,
        store,
        gpu_source: GpuSource | None = None,
        clock: Callable[[], float] = time.time,
        max_points: int = 400,
    ) -> None:
        self.store = store
        self.gpu_source = gpu_source
        self.clock = clock
        self.max_points = max_points
        self.last_metric_id = 0
        self.last_event_id = 0
        self.loaded = False
        self.runs: dict = {}  # id -> Run, newest first
        self._runs_rowid = -1  # highest runs rowid at the last re-list (new runs change it)
        self._state: dict[str, _RunState] = {}
        self._series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        self._keys: dict[str, list[str]] = {}
        self._events: dict[str, deque] = {}
        self._gpu_history: dict[int, deque] = {}
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- reading
    def _load(self) -> None:
        """First load: ids first (so no row is missed), then one index seek per run and key."""
        ids = self.store.max_ids()
        self.last_metric_id = ids["metrics"]
        self.last_event_id = ids["events"]
        self._reload_runs()
        for run_id in self.runs:
            state = self._state.setdefault(run_id, _RunState())
            state.latest = dict(self.store.latest_metrics(run_id))
        self.loaded = True

    def _reload_runs(self) -> None:
        self._runs_rowid = self.store.max_ids()["runs"]
        runs = self.store.list_runs()
        self.runs = {r.id: r for r in runs}
        for run_id in self.runs:
            self._state.setdefault(run_id, _RunState())

    def _apply_metrics(self) -> int:
        rows = self.store.metrics_since(after_id=self.last_metric_id, limit=MAX_ROWS_PER_REFRESH)
        for m in rows:
            state = self._state.get(m.run_id)
            if state is None:
                state = self._state[m.run_id] = _RunState()
            prev = state.latest.get(m.key)
            if prev is None or m.step >= prev[0]:
                state.latest[m.key] = (m.step, m.value)
            state.last_time = m.time
            keys = self._keys.get(m.run_id)
            if keys is not None and m.key not in keys:
                keys.append(m.key)
                keys.sort()
            series = self._series.get((m.run_id, m.key))
            # A series loaded after `last_metric_id` was taken already holds some of these
            # rows; steps only grow within a key, so "newer step" is the de-duplication rule.
            if series is not None and (not series or m.step > series[-1][0]):
                series.append((m.step, m.value))
        if rows:
            self.last_metric_id = rows[-1].id
        return len(rows)

    def _apply_events(self) -> int:
        rows = self.store.events(None, after_id=self.last_event_id, limit=MAX_ROWS_PER_REFRESH)
        for e in rows:
            kept = self._events.get(e.run_id)
            if kept is not None:
                kept.append(e)
        if rows:
            self.last_event_id = rows[-1].id
        return len(rows)

    def _read_gpus(self) -> tuple[bool, str, list[GpuSnapshot]]:
        if self.gpu_source is None:
            return False, "GPU monitoring off", []
        ok, message = self.gpu_source.status()
        snaps = self.gpu_source.snapshot_all() if ok else []
        for s in snaps:
            self._gpu_history.setdefault(s.index, deque(maxlen=GPU_HISTORY)).append(s.util)
        return ok, message, snaps

    def refresh(self, selected: str | None = None, key: str | None = None) -> DashboardView:
        """Read what changed since the last call and return the view for ``selected``/``key``."""
        with self._lock:
            if not self.loaded:
                self._load()
                n = 0
            else:
                ids = self.store.max_ids()
                if ids["runs"] != self._runs_rowid or any(r.status == "running" for r in self.runs.values()):
                    # Statuses change without new rows; only runs that may still change cost a re-list.
                    self._reload_runs()
                n = self._apply_metrics() if ids["metrics"] > self.last_metric_id else 0
                if ids["events"] > self.last_event_id:
                    self._apply_events()
            gpu_ok, gpu_message, gpus = self._read_gpus()
            if selected not in self.runs:
                selected = next(iter(self.runs), None)
            keys = self.keys(selected) if selected else []
            if key not in keys:
                key = loss_key(keys) or (keys[0] if keys else None)
            points = self.points(selected, key) if selected and key else []
            events = list(self._events_of(selected)) if selected else []
            return DashboardView(
                rows=self.rows(),
                gpus=gpus,
                gpu_ok=gpu_ok,
                gpu_message=gpu_message,
                gpu_history={i: list(h) for i, h in self._gpu_history.items()},
                selected=selected,
                keys=keys,
                key=key,
                points=points,
                events=events,
                rows_read=n,
            )

    # ------------------------------------------------------------- per run
    def keys(self, run_id: str) -> list[str]:
        """Metric keys of a run (read once, then kept current from new rows)."""
        with self._lock:
            if run_id not in self._keys:
                self._keys[run_id] = sorted(self.store.metric_keys(run_id))
            return list(self._keys[run_id])

    def series(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """The full (step, value) series (read once, then extended incrementally); a copy."""
        with self._lock:
            if (run_id, key) not in self._series:
                self._series[(run_id, key)] = list(self.store.metric_series(run_id, key))
            return list(self._series[(run_id, key)])

    def points(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """The series downsampled for a chart."""
        with self._lock:
            if (run_id, key) not in self._series:
                self.series(run_id, key)
            return downsample(self._series[(run_id, key)], self.max_points)

    def _events_of(self, run_id: str) -> deque:
        kept = self._events.get(run_id)
        if kept is None:
            kept = self._events[run_id] = deque(
                self.store.last_events(run_id, EVENTS_KEPT), maxlen=EVENTS_KEPT
            )
        return kept

    def rows(self) -> list[RunRow]:
        """The runs table, newest first."""
        now = self.clock()
        out = []
        for run in self.runs.values():
            state = self._state.get(run.id) or _RunState()
            step = max((s for s, _ in state.latest.values()), default=None)
            lk = loss_key(state.latest)
            loss = state.latest[lk][1] if lk else None
            end = run.ended_at if run.ended_at is not None else (state.last_time or now)
            rate = step / (end - run.started_at) if step and end > run.started_at else None
            eta = None
            total = total_steps(run.config)
            if run.status == "running" and rate and total is not None and step is not None:
                eta = max(total - step, 0) / rate
            out.append(
                RunRow(
                    run.id, run.name, run.kind, run.status, step, loss, rate, eta, run.started_at, run.tags
                )
            )
        return out

    def run_details(self, run_id: str) -> dict:
        """Everything the run screen shows: the run, its keys with downsampled series, artifacts, events."""
        with self._lock:
            run = self.runs.get(run_id) or self.store.get_run(run_id)
            keys = self.keys(run_id)
            return {
                "run": run,
                "curves": {k: self.points(run_id, k) for k in keys},
                "artifacts": self.store.artifacts(run_id),
                "events": list(self._events_of(run_id)),
            }

    def compare(self, run_ids: list[str], key: str) -> dict[str, list[tuple[int, float]]]:
        """``{run name: full series of key}`` for the compare screen (runs without the key left out)."""
        with self._lock:
            out = {}
            for run_id in run_ids:
                if key in self.keys(run_id):
                    name = self.runs[run_id].name if run_id in self.runs else run_id
                    out[name] = self.series(run_id, key)
            return out

    def evals(self) -> list:
        with self._lock:
            return self.store.evals()
