"""Settings every reranker training run shares (SFT and RL): bookkeeping, evaluation, built-in data."""

from __future__ import annotations

from pydantic import Field

from rerankctl.config.base import BUILTIN, DATA, MODEL, RUNS, ReportTo, StrictConfig, cli
from rerankctl.config.distributed import DistributedConfig
from rerankctl.data.limits import DEFAULT_MAX_CHARS, MAX_CHARS_HELP


class RankerRunSettings(StrictConfig):
    """Logging, evaluation, checkpointing and resume settings of `train sft` and `train rl`."""

    cli_sections = {
        "logging_steps": RUNS,
        "dataloader_workers": DATA,
        "attn_implementation": MODEL,
        "synth_train_queries": BUILTIN,
    }

    # Bookkeeping
    logging_steps: int = Field(10, ge=1, description="Log metrics every N steps.")
    eval_steps: int = Field(0, ge=0, description="Evaluate every N steps (0 = at the end of each epoch).")
    save_steps: int = Field(0, ge=0, description="Checkpoint every N steps (0 = at the end of each epoch).")
    save_total_limit: int | None = Field(
        3, ge=1, description="Keep at most this many checkpoints (the best is kept)."
    )
    eval_max_queries: int | None = Field(
        None, ge=1, description="Evaluate on at most this many held-out queries."
    )
    eval_batch_size: int = Field(32, ge=1, description="Documents per forward pass during evaluation.")
    report_to: ReportTo = Field(
        default_factory=list, description="Extra trackers: wandb, tensorboard, mlflow, swanlab."
    )
    resume: str | None = Field(
        None, description="Checkpoint to resume from, or 'latest' for the newest in output."
    )
    dataloader_workers: int = Field(
        0, ge=0, description="DataLoader worker processes.", json_schema_extra=cli("--workers")
    )
    max_chars: int = Field(DEFAULT_MAX_CHARS, ge=0, description=MAX_CHARS_HELP)
    attn_implementation: str | None = Field(
        None, description="sdpa, eager or flash_attention_2 (default: transformers' choice)."
    )

    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig,
        description="Processes, machines and sharding strategy.",
        json_schema_extra=cli(prefix=""),
    )

    # Built-in data sizes (only used with builtin:synth-rerank)
    synth_train_queries: int = Field(2000, ge=1, description="Queries in the built-in training set.")
    synth_eval_queries: int = Field(200, ge=1, description="Queries in the built-in held-out set.")
