"""Configuration of `rerankctl train reward` (defaults < preset < --size profile < flags)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from rerankctl.config.base import (
    BATCH_FLAGS,
    DATA,
    EVAL_BATCH_FLAGS,
    LORA_FLAGS,
    LOSS,
    LR_FLAGS,
    MODEL,
    OPTIM,
    OUTPUT_FLAGS,
    PROCESSOR_FLAGS,
    PROCESSOR_HELP,
    RUNS,
    TAG_FLAGS,
    ProcessorSpec,
    ReportTo,
    StrictConfig,
    check_processor_sources,
    cli,
)
from rerankctl.config.distributed import DistributedConfig
from rerankctl.data.limits import DEFAULT_MAX_CHARS, MAX_CHARS_HELP

BUILTIN_TINY_MODEL = "builtin:tiny-qwen3"
BUILTIN_SYNTH_PREFERENCE = "builtin:synth-preference"
SIZES = ("small", "medium", "large")


class RewardLoRAConfig(StrictConfig):
    """LoRA adapter on the backbone (the value head is always trained in full)."""

    enabled: bool = Field(
        False,
        description="Train a LoRA adapter instead of all backbone weights.",
        json_schema_extra=LORA_FLAGS,
    )
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names that get adapters.",
        json_schema_extra=cli("--target-modules", hidden=("--lora-target-modules",)),
    )


class SizeProfile(StrictConfig):
    """One `--size` profile: how many samples, the batch and the learning rate."""

    max_samples: int | None = Field(None, ge=1, description="Training pairs to use (None: all).")
    batch: int | None = Field(None, ge=1, description="Per-device batch size (pairs).")
    lr: float | None = Field(None, gt=0, description="Learning rate.")


class RewardConfig(StrictConfig):
    """Everything `train reward` and `--eval-only` need; every field is a flag and a preset key."""

    cli_sections = {
        "model": MODEL,
        "dataset": DATA,
        "output": RUNS,
        "head": MODEL,
        "margin": LOSS,
        "lr": OPTIM,
        "logging_steps": RUNS,
        "eval_only": "Evaluation only",
        "size": "Options",
    }

    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig,
        description="Processes, machines and sharding strategy.",
        json_schema_extra=cli(prefix=""),
    )

    # What to train on
    model: str = Field(
        "Qwen/Qwen3-0.6B",
        description=f"Backbone causal LM (hub id or directory); `{BUILTIN_TINY_MODEL}` = tiny random.",
        json_schema_extra=cli(check="model"),
    )
    dataset: str | None = Field(
        None,
        json_schema_extra=cli("--data", check="dataset", hidden=("--dataset",)),
        description="Preference data: JSONL/Parquet/CSV file or hub name (Anthropic/hh-rlhf, lvwerra/stack-exchange-"
        f"paired, Dahoas/rm-static, Dahoas/full-hh-rlhf, nvidia/HelpSteer3); `{BUILTIN_SYNTH_PREFERENCE}` = synth.",
    )
    dataset_format: str | None = Field(
        None,
        description="Convert local files from this shape first (hh-rlhf, stack-exchange-paired, rm-static, ...).",
    )
    processor: ProcessorSpec = Field(None, description=PROCESSOR_HELP, json_schema_extra=PROCESSOR_FLAGS)
    eval_dataset: str | None = Field(
        None,
        description="Held-out preference data (default: 20% of prompts of --data).",
        json_schema_extra=cli("--eval-data", check="dataset", hidden=("--eval-dataset",)),
    )
    eval_split: float = Field(
        0.2, ge=0.0, lt=1.0, description="Fraction of prompts held out when no --eval-data."
    )
    frac: float = Field(1.0, gt=0.0, le=1.0, description="Use this random fraction of the data.")
    max_samples: int | None = Field(
        None, ge=1, description="At most this many training pairs (after --frac)."
    )
    skip_invalid: bool = Field(False, description="Skip (and count) malformed records instead of stopping.")
    synth_size: int = Field(400, ge=2, description="Pairs generated for the built-in synth data.")
    output: str | None = Field(
        None,
        description="Output directory (default: $RERANKCTL_HOME/runs/<run name>).",
        json_schema_extra=OUTPUT_FLAGS,
    )
    run_name: str | None = Field(None, description="Run name in the store (default: reward-<timestamp>).")
    tags: list[str] = Field(
        default_factory=list, description="Tags stored with the run.", json_schema_extra=TAG_FLAGS
    )

    # Model
    head: Literal["linear", "mlp"] = Field(
        "mlp", description="Value head: linear, or MLP hidden -> hidden/2 -> 1."
    )
    pooling: Literal["last", "mean"] = Field(
        "last", description="Pool the last non-pad token or the masked mean."
    )
    freeze_layers: int = Field(0, ge=0, description="Freeze the first N transformer layers.")
    freeze_embeddings: bool = Field(
        False, description="Freeze the input embeddings.", json_schema_extra=cli(off="--train-embeddings")
    )
    lora: RewardLoRAConfig = Field(default_factory=RewardLoRAConfig, description="LoRA settings.")
    max_length: int = Field(
        512, ge=8, description="Longest prompt + response in tokens (prompt is cut first)."
    )
    max_chars: int = Field(DEFAULT_MAX_CHARS, ge=0, description=MAX_CHARS_HELP)
    attn_implementation: str | None = Field(
        None, description="eager, sdpa or flash_attention_2 (default: transformers)."
    )

    # Loss
    margin: bool = Field(
        False, description="Use the data's `margin` column: -log sigmoid(r_c - r_r - margin)."
    )
    center_rewards: float | None = Field(
        None, ge=0.0, description="Reward-centering coefficient (adds coef * mean((r_c + r_r)^2)); e.g. 0.01."
    )

    # Optimisation
    lr: float = Field(1e-5, gt=0.0, description="Peak learning rate.", json_schema_extra=LR_FLAGS)
    epochs: float = Field(1.0, gt=0.0, description="Training epochs.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    batch: int = Field(4, ge=1, description="Pairs per device per step.", json_schema_extra=BATCH_FLAGS)
    eval_batch: int = Field(
        16, ge=1, description="Pairs per evaluation batch.", json_schema_extra=EVAL_BATCH_FLAGS
    )
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="Fraction of steps with linear warmup.")
    lr_scheduler: str = Field("linear", description="Scheduler name (linear, cosine, constant, ...).")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping norm (0: off).")
    bf16: bool = Field(False, description="bf16 mixed precision (GPU or CPU with bf16 support).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    optim_8bit: bool = Field(
        False,
        description="8-bit AdamW from bitsandbytes (needs a GPU).",
        json_schema_extra=cli("--8bit-optim"),
    )
    model_8bit: bool = Field(
        False,
        description="Load the backbone in 8 bit with bitsandbytes (needs a GPU; use LoRA).",
        json_schema_extra=cli("--8bit-model"),
    )
    seed: int = Field(42, description="Random seed (data split, subset, init of the head).")

    # Bookkeeping
    logging_steps: int = Field(10, ge=1, description="Log the loss every N steps.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (default: each epoch).")
    save_steps: int | None = Field(
        None, ge=1, description="Checkpoint every N steps (default: with evaluation)."
    )
    save_total_limit: int = Field(2, ge=1, description="Keep this many checkpoint_step_N folders.")
    report_to: ReportTo = Field(
        default_factory=list, description="Extra trackers: wandb, tensorboard, mlflow, swanlab."
    )
    resume: str | None = Field(None, description="Resume from a checkpoint_step_N folder, or 'latest'.")

    # Evaluation only
    eval_only: bool = Field(False, description="Only evaluate --model-path on the eval data; no training.")
    model_path: str | None = Field(
        None,
        description="Trained reward model to evaluate with --eval-only.",
        json_schema_extra=cli(check="model"),
    )

    # Size profiles (--size picks one; flags still win)
    size: Literal["small", "medium", "large"] | None = Field(
        None, description="Apply one of the preset's size profiles (samples, batch, lr); flags still win."
    )
    sizes: dict[str, SizeProfile] = Field(
        default_factory=dict,
        description="Size profiles (small/medium/large).",
        json_schema_extra=cli(expose=False),
    )

    @model_validator(mode="after")
    def _processor_has_data(self) -> RewardConfig:
        check_processor_sources(self.processor, self.dataset, self.eval_dataset)
        return self

    def unused_fields(self) -> set[str]:
        return {"model"} if self.eval_only else set()  # --eval-only reads --model-path instead


def apply_size(cfg: RewardConfig, flags: Mapping[str, Any] | None = None) -> RewardConfig:
    """Apply ``cfg.size``'s profile to the fields no flag set (flags beat the profile)."""
    from rerankctl.errors import ConfigError

    if cfg.size is None:
        return cfg
    profile = cfg.sizes.get(cfg.size)
    if profile is None:
        known = ", ".join(cfg.sizes) or "none"
        raise ConfigError(f"no size profile {cfg.size!r}", hint=f"this preset defines: {known}", field="size")
    given = {k for k, v in (flags or {}).items() if v is not None}
    updates = {k: v for k, v in profile.model_dump().items() if v is not None and k not in given}
    return cfg.model_copy(update=updates)
