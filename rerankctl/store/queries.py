"""Read queries of the run store, as functions of a ``read(sql, params)`` callable.

`RunStore` wraps these with its lock and busy-retry. Everything that tails
(metrics, events, GPU samples) reads "rows with id > after_id, oldest first":
SQLite serialises writers and assigns AUTOINCREMENT ids inside the write
transaction, so rows become visible in id order and a reader that remembers
the last id it saw never misses a row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from rerankctl.store.models import ArtifactRow, EvalRow, EventRow, GpuSampleRow, MetricRow

Read = Callable[[str, Sequence], list[tuple]]

TAILED_TABLES = ("metrics", "events", "gpu_samples", "artifacts", "evals")


def _limit(sql: str, params: list, limit: int | None) -> tuple[str, list]:
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def metrics_since(
    read: Read,
    after_id: int = 0,
    run_id: str | None = None,
    keys: Iterable[str] | None = None,
    limit: int | None = None,
) -> list[MetricRow]:
    sql = f"SELECT {MetricRow.COLUMNS} FROM metrics WHERE id > ?"
    params: list = [int(after_id)]
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    if keys is not None:
        keys = list(keys)
        sql += f" AND key IN ({', '.join('?' * len(keys))})" if keys else " AND 0"
        params.extend(keys)
    sql, params = _limit(sql + " ORDER BY id", params, limit)
    return [MetricRow.from_row(r) for r in read(sql, params)]


# A loose index scan over (run_id, key, id): one index seek per distinct key, instead of
# reading every metric row of the run (runs log millions of rows; they have tens of keys).
_KEYS_SQL = """
WITH RECURSIVE k(key) AS (
    SELECT MIN(key) FROM metrics WHERE run_id = :run
    UNION ALL
    SELECT (SELECT MIN(key) FROM metrics WHERE run_id = :run AND key > k.key) FROM k WHERE k.key IS NOT NULL
)
SELECT key FROM k WHERE key IS NOT NULL
"""


def metric_keys(read: Read, run_id: str) -> list[str]:
    return [r[0] for r in read(_KEYS_SQL, {"run": run_id})]


def metric_series(read: Read, run_id: str, key: str) -> list[tuple[int, float]]:
    rows = read("SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY id", (run_id, key))
    return [(int(step), math.nan if value is None else float(value)) for step, value in rows]


def latest_metrics(read: Read, run_id: str) -> dict[str, tuple[int, float]]:
    sql = f"""
        SELECT {MetricRow.COLUMNS} FROM metrics WHERE id IN (
            SELECT (SELECT MAX(id) FROM metrics WHERE run_id = :run AND key = k.key) FROM ({_KEYS_SQL}) AS k
        ) ORDER BY key
    """
    return {m.key: (m.step, m.value) for m in map(MetricRow.from_row, read(sql, {"run": run_id}))}


def last_step(read: Read, run_id: str) -> int | None:
    """The highest step among the latest rows of each key (the run's progress)."""
    latest = latest_metrics(read, run_id)
    return max((step for step, _ in latest.values()), default=None)


def events(read: Read, run_id: str | None, after_id: int = 0, limit: int | None = None) -> list[EventRow]:
    sql = f"SELECT {EventRow.COLUMNS} FROM events WHERE id > ?"
    params: list = [int(after_id)]
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    sql, params = _limit(sql + " ORDER BY id", params, limit)
    return [EventRow.from_row(r) for r in read(sql, params)]


def last_events(read: Read, run_id: str, n: int) -> list[EventRow]:
    """The ``n`` most recent events of a run, oldest first."""
    rows = read(
        f"SELECT {EventRow.COLUMNS} FROM events WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, n)
    )
    return [EventRow.from_row(r) for r in reversed(rows)]


def artifacts(read: Read, run_id: str) -> list[ArtifactRow]:
    rows = read(f"SELECT {ArtifactRow.COLUMNS} FROM artifacts WHERE run_id = ? ORDER BY id", (run_id,))
    return [ArtifactRow.from_row(r) for r in rows]


def evals(read: Read, run_id: str | None = None, model: str | None = None) -> list[EvalRow]:
    sql = f"SELECT {EvalRow.COLUMNS} FROM evals WHERE 1"
    params: list = []
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    return [EvalRow.from_row(r) for r in read(sql + " ORDER BY id", params)]


def gpu_samples_since(
    read: Read, after_id: int = 0, limit: int | None = None, run_id: str | None = None
) -> list[GpuSampleRow]:
    sql = f"SELECT {GpuSampleRow.COLUMNS} FROM gpu_samples WHERE id > ?"
    params: list = [int(after_id)]
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    sql, params = _limit(sql + " ORDER BY id", params, limit)
    return [GpuSampleRow.from_row(r) for r in read(sql, params)]


def max_ids(read: Read) -> dict[str, int]:
    """``{table: highest id}`` (0 for an empty table); ``runs`` counts by rowid."""
    parts = [f"(SELECT COALESCE(MAX(id), 0) FROM {t})" for t in TAILED_TABLES]
    parts.append("(SELECT COALESCE(MAX(rowid), 0) FROM runs)")
    row = read("SELECT " + ", ".join(parts), ())[0]
    return dict(zip((*TAILED_TABLES, "runs"), (int(v) for v in row), strict=True))
