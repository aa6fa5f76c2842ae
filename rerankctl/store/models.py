"""Plain, frozen records read back from the run store (JSON columns already decoded)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

RUN_STATUSES = ("running", "completed", "failed", "killed")
FINAL_STATUSES = ("completed", "failed", "killed")
ARTIFACT_KINDS = ("checkpoint", "best", "final", "report", "export")
EVENT_LEVELS = ("debug", "info", "warning", "error")


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _real(value: float | None) -> float:
    # SQLite stores NaN as NULL; a NaN loss is information, so it comes back as NaN.
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Run:
    """One row of ``runs``."""

    id: str
    name: str
    kind: str
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    output_dir: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    pid: int | None = None
    host: str | None = None
    tags: tuple[str, ...] = ()
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    COLUMNS = (
        "id, name, kind, status, config, output_dir, started_at, ended_at, pid, host, tags, error, summary"
    )

    @classmethod
    def from_row(cls, row: tuple) -> Run:
        rid, name, kind, status, config, output_dir, started, ended, pid, host, tags, error, summary = row
        return cls(
            id=rid,
            name=name,
            kind=kind,
            status=status,
            config=_loads(config, {}),
            output_dir=output_dir,
            started_at=float(started),
            ended_at=None if ended is None else float(ended),
            pid=pid,
            host=host,
            tags=tuple(_loads(tags, [])),
            error=error,
            summary=_loads(summary, {}),
        )

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to now while the run is running)."""
        end = self.ended_at if self.ended_at is not None else time.time()
        return max(0.0, end - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data["duration"] = self.duration
        return data


@dataclass(frozen=True)
class MetricRow:
    """One row of ``metrics``."""

    id: int
    run_id: str
    step: int
    key: str
    value: float
    time: float

    COLUMNS = "id, run_id, step, key, value, time"

    @classmethod
    def from_row(cls, row: tuple) -> MetricRow:
        return cls(row[0], row[1], int(row[2]), row[3], _real(row[4]), float(row[5]))


@dataclass(frozen=True)
class EventRow:
    """One row of ``events`` (a log line of a run)."""

    id: int
    run_id: str
    time: float
    level: str
    message: str
    step: int | None

    COLUMNS = "id, run_id, time, level, message, step"

    @classmethod
    def from_row(cls, row: tuple) -> EventRow:
        return cls(row[0], row[1], float(row[2]), row[3], row[4], row[5])


@dataclass(frozen=True)
class ArtifactRow:
    """One row of ``artifacts``: a checkpoint, best/final model, report or export."""

    id: int
    run_id: str
    time: float
    kind: str
    path: str
    step: int | None
    meta: dict[str, Any]

    COLUMNS = "id, run_id, time, kind, path, step, meta"

    @classmethod
    def from_row(cls, row: tuple) -> ArtifactRow:
        return cls(row[0], row[1], float(row[2]), row[3], row[4], row[5], _loads(row[6], {}))


@dataclass(frozen=True)
class EvalRow:
    """One row of ``evals``: a metric of a model (endpoint or path) on a dataset."""

    id: int
    run_id: str | None
    model: str | None
    dataset: str
    metric: str
    value: float
    time: float

    COLUMNS = "id, run_id, model, dataset, metric, value, time"

    @classmethod
    def from_row(cls, row: tuple) -> EvalRow:
        return cls(row[0], row[1], row[2], row[3], row[4], _real(row[5]), float(row[6]))


@dataclass(frozen=True)
class GpuSampleRow:
    """One row of ``gpu_samples``; values a GPU did not report are None."""

    id: int
    run_id: str | None
    time: float
    gpu_index: int
    name: str | None
    util: float | None
    mem_used: float | None
    mem_total: float | None
    temperature: float | None
    power: float | None
    power_limit: float | None

    COLUMNS = "id, run_id, time, gpu_index, name, util, mem_used, mem_total, temperature, power, power_limit"

    @classmethod
    def from_row(cls, row: tuple) -> GpuSampleRow:
        return cls(*row)


GPU_SAMPLE_FIELDS = (
    "gpu_index",
    "name",
    "util",
    "mem_used",
    "mem_total",
    "temperature",
    "power",
    "power_limit",
)
