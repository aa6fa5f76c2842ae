"""`RunStore`: the SQLite run store (open, create runs, list/get/delete/tag, read back).

One store is one SQLite file in WAL mode (default ``$RERANKCTL_HOME/runs.db``).
Many processes may have it open at once: one or more training processes write
(each through its own `RunWriter`), while the TUI and ``rerankctl runs`` read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rerankctl.errors import NotFoundError, RerankctlError, UsageError
from rerankctl.store import queries
from rerankctl.store.connection import connect, is_busy, retry, set_wal, write_transaction
from rerankctl.store.models import (
    RUN_STATUSES,
    ArtifactRow,
    EvalRow,
    EventRow,
    GpuSampleRow,
    MetricRow,
    Run,
)
from rerankctl.store.names import new_run_id, readable_name, with_suffix
from rerankctl.store.procs import hostname, pid_alive, process_start_time
from rerankctl.store.schema import migrate
from rerankctl.store.writer import RunWriter, _as_float, _dumps

DIED_MESSAGE = "process died"
_OPEN_HINT = "check RERANKCTL_HOME / --home; move a damaged runs.db out of the way to start a new store"


class RunStore:
    """The run store. Make one with `RunStore.open`; safe to share between threads."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self.busy_retries = 0  # how often a read met a busy database (expected: 0 in WAL mode)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path | None = None, *, reap: bool = True) -> RunStore:
        """Open (creating and migrating when needed) the store at ``path``.

        ``path`` defaults to `rerankctl.paths.store_path()`. Runs left ``running`` by a
        process of this host that no longer exists are marked failed ("process died")
        unless ``reap`` is False.
        """
        if path is None:
            from rerankctl.paths import store_path

            path = store_path()
        path = Path(path).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise RerankctlError(f"cannot open the run store {path}: {exc}", hint=_OPEN_HINT) from exc
        try:
            set_wal(conn)
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if is_busy(exc):
                raise
            raise RerankctlError(f"cannot open the run store {path}: {exc}", hint=_OPEN_HINT) from exc
        except BaseException:
            conn.close()
            raise
        store = cls(path, conn)
        if reap:
            store.reap_dead_runs()
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, sql: str, params: Sequence | Mapping = ()) -> list[tuple]:
        def run() -> list[tuple]:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()

        return retry(run, on_retry=self._count_retry)

    def _count_retry(self) -> None:
        self.busy_retries += 1

    def _write(self, statements: Iterable[tuple[str, Sequence]]) -> None:
        with self._lock, write_transaction(self._conn):
            for sql, params in statements:
                self._conn.execute(sql, params)

    # ------------------------------------------------------------------- runs
    def create_run(
        self,
        kind: str,
        config: Mapping[str, Any] | None = None,
        name: str | None = None,
        output_dir: str | Path | None = None,
        tags: Iterable[str] = (),
        *,
        pid: int | None = None,
    ) -> RunWriter:
        """Start a run of ``kind`` (sft, rl, reward, vl-reward, eval, ...) and return its writer.

        A readable name is generated when ``name`` is None; a name already taken gets
        a ``-2``, ``-3``... suffix (``writer.name`` is the name actually used).
        """
        import os

        pid = os.getpid() if pid is None else pid
        config_json = _dumps(dict(config or {}))
        tags_json = json.dumps(_unique(tags))
        for attempt in range(1, 1000):
            run_id = new_run_id()
            run_name = (
                readable_name(kind)
                if name is None
                else (name if attempt == 1 else with_suffix(name, attempt))
            )
            try:
                self._write(
                    [
                        (
                            "INSERT INTO runs (id, name, kind, status, config, output_dir, started_at, pid, host,"
                            " tags, proc_start) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                            (
                                run_id,
                                run_name,
                                kind,
                                config_json,
                                None if output_dir is None else str(output_dir),
                                time.time(),
                                pid,
                                hostname(),
                                tags_json,
                                process_start_time(pid),
                            ),
                        )
                    ]
                )
            except sqlite3.IntegrityError:
                continue  # id or name taken: draw again / try the next suffix
            return RunWriter(str(self.path), run_id, run_name)
        raise UsageError(f"could not find a free run name starting with {name!r}")

    def run_for_output(self, kind: str, output_dir: str | Path) -> Run | None:
        """The newest run of ``kind`` that wrote into ``output_dir`` (as given or resolved), if any."""
        names = {str(output_dir), str(Path(output_dir).expanduser().resolve())}
        marks = ", ".join("?" for _ in names)
        rows = self._read(
            f"SELECT {Run.COLUMNS} FROM runs WHERE kind = ? AND output_dir IN ({marks})"
            " ORDER BY started_at DESC, rowid DESC LIMIT 1",
            (kind, *names),
        )
        return Run.from_row(rows[0]) if rows else None

    def continue_run(
        self,
        ref: str,
        from_step: int,
        config: Mapping[str, Any] | None = None,
        *,
        pid: int | None = None,
    ) -> tuple[RunWriter, int]:
        """Reopen a run for a training resumed from its checkpoint at ``from_step``.

        The run becomes ``running`` again under this process (pid, host, start time), keeps
        its id, name, events and metrics up to ``from_step``; metric rows logged after
        ``from_step`` are deleted (those steps are trained again, and two values at one step
        would split the curve). ``config`` replaces the stored config when given. Returns the
        writer and the number of metric rows deleted.
        """
        import os

        run = self.get_run(ref)
        pid = os.getpid() if pid is None else pid
        with self._lock, write_transaction(self._conn):
            dropped = self._conn.execute(
                "DELETE FROM metrics WHERE run_id = ? AND step > ?", (run.id, int(from_step))
            ).rowcount
            sets = "status = 'running', ended_at = NULL, error = NULL, pid = ?, host = ?, proc_start = ?"
            params: list[Any] = [pid, hostname(), process_start_time(pid)]
            if config is not None:
                sets += ", config = ?"
                params.append(_dumps(dict(config)))
            self._conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*params, run.id))
        return RunWriter(str(self.path), run.id, run.name), max(0, dropped)

    def list_runs(
        self,
        kind: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs, newest first, filtered by kind, status and tag."""
        if status is not None and status not in RUN_STATUSES:
            raise UsageError(f"unknown run status {status!r}", hint=f"use one of {', '.join(RUN_STATUSES)}")
        sql = f"SELECT {Run.COLUMNS} FROM runs WHERE 1"
        params: list = []
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if tag is not None:
            sql += " AND EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value = ?)"
            params.append(tag)
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [Run.from_row(r) for r in self._read(sql, params)]

    def get_run(self, ref: str) -> Run:
        """The run whose id, name or id prefix is ``ref`` (in that order of precedence)."""
        ref = str(ref).strip()
        if not ref:
            raise UsageError(
                "empty run reference", hint="give a run id, id prefix or name (see `rerankctl runs ls`)"
            )
        for where in ("id = ?", "name = ?"):
            rows = self._read(f"SELECT {Run.COLUMNS} FROM runs WHERE {where}", (ref,))
            if rows:
                return Run.from_row(rows[0])
        pattern = ref.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read(f"SELECT {Run.COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 6", (pattern,))
        if len(rows) == 1:
            return Run.from_row(rows[0])
        if not rows:
            raise NotFoundError(f"no run with id, id prefix or name {ref!r}", hint="see `rerankctl runs ls`")
        ids = ", ".join(r[0] for r in rows[:5])
        raise UsageError(f"run id prefix {ref!r} is ambiguous (matches {ids}{', ...' if len(rows) > 5 else ''})",
                         hint="type more characters of the id")  # fmt: skip

    def delete_run(self, ref: str) -> Run:
        """Delete a run and every row it logged (not its files on disk); returns the deleted run."""
        run = self.get_run(ref)
        self._write([("DELETE FROM runs WHERE id = ?", (run.id,))])  # ON DELETE CASCADE removes the rest
        return run

    def add_tags(self, ref: str, tags: Iterable[str]) -> Run:
        """Add ``tags`` to a run (kept in order, without duplicates); returns the updated run."""
        return self._set_tags(ref, lambda old: _unique([*old, *tags]))

    def remove_tags(self, ref: str, tags: Iterable[str]) -> Run:
        """Remove ``tags`` from a run (missing ones are ignored); returns the updated run."""
        drop = set(tags)
        return self._set_tags(ref, lambda old: [t for t in old if t not in drop])

    def _set_tags(self, ref: str, change) -> Run:
        run = self.get_run(ref)
        with self._lock, write_transaction(self._conn):
            row = self._conn.execute("SELECT tags FROM runs WHERE id = ?", (run.id,)).fetchone()
            new = change(json.loads(row[0] or "[]"))
            self._conn.execute("UPDATE runs SET tags = ? WHERE id = ?", (json.dumps(new), run.id))
        return self.get_run(run.id)

    def reap_dead_runs(self) -> list[str]:
        """Mark failed every ``running`` run of this host whose process is gone; return their ids."""
        rows = self._read(
            "SELECT id, pid, proc_start FROM runs WHERE status = 'running' AND host = ?", (hostname(),)
        )
        dead = [rid for rid, pid, start in rows if not pid_alive(pid, start)]
        if dead:
            now = time.time()
            self._write(
                ("UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE id = ? AND status = 'running'",
                 (now, DIED_MESSAGE, rid))
                for rid in dead
            )  # fmt: skip
        return dead

    # ---------------------------------------------------- rows not tied to a run
    def log_eval(
        self, dataset: str, metric: str, value: float, model: str | None, run_id: str | None = None
    ) -> None:
        """Record an evaluation result (of an endpoint or model path), committed at once."""
        self._write(
            [
                (
                    "INSERT INTO evals (run_id, model, dataset, metric, value, time) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, model, dataset, metric, _as_float(value), time.time()),
                )
            ]
        )

    # ------------------------------------------------------------------ reads
    def metrics_since(
        self,
        after_id: int = 0,
        run_id: str | None = None,
        keys: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[MetricRow]:
        """Metric rows with id > ``after_id``, oldest first (tail by remembering the last id)."""
        return queries.metrics_since(self._read, after_id, run_id, keys, limit)

    def metric_keys(self, run_id: str) -> list[str]:
        """The metric keys a run logged, sorted."""
        return queries.metric_keys(self._read, run_id)

    def metric_series(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of one metric, in logging order."""
        return queries.metric_series(self._read, run_id, key)

    def latest_metrics(self, run_id: str) -> dict[str, tuple[int, float]]:
        """``{key: (step, value)}`` of the last row logged for each key."""
        return queries.latest_metrics(self._read, run_id)

    def last_step(self, run_id: str) -> int | None:
        """The highest step among each key's latest row, or None when nothing was logged."""
        return queries.last_step(self._read, run_id)

    def events(self, run_id: str | None, after_id: int = 0, limit: int | None = None) -> list[EventRow]:
        """Events with id > ``after_id`` (of one run, or of all runs when ``run_id`` is None)."""
        return queries.events(self._read, run_id, after_id, limit)

    def last_events(self, run_id: str, n: int = 20) -> list[EventRow]:
        """The ``n`` most recent events of a run, oldest first."""
        return queries.last_events(self._read, run_id, n)

    def artifacts(self, run_id: str) -> list[ArtifactRow]:
        return queries.artifacts(self._read, run_id)

    def evals(self, run_id: str | None = None, model: str | None = None) -> list[EvalRow]:
        return queries.evals(self._read, run_id, model)

    def gpu_samples_since(
        self, after_id: int = 0, limit: int | None = None, run_id: str | None = None
    ) -> list[GpuSampleRow]:
        return queries.gpu_samples_since(self._read, after_id, limit, run_id)

    def max_ids(self) -> dict[str, int]:
        """``{table: highest id}`` for metrics, events, gpu_samples, artifacts, evals and runs (rowid)."""
        return queries.max_ids(self._read)


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        item = str(item).strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)
