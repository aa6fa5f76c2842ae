"""`train reward`: a Bradley-Terry reward model on the Hugging Face Trainer.

:class:`RewardTrainer` scores chosen and rejected in ONE forward pass: the collator
pads both sides of a batch to one width, ``compute_loss`` concatenates them into a
``(2B, L)`` batch, and the rewards are split back. That halves the number of kernel
launches and weight reads per step compared with two forwards (see
``bench/reward_step.py``).

:func:`run_reward` does the wiring: data, split, model (head, pooling, freezing, LoRA,
8-bit), run store, baseline evaluation, training, ``final_model/`` and
``evaluation_report.json``. :func:`run_reward_eval` evaluates a trained model
(``--eval-only`` and ``rerankctl eval reward``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rerankctl.config.reward import BUILTIN_TINY_MODEL, RewardConfig
from rerankctl.train.hf_args import bookkeeping_args, checkpointing_args
from rerankctl.train.reward_base import PairwiseRewardTrainer


class RewardTrainer(PairwiseRewardTrainer):
    """Bradley-Terry ``-log sigmoid(r_c - r_r - margin)`` with optional reward centering."""

    def __init__(
        self, *args: Any, use_margin: bool = False, center_rewards: float | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.use_margin = use_margin
        self.center_rewards = center_rewards

    def score_pairs(self, model, inputs):
        ids = torch.cat([inputs["chosen_input_ids"], inputs["rejected_input_ids"]], dim=0)
        mask = torch.cat([inputs["chosen_attention_mask"], inputs["rejected_attention_mask"]], dim=0)
        rewards = model(input_ids=ids, attention_mask=mask)["rewards"]
        n = inputs["chosen_input_ids"].shape[0]
        return rewards[:n], rewards[n:]

    def pair_loss(self, chosen, rejected, inputs):
        from rerankctl.losses import bradley_terry_loss

        margin = inputs["margin"].to(chosen.dtype) if self.use_margin else None
        return bradley_terry_loss(chosen, rejected, margin=margin, center_rewards_coef=self.center_rewards)

    def pair_labels(self, inputs, batch):
        # margin + response lengths, for the margin tau and the length correlation.
        return torch.cat([inputs["margin"].float().unsqueeze(1), inputs["lengths"].float()], dim=1)


@dataclass
class RewardResult:
    """What a finished run produced."""

    run_id: str | None
    output_dir: Path
    final_dir: Path | None
    baseline: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    global_step: int = 0
    train_seconds: float = 0.0
    report: Path | None = None


def resolve_model_path(cfg: RewardConfig) -> str:
    if cfg.model == BUILTIN_TINY_MODEL:
        from rerankctl.models.tiny import tiny_qwen3_dir

        return str(tiny_qwen3_dir(seed=0))
    return cfg.model


def check_8bit(cfg: RewardConfig) -> None:
    """8-bit optimizer/model need bitsandbytes and a CUDA GPU: say so instead of crashing later."""
    if not (cfg.optim_8bit or cfg.model_8bit):
        return
    from rerankctl.errors import DependencyError, UsageError

    if cfg.model_8bit and not cfg.lora.enabled:
        # 8-bit weights take no gradient: without an adapter only the value head would train.
        raise UsageError(
            "--8bit-model without --lora would train only the value head (8-bit backbone weights cannot be trained)",
            hint="add --lora, or drop --8bit-model to train the whole model",
        )

    flag = "--8bit-optim" if cfg.optim_8bit else "--8bit-model"
    if not torch.cuda.is_available():
        raise DependencyError(
            f"{flag} needs a CUDA GPU and none is visible", hint=f"drop {flag} to train in full precision"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise DependencyError(
            f"{flag} needs bitsandbytes", hint="pip install 'rerankctl[gpu]' (or drop the flag)"
        ) from None


def build_model(cfg: RewardConfig, model_path: str, tokenizer: Any) -> Any:
    """The reward model to train: fp32 master weights (bf16 autocast comes from the Trainer)."""
    from rerankctl.models.reward import RewardModel

    quant = None
    dtype = torch.float32
    if cfg.model_8bit:
        from transformers import BitsAndBytesConfig

        quant, dtype = BitsAndBytesConfig(load_in_8bit=True), torch.bfloat16
    torch.manual_seed(cfg.seed)  # the head's init
    model = RewardModel.from_backbone(
        model_path,
        head=cfg.head,
        pooling=cfg.pooling,
        dtype=dtype,
        attn_implementation=cfg.attn_implementation,
        quantization_config=quant,
        tokenizer=tokenizer,
    )
    if cfg.model_8bit:
        from peft import prepare_model_for_kbit_training

        model.backbone = prepare_model_for_kbit_training(model.backbone, use_gradient_checkpointing=False)
    model.freeze(embeddings=cfg.freeze_embeddings, first_layers=cfg.freeze_layers)
    if not cfg.center_rewards:
        from rerankctl.models.reward import output_bias

        # r_chosen - r_rejected cancels the output bias, so its gradient is float rounding noise,
        # which Adam's normalisation turns into a random walk of lr per step (it differed between
        # one and two processes by 2 x lr). Only reward centering gives it something to learn.
        output_bias(model.head).requires_grad_(False)
    if cfg.lora.enabled:
        model.add_lora(cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
    return model


def training_arguments(cfg: RewardConfig, output_dir: Path, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    eval_strategy = ("steps" if cfg.eval_steps else "epoch") if has_eval else "no"
    save_strategy = "steps" if (cfg.save_steps or cfg.eval_steps) else "epoch"
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch,
        per_device_eval_batch_size=cfg.eval_batch,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim="adamw_bnb_8bit"
        if cfg.optim_8bit
        else "adamw_torch_fused",  # fused: one kernel for all tensors
        bf16=cfg.bf16,
        **checkpointing_args(cfg.gradient_checkpointing),
        logging_steps=cfg.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=cfg.eval_steps,
        save_strategy=save_strategy,
        save_steps=cfg.save_steps or cfg.eval_steps or 500,
        save_total_limit=cfg.save_total_limit,
        **bookkeeping_args(cfg.seed, cfg.report_to, cfg.distributed),
        ddp_find_unused_parameters=False,
    )


def resolve_resume(resume: str | None, output_dir: Path) -> tuple[str | None, str | None]:
    """``(checkpoint, note)``: the newest complete ``checkpoint_step_N`` for ``latest``."""
    from rerankctl.train.checkpointing import resolve_resume_arg
    from rerankctl.train.reward_base import CHECKPOINT_RE
    from rerankctl.train.run_state import is_main_process

    return resolve_resume_arg(resume, output_dir, CHECKPOINT_RE, clean=is_main_process())


def load_splits(cfg: RewardConfig) -> tuple[list, list, int]:
    """(train records, eval records, skipped) after --frac / --max-samples and the prompt split."""
    from rerankctl.data.preference_dataset import split_by_prompt, take_fraction
    from rerankctl.errors import UsageError
    from rerankctl.train.reward_data import load_preferences

    if not cfg.dataset:
        raise UsageError(
            "no training data", hint="pass --data FILE or a hub name (or use --preset tiny_reward)"
        )
    records, skipped = load_preferences(
        cfg.dataset,
        dataset_format=cfg.dataset_format,
        skip_invalid=cfg.skip_invalid,
        synth_size=cfg.synth_size,
        seed=cfg.seed,
        max_chars=cfg.max_chars,
        processor=cfg.processor,
    )
    if cfg.eval_dataset:
        held, more = load_preferences(
            cfg.eval_dataset,
            dataset_format=cfg.dataset_format,
            skip_invalid=cfg.skip_invalid,
            split="test",
            seed=cfg.seed + 1,
            synth_size=max(2, cfg.synth_size // 4),
            max_chars=cfg.max_chars,
            processor=cfg.processor,
        )
        skipped += more
        train = records
    else:
        train, held = split_by_prompt(records, cfg.eval_split, cfg.seed)
    train = take_fraction(train, cfg.frac, cfg.seed, cfg.max_samples)
    held = take_fraction(held, cfg.frac, cfg.seed)
    return train, held, skipped


def run_reward(
    cfg: RewardConfig, console: Any = None, callbacks: list | None = None, store_path: str | None = None
) -> RewardResult:
    """Train a reward model as ``cfg`` says; returns where it is and how it scored before and after."""
    from transformers import set_seed

    from rerankctl import paths
    from rerankctl.data.preference_dataset import PreferenceCollator, PreferencePairDataset
    from rerankctl.models.reward import load_reward_tokenizer
    from rerankctl.train.reward_eval import reward_metrics, score_dataset, write_reports
    from rerankctl.train.reward_store import RewardStoreCallback, progress_callback
    from rerankctl.train.run_state import begin_training
    from rerankctl.train.trackers import attach_trackers

    if cfg.eval_only:
        return run_reward_eval(cfg, store_path=store_path)
    check_8bit(cfg)
    from rerankctl.models.flash import check_attn_implementation

    check_attn_implementation(cfg.attn_implementation)
    model_path = resolve_model_path(cfg)  # first: building the built-in model seeds torch itself
    set_seed(cfg.seed)
    tokenizer = load_reward_tokenizer(model_path)
    train_records, eval_records, skipped = load_splits(cfg)
    train_ds = PreferencePairDataset(train_records, tokenizer, cfg.max_length)
    eval_ds = PreferencePairDataset(eval_records, tokenizer, cfg.max_length) if eval_records else None
    run_name = cfg.run_name or f"reward-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(cfg.output) if cfg.output else paths.runs_dir() / run_name
    session = begin_training(
        "reward",
        config=cfg.to_dict(),
        name=run_name,
        output_dir=output_dir,
        tags=cfg.tags,
        store_path=store_path,
        resolve_resume=lambda: resolve_resume(cfg.resume, output_dir),
    )
    writer, resume = session.writer, session.resume
    with session.status():
        if writer is not None:
            writer.log_event(
                f"model {model_path}; {len(train_ds)} train pairs, {len(eval_ds or [])} eval pairs; "
                f"{skipped} skipped, {train_ds.truncated} truncated"
            )
        model = build_model(cfg, model_path, tokenizer)
        args = training_arguments(cfg, output_dir, has_eval=eval_ds is not None)
        cbs = (
            list(callbacks)
            if callbacks is not None
            else [RewardStoreCallback(writer), *progress_callback(console, run_name)]
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            data_collator=PreferenceCollator(tokenizer.pad_token_id),
            callbacks=cbs,
            compute_metrics=_metrics,
            use_margin=cfg.margin,
            center_rewards=cfg.center_rewards,
        )
        trainer.writer = writer
        attach_trackers(trainer, writer)
        baseline: dict[str, float] = {}
        if eval_ds is not None and resume is None:
            baseline = _strip(trainer.evaluate_before_training())
            if writer is not None:
                writer.log_metrics(0, {f"eval_{k}": v for k, v in baseline.items()})
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - started
        final_dir = output_dir / "final_model"
        final, report = {}, None
        if not trainer.is_world_process_zero():
            # One writer: under several processes only global rank 0 saves, scores and reports.
            return RewardResult(
                None, output_dir, final_dir, baseline, final, trainer.state.global_step, seconds
            )
        model.save_pretrained(final_dir, merge_lora=True)
        if eval_ds is not None:
            scores = score_dataset(model, eval_ds, cfg.eval_batch)
            final = reward_metrics(scores["chosen"], scores["rejected"], scores["lengths"], scores["margins"])
            extra = {
                "model": str(final_dir),
                "baseline": baseline,
                "global_step": trainer.state.global_step,
                "best_step": trainer.best_step,
                "train_seconds": round(seconds, 2),
            }
            report = write_reports(output_dir, final, scores, extra=extra)["json"]
        if writer is not None:
            writer.log_artifact("final", str(final_dir), step=trainer.state.global_step)
            if report is not None:
                writer.log_artifact("report", str(report), step=trainer.state.global_step)
                for key, value in final.items():
                    writer.log_eval(
                        Path(cfg.eval_dataset or cfg.dataset).name, key, value, model=str(final_dir)
                    )
            summary = {"train_seconds": round(seconds, 2), "global_step": trainer.state.global_step}
            summary.update({f"baseline_{k}": v for k, v in baseline.items()})
            summary.update({f"final_{k}": v for k, v in final.items()})
            writer.set_summary(summary)
            writer.finish("completed")
        return RewardResult(
            writer.id if writer else None,
            output_dir,
            final_dir,
            baseline,
            final,
            trainer.state.global_step,
            seconds,
            report,
        )


def _metrics(eval_pred: Any) -> dict[str, float]:
    from rerankctl.train.reward_eval import compute_metrics_fn

    return compute_metrics_fn(eval_pred)


def _strip(metrics: dict[str, float]) -> dict[str, float]:
    skip = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch"}
    return {k.removeprefix("eval_"): v for k, v in metrics.items() if k not in skip}


def run_reward_eval(
    cfg: RewardConfig, store_path: str | None = None, output: str | None = None, data: str | None = None
) -> RewardResult:
    """Evaluate a trained reward model (``--eval-only`` / ``eval reward``) and write the reports."""
    from rerankctl import paths
    from rerankctl.data.preference_dataset import PreferencePairDataset, take_fraction
    from rerankctl.errors import UsageError
    from rerankctl.models.loading import pick_device
    from rerankctl.models.reward import RewardModel
    from rerankctl.train.reward_data import load_preferences
    from rerankctl.train.reward_eval import reward_metrics, score_dataset, write_reports
    from rerankctl.train.reward_store import open_run

    model_path = cfg.model_path
    if not model_path:
        raise UsageError("--eval-only needs --model-path", hint="point it at a final_model/ folder")
    source = data or cfg.eval_dataset or cfg.dataset
    if not source:
        raise UsageError("no evaluation data", hint="pass --eval-dataset FILE (or --dataset)")
    model = RewardModel.from_pretrained(model_path, device=pick_device())
    records, skipped = load_preferences(
        source,
        dataset_format=cfg.dataset_format,
        skip_invalid=cfg.skip_invalid,
        split="test",
        synth_size=max(2, cfg.synth_size // 4),
        seed=cfg.seed + 1,
        max_chars=cfg.max_chars,
        processor=cfg.processor,
    )
    records = take_fraction(records, cfg.frac, cfg.seed, cfg.max_samples)
    dataset = PreferencePairDataset(records, model.tokenizer, cfg.max_length)
    run_name = cfg.run_name or f"reward-eval-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output or cfg.output or paths.runs_dir() / run_name)
    store, writer = open_run("reward-eval", cfg.to_dict(), run_name, output_dir, cfg.tags, store_path)
    try:
        scores = score_dataset(model, dataset, cfg.eval_batch)
        metrics = reward_metrics(scores["chosen"], scores["rejected"], scores["lengths"], scores["margins"])
        extra = {"model": str(model_path), "data": source, "skipped": skipped, "truncated": dataset.truncated}
        written = write_reports(output_dir, metrics, scores, extra=extra)
        if writer is not None:
            name = Path(source).name
            for key, value in metrics.items():
                writer.log_eval(name, key, value, model=str(model_path))
            for fmt, path in written.items():
                writer.log_artifact("report", str(path), meta={"format": fmt})
            writer.set_summary(metrics)
            writer.finish("completed")
        return RewardResult(
            writer.id if writer else None, output_dir, None, {}, metrics, 0, 0.0, written["json"]
        )
    except BaseException as exc:
        if writer is not None:
            writer.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if store is not None:
            store.close()
