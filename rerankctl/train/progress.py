"""Training progress that reads in a terminal *and* in a log file.

On a terminal the rich bar (:class:`rerankctl.train.callbacks.RichProgressCallback`) redraws in
place. Everywhere else (``> log 2>&1``, nohup, tmux logging, a scheduler, CI) a redrawing bar writes
nothing useful, so :class:`PlainProgressCallback` writes one plain line per logging step to stderr,
the way Hugging Face trainers log::

    sft my-run step 20/375 (5%) | epoch 0.05 | loss 2.0551 | lr 1.05e-04 | 21.3 docs/s | elapsed 0:01:38 | eta 0:28:59

``RERANKCTL_PROGRESS=plain|rich|none`` overrides the choice (``none``: no progress output).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from transformers import TrainerCallback

from rerankctl.progress_lines import clock
from rerankctl.train.callbacks import RichProgressCallback, numeric_logs

# (log key, how the line shows it); the line keeps this order.
_FIELDS = (
    ("loss", "loss {:.4f}"),
    ("learning_rate", "lr {:.2e}"),
    ("docs_per_sec", "{:.1f} docs/s"),
    ("train_loss", "train loss {:.4f}"),
)
# The evaluation metrics a line shows (the run store keeps them all).
_EVAL = ("eval_loss", "eval_ndcg@10", "eval_mrr", "eval_map", "eval_accuracy", "eval_kl")


def progress_line(
    name: str,
    step: int,
    total: int,
    epoch: float | None,
    logs: dict[str, float],
    elapsed: float,
    eta: float | None,
) -> str:
    """One progress line: step/total, epoch, loss, lr, docs/s, evaluation metrics, elapsed, eta."""
    head = f"{name} step {step}/{total}" + (f" ({100 * step // total}%)" if total > 0 else "")
    parts = [head]
    if epoch is not None:
        parts.append(f"epoch {epoch:.2f}")
    parts.extend(fmt.format(logs[key]) for key, fmt in _FIELDS if key in logs)
    parts.extend(f"{key.replace('_', ' ', 1)} {logs[key]:.4f}" for key in _EVAL if key in logs)
    parts.append(f"elapsed {clock(elapsed)}")
    parts.append(f"eta {clock(eta) if eta is not None else '?'}")
    return " | ".join(parts)


class PlainProgressCallback(TrainerCallback):
    """One line per ``on_log`` (loss every ``logging_steps``, and each evaluation) on a plain stream."""

    def __init__(self, description: str = "training", stream: Any = None) -> None:
        self.description = description
        self.stream = stream
        self.start: float | None = None
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        self.first_step = state.global_step  # a resumed run's rate counts only the steps run here

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self.start is None:
            return
        values = numeric_logs(logs)
        if not any(key in values for key, _ in _FIELDS) and not any(key in values for key in _EVAL):
            return  # e.g. only runtime figures: a line with nothing to read
        elapsed = time.monotonic() - self.start
        done = state.global_step - self.first_step
        eta = elapsed / done * max(0, state.max_steps - state.global_step) if done > 0 else None
        line = progress_line(
            self.description,
            state.global_step,
            state.max_steps,
            state.epoch,
            values,
            elapsed,
            eta,
        )
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)


def progress_callbacks(console: Any, description: str) -> list:
    """The progress callback for ``console`` (None: stderr): the rich bar on a terminal, plain lines elsewhere."""
    mode = os.environ.get("RERANKCTL_PROGRESS", "").strip().lower()
    if mode == "none":
        return []
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    terminal = bool(getattr(console, "is_terminal", False))
    if mode == "rich" or (mode != "plain" and terminal):
        return [RichProgressCallback(console, description=description)]
    stream = getattr(console, "file", None)
    return [PlainProgressCallback(description, stream=stream)]
