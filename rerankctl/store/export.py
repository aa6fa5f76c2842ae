"""Writing a run's logged rows as CSV or JSON (for `runs export`).

Metrics are read in pages by row id so that a run with millions of rows is
streamed, not loaded at once.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from typing import IO, Any

from rerankctl.store.models import MetricRow, Run
from rerankctl.store.store import RunStore

PAGE = 50_000


def iter_metrics(store: RunStore, run_id: str) -> Iterator[MetricRow]:
    """Every metric row of a run, oldest first, read a page at a time."""
    after = 0
    while True:
        page = store.metrics_since(after_id=after, run_id=run_id, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].id


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _csv_num(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


def write_csv(store: RunStore, run: Run, out: IO[str], wide: bool = False) -> int:
    """Write the run's metrics as CSV; return the number of data rows.

    Long format (default): ``step,key,value,time``, one row per logged value.
    Wide format: ``step,<key1>,<key2>,...``, one row per step, the last value logged
    for a key at that step (read the whole run into memory).
    """
    writer = csv.writer(out, lineterminator="\n")
    if not wide:
        writer.writerow(["step", "key", "value", "time"])
        n = 0
        for m in iter_metrics(store, run.id):
            writer.writerow([m.step, m.key, _csv_num(m.value), f"{m.time:.3f}"])
            n += 1
        return n
    keys = store.metric_keys(run.id)
    by_step: dict[int, dict[str, float]] = {}
    for m in iter_metrics(store, run.id):
        by_step.setdefault(m.step, {})[m.key] = m.value
    writer.writerow(["step", *keys])
    for step in sorted(by_step):
        row = by_step[step]
        writer.writerow([step, *(_csv_num(row[k]) if k in row else "" for k in keys)])
    return len(by_step)


def _metric_dict(m: MetricRow) -> dict[str, Any]:
    return {"id": m.id, "step": m.step, "key": m.key, "value": _num(m.value), "time": m.time}


def _small_parts(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything but the metrics (events, artifacts and evals are few per run)."""
    return {
        "events": [
            {"time": e.time, "level": e.level, "message": e.message, "step": e.step}
            for e in store.events(run.id)
        ],
        "artifacts": [
            {"time": a.time, "kind": a.kind, "path": a.path, "step": a.step, "meta": a.meta}
            for a in store.artifacts(run.id)
        ],
        "evals": [
            {
                "model": e.model,
                "dataset": e.dataset,
                "metric": e.metric,
                "value": _num(e.value),
                "time": e.time,
            }
            for e in store.evals(run_id=run.id)
        ],
    }


def run_document(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the store holds about a run, as one JSON-ready dict (NaN as null)."""
    run_dict = {k: (_num(v) if isinstance(v, float) else v) for k, v in run.to_dict().items()}
    return {
        "run": run_dict,
        "metrics": [_metric_dict(m) for m in iter_metrics(store, run.id)],
        **_small_parts(store, run),
    }


def write_json(store: RunStore, run: Run, out: IO[str]) -> int:
    """Write `run_document` as JSON, streaming the metrics (one per line); return their number."""

    def dumps(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False)

    run_dict = {k: (_num(v) if isinstance(v, float) else v) for k, v in run.to_dict().items()}
    out.write('{\n"run": ' + dumps(run_dict) + ',\n"metrics": [')
    n = 0
    for m in iter_metrics(store, run.id):
        out.write(("," if n else "") + "\n  " + dumps(_metric_dict(m)))
        n += 1
    out.write("\n]")
    for name, rows in _small_parts(store, run).items():
        out.write(f',\n"{name}": ' + dumps(rows))
    out.write("\n}\n")
    return n
