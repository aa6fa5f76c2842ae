"""Settings every reranker training run shares (SFT and RL): data, memory, optimisation, bookkeeping.

Declared once here, so `train sft` and `train rl` offer the same options with the same meaning
(the SFT runner's helpers serve both); each command's own config adds what differs (model, group
sampling defaults, loss, learning rate and schedule, seed).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from rerankctl.config.base import (
    BUILTIN,
    DATA,
    GRAD_ACCUM_FLAGS,
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

#: The built-in synthetic rerank data (rerankctl/data/synth.py).
BUILTIN_SYNTH_DATA = "builtin:synth-rerank"


def _chunk_size(value: Any) -> str:
    """``auto`` or a whole number of documents >= 0 (kept as text: one type for flag, TOML and store)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool):
        raise ValueError("chunk_size is 'auto' or a number of documents")
    try:
        number = int(str(value).strip()) if not isinstance(value, float) or value.is_integer() else None
    except ValueError:
        number = None
    if number is None or number < 0:
        raise ValueError(
            f"chunk_size must be 'auto' or a number of documents >= 0 (0 = all at once), got {value!r}"
        )
    return str(number)


#: ``chunk_size``: "auto" (the default; train/auto_chunk.py) or "N" documents per autograd pass.
ChunkSize = Annotated[str, BeforeValidator(_chunk_size)]
CHUNK_SIZE_HELP = (
    "Documents per forward pass with autograd; exact gradients (GradCache). auto = the largest that "
    "fits the free GPU/host memory, from a measured activation cost per document; 0 = all at once."
)


class RankerRunSettings(StrictConfig):
    """Logging, evaluation, checkpointing and resume settings of `train sft` and `train rl`."""

    cli_sections = {
        "data": DATA,
        "output": RUNS,
        "instruction": DATA,
        "chunk_size": MODEL,
        "epochs": OPTIM,
        "logging_steps": RUNS,
        "dataloader_workers": DATA,
        "attn_implementation": MODEL,
        "synth_train_queries": BUILTIN,
    }

    data: str | None = Field(
        None,
        description=f"Training data (JSONL/Parquet/CSV or hub name). `{BUILTIN_SYNTH_DATA}` = built-in synth set.",
        json_schema_extra=cli(check="dataset"),
    )
    eval_data: str | None = Field(
        None,
        description="Held-out data for NDCG@10/MRR/MAP during training (all documents of each query).",
        json_schema_extra=cli(check="dataset"),
    )
    processor: ProcessorSpec = Field(None, description=PROCESSOR_HELP, json_schema_extra=PROCESSOR_FLAGS)
    max_samples: int | None = Field(
        None,
        ge=1,
        description="Read only the first N training records (file order, before --processor and --min-pos/"
        "--min-neg; the seed tool's --max-samples).",
    )
    min_pos: int = Field(
        0,
        ge=0,
        description="Drop training groups with fewer positives than this (counted in the run's events).",
    )
    min_neg: int = Field(
        0,
        ge=0,
        description="Drop training groups with fewer negatives than this (counted in the run's events).",
    )
    output: str | None = Field(
        None,
        description="Output directory (default: $RERANKCTL_HOME/runs/<run name>).",
        json_schema_extra=OUTPUT_FLAGS,
    )
    run_name: str | None = Field(None, description="Name of the run in the run store (default: generated).")
    tags: list[str] = Field(
        default_factory=list, description="Tags stored with the run.", json_schema_extra=TAG_FLAGS
    )
    instruction: str | None = Field(
        None, description="Instruction for records without one (default: web search)."
    )

    # Groups
    max_length: int = Field(
        512, ge=64, description="Prompt length limit in tokens; the document is cut first."
    )
    filter_overlength: bool = Field(
        False,
        description="Drop documents longer than max_length instead of truncating.",
        json_schema_extra=cli(off="--truncate"),
    )

    # Memory
    chunk_size: ChunkSize = Field(
        "auto", description=CHUNK_SIZE_HELP, json_schema_extra=cli(metavar="N|auto")
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in backward to save memory."
    )
    # Optimisation
    epochs: float = Field(
        1.0, gt=0, description="Passes over the training data (ignored when max_steps > 0)."
    )
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1 = use epochs).")
    batch_size: int = Field(4, ge=1, description="Query groups per device per step.")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Micro-batches per optimizer step.", json_schema_extra=GRAD_ACCUM_FLAGS
    )
    warmup_ratio: float = Field(0.05, ge=0, le=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 = off).")
    optim: str = Field(
        "adamw_torch_fused",
        description="Hugging Face optimizer name (default adamw_torch_fused: one fused kernel; adamw_torch, adamw_bnb_8bit, ...).",
    )
    bf16: bool = Field(False, description="bf16 mixed precision (GPU).")
    fp16: bool = Field(False, description="fp16 mixed precision (GPU).")
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
    shared_prefix: bool = Field(
        True,
        description="Encode each query's prompt head once for all its documents (exact; off: one row per document).",
    )

    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig,
        description="Processes, machines and sharding strategy.",
        json_schema_extra=cli(prefix=""),
    )

    # Built-in data sizes (only used with builtin:synth-rerank)
    synth_train_queries: int = Field(2000, ge=1, description="Queries in the built-in training set.")
    synth_eval_queries: int = Field(200, ge=1, description="Queries in the built-in held-out set.")

    @model_validator(mode="after")
    def _precision(self) -> RankerRunSettings:
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are mutually exclusive")
        check_processor_sources(self.processor, self.data, self.eval_data)
        return self
