"""Trainer callbacks shared by every trainer: run-store logging and rich progress.

Both act only on the main process (``state.is_world_process_zero``), so a
multi-GPU run writes one set of rows to the store and draws one progress bar.
"""

from __future__ import annotations

import math
import os
from typing import Any

from transformers import TrainerCallback

# Trainer log keys that are bookkeeping, not metrics.
_SKIP_KEYS = {"epoch", "total_flos", "train_runtime"}


def numeric_logs(logs: dict[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a Trainer log dict (bools and NaNs dropped)."""
    out = {}
    for key, value in logs.items():
        if key in _SKIP_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


class RunStoreCallback(TrainerCallback):
    """Writes Trainer logs, checkpoints and the best checkpoint into the run store.

    Args:
        writer: a :class:`rerankctl.store.RunWriter` (``None`` on non-main processes).
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.best_logged: str | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.writer is None or not state.is_world_process_zero:
            return
        # Which distributed setup really ran (not what was asked): world size, accelerate's type, backend.
        kind = getattr(getattr(args, "distributed_state", None), "distributed_type", None)
        backend = None
        try:
            import torch.distributed as dist

            backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
        except Exception:  # pragma: no cover - a backend query must never stop a run
            backend = None
        launcher = "torchrun" if os.environ.get("TORCHELASTIC_RUN_ID") else "single process"
        self.writer.log_event(
            f"distributed: world_size {args.world_size}, {getattr(kind, 'value', kind) or 'NO'}, "
            f"backend {backend or 'none'}, launcher {launcher}"
        )
        self.writer.log_metrics(0, {"world_size": float(args.world_size)})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.writer is None or not state.is_world_process_zero or not logs:
            return
        values = numeric_logs(logs)
        if "epoch" in logs:
            values["epoch"] = float(logs["epoch"])
        if values:
            self.writer.log_metrics(state.global_step, values)

    def on_save(self, args, state, control, **kwargs):
        if self.writer is None or not state.is_world_process_zero:
            return
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        self.writer.log_artifact("checkpoint", path, step=state.global_step)
        best = state.best_model_checkpoint
        if best and best != self.best_logged:
            meta = {"metric": args.metric_for_best_model, "value": state.best_metric}
            self.writer.log_artifact("best", best, step=int(best.rsplit("-", 1)[-1]), meta=meta)
            self.best_logged = best
        self.writer.flush()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.writer is None or not state.is_world_process_zero or not metrics:
            return
        summary = ", ".join(
            f"{k.removeprefix('eval_')}={v:.4f}" for k, v in metrics.items() if k != "eval_runtime"
        )
        self.writer.log_event(f"eval @ step {state.global_step}: {summary}", step=state.global_step)


class RichProgressCallback(TrainerCallback):
    """A rich progress bar with ETA, live loss, learning rate and docs/s (replaces tqdm)."""

    def __init__(self, console: Any = None, description: str = "training") -> None:
        self.console = console
        self.description = description
        self.progress = None
        self.task = None
        self.last: dict[str, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=state.max_steps, status="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        self.last.update(numeric_logs(logs))
        parts = []
        for key, fmt in (
            ("loss", "loss {:.4f}"),
            ("learning_rate", "lr {:.2e}"),
            ("docs_per_sec", "{:.1f} docs/s"),
            ("eval_ndcg@10", "ndcg@10 {:.4f}"),
        ):
            if key in self.last:
                parts.append(fmt.format(self.last[key]))
        self.progress.update(self.task, status="  ".join(parts))

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()
            self.progress = None


class SetEpochCallback(TrainerCallback):
    """Tells a re-sampling dataset which epoch starts, so each epoch draws new negatives.

    The Trainer forwards ``set_epoch`` to samplers, not to map-style datasets.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(state.epoch or 0))
