"""Run-store wiring shared by the reward trainers.

The shared :class:`rerankctl.train.callbacks.RunStoreCallback` logs metrics and
evaluation events; the reward trainers name checkpoints ``checkpoint_step_N`` (not the
Trainer's ``checkpoint-N``) and keep their own best model, so the subclass here logs
those paths as artifacts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rerankctl.train.callbacks import RunStoreCallback


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def open_run(
    kind: str,
    config: dict,
    name: str,
    output_dir: Path,
    tags: list[str] | tuple = (),
    store_path: str | None = None,
) -> tuple[Any, Any]:
    """``(store, writer)`` for the main process; ``(None, None)`` elsewhere."""
    if not is_main_process():
        return None, None
    from rerankctl.store import RunStore

    store = RunStore.open(store_path)
    writer = store.create_run(
        kind=kind, config=config, name=name, output_dir=str(output_dir), tags=tuple(tags)
    )
    return store, writer


class RewardStoreCallback(RunStoreCallback):
    """RunStoreCallback with ``checkpoint_step_N`` / ``best_model_step_N`` artifacts."""

    def on_save(self, args, state, control, **kwargs):
        if self.writer is None or not state.is_world_process_zero:
            return
        step = state.global_step
        self.writer.log_artifact(
            "checkpoint", str(Path(args.output_dir) / f"checkpoint_step_{step}"), step=step
        )
        best = state.best_global_step
        best_dir = Path(args.output_dir) / f"best_model_step_{best}" if best else None
        if best_dir is not None and best_dir.is_dir() and str(best_dir) != self.best_logged:
            self.writer.log_artifact("best", str(best_dir), step=best, meta={"value": state.best_metric})
            self.best_logged = str(best_dir)
        self.writer.flush()


def progress_callback(console: Any, name: str) -> list:
    """Progress when there is a console (the CLI): a rich bar on a terminal, plain log lines elsewhere."""
    from rerankctl.train.progress import progress_callbacks

    return progress_callbacks(console, name) if console is not None else []
