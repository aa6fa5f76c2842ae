"""What the text and VL reward trainers share, on top of the Hugging Face ``Trainer``.

* checkpoints are written as ``checkpoint_step_N/`` (staged, fsynced and renamed into place
  once complete by :class:`~rerankctl.train.checkpointing.AtomicCheckpointMixin`) and only
  the newest ``save_total_limit`` are kept;
* the best evaluation so far is kept as ``best_model_step_N/`` (the previous best is removed);
* early stopping after ``patience`` evaluations without improvement;
* the model is saved with its own ``save_pretrained`` (safetensors, head included), which
  is also what the Trainer's resume code reads back (``model.safetensors``).

Subclasses implement ``score_pairs(model, inputs) -> (chosen, rejected)`` and ``pair_loss``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from rerankctl.train.checkpointing import AtomicCheckpointMixin, is_complete

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint_step_(\d+)$")
BEST_RE = re.compile(r"^best_model_step_(\d+)$")


def list_steps(folder: str | os.PathLike, pattern: re.Pattern = CHECKPOINT_RE) -> list[tuple[int, Path]]:
    """``(step, path)`` of the step-numbered folders in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := pattern.match(p.name))]
    return sorted(found)


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest complete ``checkpoint_step_N`` (see :func:`rerankctl.train.checkpointing.is_complete`)."""
    for _step, path in reversed(list_steps(folder)):
        if is_complete(path):
            return path
    return None


class PairwiseRewardTrainer(AtomicCheckpointMixin, Trainer):
    """Base trainer for pairwise reward models (see the module docstring).

    Args:
        metric_for_best: key of the evaluation metrics that decides the best model
            (``eval_`` prefix optional).
        greater_is_better: direction of ``metric_for_best``.
        early_stopping_patience: stop after this many evaluations without improvement (None: never).
        keep_best: write ``best_model_step_N/`` when the metric improves.
    """

    def __init__(
        self,
        *args: Any,
        metric_for_best: str = "accuracy",
        greater_is_better: bool = True,
        early_stopping_patience: int | None = None,
        keep_best: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        from transformers.trainer_callback import PrinterCallback

        # Progress and metrics go to the rich progress bar and the run store, not raw dicts on stdout.
        self.remove_callback(PrinterCallback)
        # Our losses are means over pairs: let the Trainer divide by the accumulation steps.
        self.model_accepts_loss_kwargs = False
        self.metric_for_best = (
            metric_for_best if metric_for_best.startswith("eval_") else f"eval_{metric_for_best}"
        )
        self.greater_is_better = greater_is_better
        self.early_stopping_patience = early_stopping_patience
        self.keep_best = keep_best
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.best_dir: Path | None = None
        self.bad_evals = 0
        self._training = False

    # ------------------------------------------------------------------------------------------ subclass API

    def score_pairs(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def pair_loss(self, chosen: torch.Tensor, rejected: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def pair_labels(self, inputs: dict[str, Any], batch: int) -> torch.Tensor:
        """Per-pair extras handed to ``compute_metrics`` as ``label_ids`` (default: zeros)."""
        return torch.zeros(batch, 1)

    # ------------------------------------------------------------------------------------------ Trainer hooks

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        chosen, rejected = self.score_pairs(model, inputs)
        loss = self.pair_loss(chosen, rejected, inputs)
        if return_outputs:
            return loss, {"chosen": chosen, "rejected": rejected}
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            chosen, rejected = self.score_pairs(model, inputs)
            loss = self.pair_loss(chosen, rejected, inputs).detach()
        if prediction_loss_only:
            return loss, None, None
        preds = torch.stack([chosen.detach().float(), rejected.detach().float()], dim=1)
        labels = self.pair_labels(inputs, preds.shape[0]).to(preds.device)
        return loss, preds, labels

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        # Under FSDP/DeepSpeed the Trainer passes the gathered full state dict: the local one is a shard.
        model.save_pretrained(output_dir, state_dict=state_dict)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def checkpoint_name(self, step: int) -> str:
        return f"checkpoint_step_{step}"

    def rotate_saved_checkpoints(self, run_dir: Path) -> None:
        self._rotate_checkpoints(run_dir)

    def _rotate_checkpoints(self, run_dir: Path) -> None:
        """Keep the newest ``save_total_limit`` checkpoints (all when the limit is unset)."""
        limit = self.args.save_total_limit
        if not limit or limit <= 0:
            return
        steps = list_steps(run_dir)
        for _step, path in steps[: max(0, len(steps) - limit)]:
            shutil.rmtree(path, ignore_errors=True)

    def evaluate_before_training(self) -> dict[str, float]:
        """The baseline evaluation of the untrained model, leaving the model free to be wrapped.

        The Trainer's evaluation prepares the bare model with accelerate in evaluation mode, which
        marks it prepared; the ``train()`` that follows then skips the DDP wrap, and each process
        trained its own copy with no gradient all-reduce (seen with ``--gpus cpu:2``: one process
        and two processes ended 0.017 apart after 8 steps). FSDP and DeepSpeed wrap the model for
        evaluation too and are left alone.
        """
        metrics = self.evaluate()
        if not (self.is_deepspeed_enabled or self.is_fsdp_enabled) and self.model_wrapped is self.model:
            if getattr(self.model, "_is_accelerate_prepared", False):
                del self.model._is_accelerate_prepared
            models = self.accelerator._models
            while self.model in models:
                models.remove(self.model)
        return metrics

    def train(self, *args: Any, **kwargs: Any):
        self._training = True
        try:
            return super().train(*args, **kwargs)
        finally:
            self._training = False

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        metrics = super().evaluate(*args, **kwargs)
        if self._training:
            self._track_best(metrics)
        return metrics

    def _track_best(self, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric_for_best)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        best = self.state.best_metric  # kept in trainer_state.json, so a resumed run knows its best
        better = best is None or (value > best if self.greater_is_better else value < best)
        if better:
            self.state.best_metric, self.state.best_global_step = float(value), self.state.global_step
            self.best_value, self.best_step, self.bad_evals = float(value), self.state.global_step, 0
            if self.keep_best and self.args.should_save:
                target = Path(self.args.output_dir) / f"best_model_step_{self.state.global_step}"
                self.save_model(str(target))
                for _step, old in list_steps(self.args.output_dir, BEST_RE):
                    if old != target:
                        shutil.rmtree(old, ignore_errors=True)
                self.best_dir = target
                self.log(
                    {"best_step": float(self.state.global_step), f"best_{self.metric_for_best}": float(value)}
                )
            return
        self.bad_evals += 1
        if self.early_stopping_patience is not None and self.bad_evals >= self.early_stopping_patience:
            log.info("early stopping: %d evaluations without improvement", self.bad_evals)
            self.control.should_training_stop = True
