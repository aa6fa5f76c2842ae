"""Configuration of `rerankctl train vl-reward` (defaults < preset < flags)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rerankctl.config.base import (
    BATCH_FLAGS,
    DATA,
    EVAL_BATCH_FLAGS,
    LOSS,
    LR_FLAGS,
    MODEL,
    OPTIM,
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

BUILTIN_TINY_VL_MODEL = "builtin:tiny-qwen2vl"
BUILTIN_SYNTH_VL = "builtin:synth-vl"


class VLRewardConfig(StrictConfig):
    """Everything `train vl-reward` needs; every field is a flag and a preset key."""

    cli_sections = {
        "model": MODEL,
        "train_data": DATA,
        "loss": LOSS,
        "lr": OPTIM,
        "eval_steps": RUNS,
        "test_only": "Test only",
    }

    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig,
        description="Processes, machines and sharding strategy.",
        json_schema_extra=cli(prefix=""),
    )

    # Model
    model: str = Field(
        "Qwen/Qwen2-VL-2B-Instruct",
        description=f"Qwen2-VL / Qwen2.5-VL hub id or directory; `{BUILTIN_TINY_VL_MODEL}` = tiny random.",
        json_schema_extra=cli(check="model"),
    )
    score_min: float = Field(
        -5.0, description="Lowest score the head can give (the original tool's range is -5..5)."
    )
    score_max: float = Field(5.0, description="Highest score the head can give.")
    min_pixels: int = Field(56 * 56, ge=28 * 28, description="Images smaller than this are upscaled.")
    max_pixels: int = Field(28 * 28 * 1280, ge=28 * 28, description="Images larger than this are downscaled.")
    max_length: int = Field(2048, ge=32, description="Token limit of image + query + response.")
    max_chars: int = Field(DEFAULT_MAX_CHARS, ge=0, description=MAX_CHARS_HELP)
    flash_attention: bool | None = Field(
        None,
        description=(
            "flash_attention_2: on = required (refused where flash-attn or a CUDA GPU is missing), "
            "off = never, unset = when usable."
        ),
    )
    freeze_vision: bool = Field(
        False, description="Freeze the vision tower.", json_schema_extra=cli(off="--train-vision")
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    bf16: bool = Field(False, description="bf16 mixed precision.")

    # Data
    train_data: str | None = Field(
        None,
        description=f"VL preference JSONL; `{BUILTIN_SYNTH_VL}` = synthetic shapes.",
        json_schema_extra=cli("--data", check="dataset", hidden=("--train-data",)),
    )
    val_data: str | None = Field(
        None,
        description="Validation JSONL (default: 20% of the training records).",
        json_schema_extra=cli("--eval-data", check="dataset", hidden=("--val-data",)),
    )
    test_data: str | None = Field(
        None,
        description="Test JSONL scored after training or with --test-only.",
        json_schema_extra=cli(check="dataset"),
    )
    processor: ProcessorSpec = Field(None, description=PROCESSOR_HELP, json_schema_extra=PROCESSOR_FLAGS)
    max_samples: int | None = Field(
        None,
        ge=1,
        description="Read only the first N training records (file order, before --processor; the seed "
        "tool's --max-samples).",
    )
    synth_size: int = Field(200, ge=4, description="Records generated for the built-in synth data.")
    skip_invalid: bool = Field(False, description="Skip malformed records instead of stopping.")

    # Loss
    loss: Literal["bradley_terry", "margin"] = Field(
        "bradley_terry",
        description="bradley_terry: -log sigmoid(s_c - s_r); margin: max(0, margin - (s_c - s_r)).",
    )
    margin: float = Field(1.0, ge=0.0, description="Margin of the margin loss (in score units).")

    # Optimisation
    lr: float = Field(1e-5, gt=0.0, description="Peak learning rate.", json_schema_extra=LR_FLAGS)
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of steps with linear warmup.")
    lr_scheduler: str = Field("cosine", description="Scheduler (linear, cosine, constant, ...).")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping norm (0: off).")
    epochs: float = Field(3.0, gt=0.0, description="Training epochs.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: all epochs).")
    batch: int = Field(2, ge=1, description="Pairs per device per step.", json_schema_extra=BATCH_FLAGS)
    eval_batch: int = Field(
        4, ge=1, description="Pairs per evaluation batch.", json_schema_extra=EVAL_BATCH_FLAGS
    )
    grad_accum: int = Field(8, ge=1, description="Gradient accumulation steps.")
    seed: int = Field(42, description="Random seed.")

    # Evaluation, checkpoints, early stopping
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (default: each epoch).")
    save_steps: int | None = Field(
        None, ge=1, description="Checkpoint every N steps (default: with evaluation)."
    )
    save_total_limit: int = Field(
        3, ge=1, description="Keep this many checkpoint_step_N folders (older are removed)."
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after N evaluations without a better validation accuracy."
    )
    logging_steps: int = Field(10, ge=1, description="Log the loss every N steps.")
    log_samples: int = Field(
        0, ge=0, description="Log this many scored validation pairs as run events per evaluation."
    )
    report_to: ReportTo = Field(
        default_factory=list, description="Extra trackers: wandb, tensorboard, mlflow, swanlab."
    )

    # Runs and resume
    output_dir: str | None = Field(
        None,
        description="Parent of run directories (default: $RERANKCTL_HOME/runs).",
        json_schema_extra=cli("--output", "-o", hidden=("--output-dir",), metavar="PATH"),
    )
    experiment_name: str = Field(
        "vl-reward", description="Run directories are named <experiment>_<timestamp>."
    )
    run_name: str | None = Field(
        None, description="Run name in the store (default: the run directory's name)."
    )
    tags: list[str] = Field(
        default_factory=list, description="Tags stored with the run.", json_schema_extra=TAG_FLAGS
    )
    resume: str | None = Field(
        None, description="checkpoint_step_N folder, or 'latest' (newest run of the experiment)."
    )
    load_weights_only: bool = Field(
        False, description="With --resume: take the weights, start fresh optimizer/schedule."
    )

    # Test only
    test_only: bool = Field(
        False, description="Score --test-data with --model-path and write JSONL; no training."
    )
    model_path: str | None = Field(
        None, description="Trained VL reward model for --test-only.", json_schema_extra=cli(check="model")
    )
    test_output: str | None = Field(
        None, description="JSONL file for test scores (default: <run dir>/test_scores.jsonl)."
    )

    def unused_fields(self) -> set[str]:
        # --test-only scores --test-data with --model-path: the base model and training data are not read
        return {"model", "train_data", "val_data"} if self.test_only else set()

    @model_validator(mode="after")
    def _check(self) -> VLRewardConfig:
        if self.score_max <= self.score_min:
            raise ValueError("score_max must be greater than score_min")
        if self.max_pixels < self.min_pixels:
            raise ValueError("max_pixels must be at least min_pixels")
        check_processor_sources(self.processor, self.train_data, self.val_data)
        return self
