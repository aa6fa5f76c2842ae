"""The SQLite run store (stdlib ``sqlite3`` only; no torch or numpy at import).

from rerankctl.store import RunStore
store = RunStore.open()
with store.create_run(kind="sft", config=cfg) as w:
    w.log_metrics(step, {"loss": 0.41})
"""

from rerankctl.store.models import (
    ARTIFACT_KINDS,
    RUN_STATUSES,
    ArtifactRow,
    EvalRow,
    EventRow,
    GpuSampleRow,
    MetricRow,
    Run,
)
from rerankctl.store.schema import StoreVersionError
from rerankctl.store.store import RunStore
from rerankctl.store.writer import RunWriter

__all__ = [
    "ARTIFACT_KINDS",
    "RUN_STATUSES",
    "ArtifactRow",
    "EvalRow",
    "EventRow",
    "GpuSampleRow",
    "MetricRow",
    "Run",
    "RunStore",
    "RunWriter",
    "StoreVersionError",
]
