"""`train vl-reward`: a Qwen2-VL reward model on the Hugging Face Trainer.

Chosen and rejected rows go through ONE forward pass (the collator stacks them, images
duplicated). Loss: Bradley-Terry on the bounded scores, or the margin ranking loss.
Runs live in ``<output_dir>/<experiment>_<timestamp>/``; a full resume continues in the
checkpoint's run directory with its step, optimizer, scheduler and RNG state; with
``load_weights_only`` a new run starts from the checkpoint's weights with fresh state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rerankctl.config.vl_reward import BUILTIN_SYNTH_VL, BUILTIN_TINY_VL_MODEL, VLRewardConfig
from rerankctl.train.hf_args import bookkeeping_args, checkpointing_args
from rerankctl.train.reward_base import PairwiseRewardTrainer

log = logging.getLogger(__name__)


class VLRewardTrainer(PairwiseRewardTrainer):
    """Pairwise VL reward trainer; logs ``log_samples`` scored validation pairs after each evaluation."""

    def __init__(
        self,
        *args: Any,
        loss: str = "bradley_terry",
        margin: float = 1.0,
        log_samples: int = 0,
        writer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_name, self.margin, self.log_samples, self.writer = loss, margin, log_samples, writer
        self._samples: list[tuple[int, float, float]] = []

    def score_pairs(self, model, inputs):
        n = int(inputs["n_pairs"])
        batch = {k: inputs[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw")}
        scores = model(**batch)["scores"]
        return scores[:n], scores[n:]

    def pair_loss(self, chosen, rejected, inputs):
        from rerankctl.losses import bradley_terry_loss, margin_ranking_loss

        if self.loss_name == "margin":
            return margin_ranking_loss(chosen, rejected, self.margin)
        return bradley_terry_loss(chosen, rejected)

    def pair_labels(self, inputs, batch):
        return torch.zeros(batch, 3)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        loss, preds, labels = super().prediction_step(model, inputs, False, ignore_keys)
        if self.log_samples and len(self._samples) < self.log_samples:
            for idx, (c, r) in zip(inputs["index"].tolist(), preds.tolist(), strict=True):
                self._samples.append((idx, c, r))
        return loss, preds, labels

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        self._samples = []
        metrics = super().evaluate(*args, **kwargs)
        if self.writer is not None and self._samples:
            items = self.eval_dataset.items
            for idx, c, r in self._samples[: self.log_samples]:
                item = items[idx]
                verdict = "ok" if c > r else "WRONG"
                self.writer.log_event(
                    f"sample {item.record.id}: {item.record.query!r} chosen={c:.3f} rejected={r:.3f} {verdict}",
                    step=self.state.global_step,
                )
        return metrics


@dataclass
class VLRewardResult:
    run_id: str | None
    run_dir: Path
    final_dir: Path | None
    baseline: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    global_step: int = 0
    test_output: Path | None = None


def resolve_vl_model(cfg: VLRewardConfig) -> str:
    if cfg.model == BUILTIN_TINY_VL_MODEL:
        from rerankctl.models.vl_reward import tiny_qwen2vl_dir

        return str(tiny_qwen2vl_dir())
    return cfg.model


def attn_implementation(cfg: VLRewardConfig) -> str | None:
    """The attention kernel: ``--flash-attention`` requires flash_attention_2 (refused where it cannot
    run, see models/flash.py); ``--no-flash-attention`` never uses it; unset uses it when usable."""
    from rerankctl.models.flash import FLASH, flash_attention_problem, require_flash_attention

    if cfg.flash_attention is False:
        return None
    if cfg.flash_attention is True:
        require_flash_attention("--flash-attention", "drop --flash-attention (or pass --no-flash-attention)")
        return FLASH
    problem = flash_attention_problem()
    if problem is None:
        return FLASH
    log.info("attention: the transformers default (flash-attention 2 not used: %s)", problem)
    return None


def load_vl_splits(cfg: VLRewardConfig, data_dir: Path) -> tuple[list, list, int]:
    """(train items, validation items, skipped); the built-in synth data is written under ``data_dir``."""
    import random

    from rerankctl.data.vl_dataset import load_vl_items
    from rerankctl.errors import UsageError

    if not cfg.train_data:
        raise UsageError("no training data", hint="pass --data FILE (or use --preset tiny_vl_reward)")
    source = _materialise(cfg.train_data, data_dir, cfg.synth_size, cfg.seed)
    user = cfg.processor if cfg.train_data != BUILTIN_SYNTH_VL else None  # the user's files only
    train, skipped = load_vl_items(source, cfg.skip_invalid, cfg.max_chars, user, cfg.max_samples)
    if cfg.val_data:
        val, more = load_vl_items(
            _materialise(cfg.val_data, data_dir, max(4, cfg.synth_size // 4), cfg.seed + 1),
            cfg.skip_invalid,
            cfg.max_chars,
            cfg.processor if cfg.val_data != BUILTIN_SYNTH_VL else None,
        )
        return train, val, skipped + more
    order = list(range(len(train)))
    random.Random(cfg.seed).shuffle(order)
    n_val = max(1, len(train) // 5)
    held = set(order[:n_val])
    return (
        [t for i, t in enumerate(train) if i not in held],
        [t for i, t in enumerate(train) if i in held],
        skipped,
    )


def _materialise(source: str, data_dir: Path, n: int, seed: int) -> str:
    """The built-in synth set written to JSONL + PNGs (cached per size and seed); other sources unchanged."""
    if source != BUILTIN_SYNTH_VL:
        return source
    from rerankctl import paths
    from rerankctl.data.io import write_jsonl
    from rerankctl.data.synth_vl import synth_vl

    folder = paths.cache_dir("synth-vl") / f"n{n}-seed{seed}"
    target = folder / "data.jsonl"
    if not target.is_file():
        write_jsonl(target, synth_vl(n, seed=seed, image_dir=folder / "images", relative_to=folder))
    return str(target)


def new_run_dir(cfg: VLRewardConfig) -> Path:
    from rerankctl import paths

    parent = Path(cfg.output_dir) if cfg.output_dir else paths.runs_dir()
    run_dir = parent / f"{cfg.experiment_name}_{time.strftime('%Y%m%d_%H%M%S')}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = parent / f"{cfg.experiment_name}_{time.strftime('%Y%m%d_%H%M%S')}_{suffix}"
    return run_dir


def resolve_vl_resume(cfg: VLRewardConfig) -> tuple[Path | None, str | None]:
    """``(checkpoint, note)`` to resume from: ``latest`` = the newest complete checkpoint of the
    newest run of the experiment; ``note`` names the partial checkpoints skipped on the way."""
    from rerankctl import paths
    from rerankctl.errors import UsageError
    from rerankctl.train.checkpointing import find_resumable, is_complete
    from rerankctl.train.reward_base import CHECKPOINT_RE

    if not cfg.resume:
        return None, None
    if cfg.resume != "latest":
        path = Path(cfg.resume)
        if not (path / "model.safetensors").is_file() or not is_complete(path):
            raise UsageError(
                f"--resume {path}: not a (complete) checkpoint folder",
                hint="pass a checkpoint_step_N folder or 'latest'",
            )
        return path, None
    parent = Path(cfg.output_dir) if cfg.output_dir else paths.runs_dir()
    for run in sorted(parent.glob(f"{cfg.experiment_name}_*"), reverse=True):
        # Not cleaned here: the run directory is not locked yet.
        point = find_resumable(run, CHECKPOINT_RE, clean=False)
        if point.checkpoint is not None:
            return point.checkpoint, point.message()
    raise UsageError(
        f"--resume latest: no checkpoint of experiment {cfg.experiment_name!r} in {parent}",
        hint="start without --resume",
    )


def vl_training_arguments(cfg: VLRewardConfig, run_dir: Path, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(run_dir),
        per_device_train_batch_size=cfg.batch,
        per_device_eval_batch_size=cfg.eval_batch,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        max_grad_norm=cfg.max_grad_norm,
        bf16=cfg.bf16,
        **checkpointing_args(cfg.gradient_checkpointing),
        logging_steps=cfg.logging_steps,
        eval_strategy=("steps" if cfg.eval_steps else "epoch") if has_eval else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps" if (cfg.save_steps or cfg.eval_steps) else "epoch",
        save_steps=cfg.save_steps or cfg.eval_steps or 500,
        save_total_limit=cfg.save_total_limit,
        **bookkeeping_args(cfg.seed, cfg.report_to, cfg.distributed),
    )


def run_vl_reward(
    cfg: VLRewardConfig, console: Any = None, callbacks: list | None = None, store_path: str | None = None
) -> VLRewardResult:
    """Train (or resume) a VL reward model; score ``test_data`` at the end when given."""
    from transformers import set_seed

    from rerankctl.data.vl_dataset import VLEncoder, VLPairCollator, VLPairDataset
    from rerankctl.models.vl_reward import VLHeadConfig, VLRewardModel
    from rerankctl.train.reward import _metrics, _strip
    from rerankctl.train.reward_store import RewardStoreCallback, progress_callback
    from rerankctl.train.run_state import begin_training
    from rerankctl.train.sft_runner import quiet_libraries
    from rerankctl.train.trackers import attach_trackers

    quiet_libraries()  # no raw "Loading weights" / "Writing model shards" bars: our progress is the log
    if cfg.test_only:
        from rerankctl.train.vl_reward_scoring import run_vl_test

        return run_vl_test(cfg, store_path=store_path)
    # The built-in model first: building it on first use seeds torch itself, and after set_seed
    # that would give a fresh home's first run another head than every later run of the same seed.
    model_path = resolve_vl_model(cfg)
    set_seed(cfg.seed)
    resume, note = resolve_vl_resume(cfg)
    full_resume = resume is not None and not cfg.load_weights_only
    run_dir = resume.parent if full_resume else new_run_dir(cfg)
    head = VLHeadConfig(cfg.score_min, cfg.score_max, cfg.min_pixels, cfg.max_pixels)
    model = VLRewardModel.from_backbone(model_path, head, attn_implementation=attn_implementation(cfg))
    if resume is not None:
        model.load_weights(resume)  # full resume: the Trainer loads them again, with the optimizer state
    if cfg.freeze_vision:
        model.freeze_vision()
    encoder = VLEncoder(model.tokenizer, cfg.min_pixels, cfg.max_pixels, cfg.max_length)
    train_items, val_items, skipped = load_vl_splits(cfg, run_dir)
    train_ds, val_ds = VLPairDataset(train_items), VLPairDataset(val_items)
    session = begin_training(
        "vl-reward",
        config=cfg.to_dict(),
        name=cfg.run_name or run_dir.name,
        output_dir=run_dir,
        tags=cfg.tags,
        store_path=store_path,
        resolve_resume=lambda: (str(resume) if full_resume else None, note),
    )
    writer = session.writer
    with session.status():
        if writer is not None:
            how = (
                f"; resumed from {resume}" + (" (weights only)" if cfg.load_weights_only else "")
                if resume
                else ""
            )
            writer.log_event(
                f"model {model_path}; {len(train_ds)} train, {len(val_ds)} val pairs; {skipped} skipped{how}"
            )
        cbs = (
            list(callbacks)
            if callbacks is not None
            else [RewardStoreCallback(writer), *progress_callback(console, run_dir.name)]
        )
        trainer = VLRewardTrainer(
            model=model,
            args=vl_training_arguments(cfg, run_dir, True),
            train_dataset=train_ds,
            eval_dataset=val_ds,
            data_collator=VLPairCollator(encoder),
            callbacks=cbs,
            compute_metrics=_metrics,
            early_stopping_patience=cfg.early_stopping_patience,
            loss=cfg.loss,
            margin=cfg.margin,
            log_samples=cfg.log_samples,
            writer=writer,
        )
        attach_trackers(trainer, writer)
        baseline = _strip(trainer.evaluate_before_training()) if not full_resume else {}
        trainer.train(resume_from_checkpoint=str(resume) if full_resume else None)
        final_dir = run_dir / "final_model"
        main = trainer.is_world_process_zero()  # one writer under several processes
        if main:
            model.save_pretrained(final_dir)
        final = _strip(trainer.evaluate())  # every process: the Trainer shards and gathers
        test_output = None
        if cfg.test_data and main:
            from rerankctl.train.vl_reward_scoring import score_vl_file

            test_output = score_vl_file(
                model,
                encoder,
                cfg.test_data,
                Path(cfg.test_output or run_dir / "test_scores.jsonl"),
                cfg.eval_batch,
                cfg.skip_invalid,
            )[0]
        if writer is not None:
            writer.log_artifact("final", str(final_dir), step=trainer.state.global_step)
            if test_output is not None:
                writer.log_artifact("report", str(test_output), step=trainer.state.global_step)
            writer.set_summary(
                {"global_step": trainer.state.global_step, **{f"final_{k}": v for k, v in final.items()}}
            )
            writer.finish("completed")
        return VLRewardResult(
            writer.id if writer else None,
            run_dir,
            final_dir,
            baseline,
            final,
            trainer.state.global_step,
            test_output,
        )


def summary_lines(result: VLRewardResult) -> list[str]:
    lines = [f"run dir: {result.run_dir}"]
    if result.run_id:
        lines.append(f"run {result.run_id}")
    for key in ("accuracy", "loss", "chosen_mean", "rejected_mean", "margin_mean"):
        if key in result.final:
            before = f"{result.baseline[key]:.4f} -> " if key in result.baseline else ""
            lines.append(f"{key:>14}: {before}{result.final[key]:.4f}")
    if result.test_output is not None:
        lines.append(f"test scores: {result.test_output}")
    return lines
