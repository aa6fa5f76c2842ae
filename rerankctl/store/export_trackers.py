"""A finished run's curves from the run store into TensorBoard event files or an MLflow store.

For runs trained without ``--report-to``, or to copy a run into another tracker later
(`rerankctl runs export RUN --format tensorboard|mlflow`). Names follow what the live trackers
write, so an exported run looks like one logged while it trained:

- TensorBoard: transformers' ``rewrite_logs`` tags: ``eval_ndcg@10`` -> ``eval/ndcg@10``,
  ``test_x`` -> ``test/x``, everything else ``train/<key>``; one scalar per stored row, at its
  step and wall time. Written with tensorboard's own event writer (no torch, no TensorFlow).
- MLflow: the store's keys with the characters MLflow refuses replaced by ``_`` (as transformers'
  ``MLflowCallback`` does: ``eval_ndcg@10`` -> ``eval_ndcg_10``), the flattened config as params,
  the run's name, status and times, and tags ``rerankctl.run_id`` / ``rerankctl.kind``.

Non-finite values (NaN losses of a diverged run) are skipped: neither tracker plots them usefully.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

from rerankctl.store.export import iter_metrics
from rerankctl.store.models import Run
from rerankctl.store.store import RunStore

_MLFLOW_BAD = re.compile(r"[^0-9A-Za-z_\-. :/]")
_MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "killed": "KILLED", "running": "RUNNING"}
#: MLflow's log_batch limits (mlflow.utils.validation): 1000 metrics, 100 params+tags per call.
_METRIC_BATCH = 1000
_PARAM_BATCH = 100


def tensorboard_tag(key: str) -> str:
    """The tag transformers' TensorBoardCallback gives a Trainer log key."""
    for prefix in ("eval_", "test_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix) :]}"
    return f"train/{key}"


def mlflow_key(key: str) -> str:
    """A store key as transformers' MLflowCallback names it (MLflow refuses ``@``, ``(`` ...)."""
    return _MLFLOW_BAD.sub("_", key)


def write_tensorboard(store: RunStore, run: Run, logdir: Path) -> tuple[Path, int]:
    """Write the run's metrics into a new event file in ``logdir``; ``(file, scalars written)``."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True, exist_ok=True)
    before = set(logdir.glob("events.out.tfevents.*"))
    writer = EventFileWriter(str(logdir), filename_suffix=f".{run.id}")
    n = 0
    try:
        for m in iter_metrics(store, run.id):
            if not math.isfinite(m.value):
                continue
            value = Summary.Value(tag=tensorboard_tag(m.key), simple_value=m.value)
            writer.add_event(Event(wall_time=m.time, step=m.step, summary=Summary(value=[value])))
            n += 1
        writer.flush()
    finally:
        writer.close()
    (path,) = set(logdir.glob("events.out.tfevents.*")) - before
    return path, n


def _flat_params(config: dict[str, Any], limit: int) -> dict[str, str]:
    from rerankctl.store.compare import flatten

    return {k: str(v)[:limit] for k, v in flatten(config).items()}


def write_mlflow(store: RunStore, run: Run, uri: str, experiment: str | None = None) -> tuple[str, int]:
    """Create one MLflow run in the store at ``uri`` holding ``run``'s metrics; ``(its id, metrics)``."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    client = MlflowClient(uri)
    experiment_id = "0"
    if experiment:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    elif client.get_experiment("0") is None:  # pragma: no cover - every MLflow store has "Default"
        experiment_id = client.create_experiment("Default")
    tags = {"rerankctl.run_id": run.id, "rerankctl.kind": run.kind}
    if run.tags:
        tags["rerankctl.tags"] = ",".join(run.tags)
    created = client.create_run(
        experiment_id, start_time=int(run.started_at * 1000), tags=tags, run_name=run.name
    )
    run_id = created.info.run_id
    params = [Param(k, v) for k, v in _flat_params(run.config, MAX_PARAM_VAL_LENGTH).items()]
    for i in range(0, len(params), _PARAM_BATCH):
        client.log_batch(run_id, params=params[i : i + _PARAM_BATCH])
    batch: list[Any] = []
    n = 0
    for m in iter_metrics(store, run.id):
        if not math.isfinite(m.value):
            continue
        batch.append(Metric(mlflow_key(m.key), m.value, int(m.time * 1000), m.step))
        n += 1
        if len(batch) == _METRIC_BATCH:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    status = _MLFLOW_STATUS.get(run.status, "FINISHED")
    if status != "RUNNING":
        end = run.ended_at if run.ended_at is not None else time.time()
        client.set_terminated(run_id, status=status, end_time=int(end * 1000))
    client.log_batch(run_id, tags=[RunTag("rerankctl.exported", "true")])
    return run_id, n
