"""Configuration of `rerankctl eval` (endpoints, local models, MTEB or a local file) and `eval reward`.

Every field is a flag (built by rerankctl/cli/_options.py) and a key of a ``--preset FILE``.
:class:`EvalConfig` is also the Python API's ``EvalOptions`` (rerankctl/eval/runner.py): the
command line and ``run_eval(EvalOptions(...))`` read the same fields. Ranges that
:func:`rerankctl.eval.runner.validate` checks (with the flag named) are not repeated here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from rerankctl.config.base import PROCESSOR_FLAGS, ProcessorSpec, StrictConfig, cli
from rerankctl.config.scoring import (
    BATCH_FLAGS,
    ENDPOINTS_FLAGS,
    INPUT_FLAGS,
    JSON_FLAGS,
    MODEL_FLAGS,
    OUTPUT,
    OUTPUT_FLAGS,
    PATH,
    SCORING,
    URL,
    ScoringSettings,
)
from rerankctl.data.limits import DEFAULT_MAX_CHARS

SOURCES = "What to evaluate"
ENDPOINTS = "Endpoints"
TWO_STAGE = "Two-stage retrieval"
LOCAL = "Local models"
API_KEY_ENV = "RERANKCTL_API_KEY"


def _split_values(cls: type, value: Any) -> Any:
    """``a,b`` is two values (the flags take several: ``--endpoints a b``, repeated or comma-separated)."""
    if isinstance(value, dict):  # gpu_map as Python gives it: {dir: index}
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [part.strip() for v in value for part in v.split(",") if part.strip()]
    return value


class EvalConfig(ScoringSettings):
    """Everything `rerankctl eval` needs (``EvalOptions`` in Python)."""

    cli_sections = {"endpoints": SOURCES, "device": SCORING, "model_workers": LOCAL, "api_key": ENDPOINTS,
                    "two_stage": TWO_STAGE, "output": OUTPUT}  # fmt: skip

    endpoints: list[str] = Field(
        default_factory=list,
        description="Rerank endpoint URL(s), e.g. http://127.0.0.1:9997.",
        json_schema_extra=ENDPOINTS_FLAGS,
    )
    models: list[str] = Field(
        default_factory=list,
        description="Local model dir(s) scored in-process, no server.",
        json_schema_extra=MODEL_FLAGS,
    )
    datasets: list[str] = Field(
        default_factory=list,
        description="Groups (chinese, english, multilingual, other, code, all) or MTEB task names "
        "(default: chinese).",
        json_schema_extra=cli("--datasets", "-d", hidden=("--dataset",), metavar="NAME"),
    )
    input: str | None = Field(
        None,
        description="A rerank-format JSONL/Parquet/CSV file instead of MTEB.",
        json_schema_extra=INPUT_FLAGS,
    )
    processor: ProcessorSpec = Field(
        None,
        description="FILE:CLASS: a Python file and the class (or function) in it that turns each record of "
        "--input into rerankctl's rerank format (return None to drop it). See rerankctl/data/processor.py.",
        json_schema_extra=PROCESSOR_FLAGS,
    )
    baseline: bool = Field(
        False,
        description="Also score the first stage's own order (the file's `scores`/`pos_scores`, else the "
        "order of its `docs`; with --two-stage, the embedding ranking) and show each model's delta to it.",
    )
    max_samples: int | None = Field(None, description="Evaluate only the first N queries of each task split.")
    max_chars: int = Field(
        DEFAULT_MAX_CHARS,
        description="Characters kept per query/document of --input before tokenising (0 = all).",
    )
    batch_size: int = Field(
        32,
        description="Documents per request (endpoints) or per forward pass (local models).",
        json_schema_extra=BATCH_FLAGS,
    )

    # Local models
    model_workers: int = Field(
        2, description="Models evaluated at the same time (endpoints: one process each)."
    )
    gpu_map: list[str] = Field(
        default_factory=list,
        description="Pin local models to GPUs: DIR=INDEX.",
        json_schema_extra=cli(metavar="DIR=INDEX"),
    )
    max_models_per_gpu: int = Field(1, description="Local models loaded on one GPU at a time.")

    # Endpoints
    api_key: str | None = Field(
        None, description="Bearer key for the endpoints.", json_schema_extra=cli(envvar=API_KEY_ENV)
    )
    max_concurrency: int = Field(8, description="Requests in flight per endpoint.")
    timeout: float = Field(60.0, description="Seconds per HTTP request.")
    retries: int = Field(3, ge=0, description="Retries of a failed or timed-out request (with backoff).")
    proxy: str | None = Field(
        None, description="HTTP(S) proxy for dataset downloads (loopback and the endpoints bypass it)."
    )

    # Two-stage
    two_stage: bool = Field(
        False,
        description="Retrieve top-k with an embedding model first, then rerank (retrieval tasks, nDCG@10).",
    )
    embedding_endpoint: str | None = Field(
        None,
        description="OpenAI-style /v1/embeddings URL for --two-stage.",
        json_schema_extra=URL,
    )
    embedding_model: str | None = Field(
        None,
        description="Local sentence-transformers model dir for --two-stage.",
        json_schema_extra=PATH,
    )
    embedding_name: str | None = Field(None, description="The 'model' field sent to --embedding-endpoint.")
    top_k: int = Field(100, description="First-stage candidates per query for --two-stage.")

    # Output
    output: str | None = Field(
        None, description="Directory for eval.json / eval.md (default: under the rerankctl home).",
        json_schema_extra=OUTPUT_FLAGS,
    )  # fmt: skip
    plot: bool = Field(False, description="Also write eval.png, a bar chart (needs matplotlib).")
    store: bool = Field(True, description="Record the results in the run store.")
    as_json: bool = Field(
        False,
        description="Print the JSON report on stdout instead of the table.",
        json_schema_extra=JSON_FLAGS,
    )
    list_datasets: bool = Field(
        False, description="Print the groups, their tasks, languages and main scores, and exit."
    )

    _split = field_validator("endpoints", "models", "datasets", "gpu_map", mode="before")(_split_values)

    @property
    def gpu_placements(self) -> dict[str, int] | None:
        """``--gpu-map DIR=INDEX`` as ``{dir: index}`` (None when not given)."""
        return parse_gpu_map(self.gpu_map)

    def recorded(self) -> dict[str, Any]:
        """What the run store keeps of this config: no secrets (the key, the proxy), no output switches."""
        return self.model_dump(mode="json", exclude={"api_key", "proxy", "as_json", "list_datasets"})


def parse_gpu_map(values: list[str] | None) -> dict[str, int] | None:
    """``["runs/a=0", "b=1,c=1"]`` as ``{"runs/a": 0, "b": 1, "c": 1}``; a malformed entry is a UsageError."""
    from rerankctl.errors import UsageError

    if not values:
        return None
    out: dict[str, int] = {}
    for item in (part.strip() for value in values for part in value.split(",") if part.strip()):
        model, sep, gpu = item.rpartition("=")
        if not sep or not model or not gpu.strip().isdigit():
            raise UsageError(
                f"--gpu-map {item!r}: expected MODEL_DIR=GPU_INDEX", hint="e.g. --gpu-map runs/a/final=0"
            )
        out[model] = int(gpu)
    return out


class EvalRewardConfig(StrictConfig):
    """`rerankctl eval reward`: a reward model's preference accuracy on pairs (builds a RewardConfig)."""

    cli_sections = {"model": SOURCES, "output": OUTPUT}

    model: str = Field(
        ...,
        description="Reward model directory (a `train reward` final_model/ or checkpoint).",
        json_schema_extra=MODEL_FLAGS,
    )
    data: str = Field(
        ...,
        description="Preference pairs: JSONL/Parquet/CSV file or hub name.",
        json_schema_extra=cli("--data", hidden=("--dataset", "--eval-data"), metavar="PATH"),
    )
    dataset_format: str | None = Field(None, description="Convert the file from hh-rlhf, rm-static, ...")
    batch_size: int = Field(16, ge=1, description="Pairs per batch.", json_schema_extra=BATCH_FLAGS)
    max_length: int = Field(1024, ge=16, description="Prompt + response token limit.")
    frac: float = Field(1.0, gt=0, le=1, description="Evaluate a random fraction of the pairs.")
    max_samples: int | None = Field(None, ge=1, description="At most this many pairs.")
    skip_invalid: bool = Field(False, description="Skip malformed records.")
    output: str | None = Field(None, description="Where the reports go.", json_schema_extra=OUTPUT_FLAGS)
    run_name: str | None = Field(None, description="Run name in the run store.")
    as_json: bool = Field(False, description="Print the metrics as JSON.", json_schema_extra=JSON_FLAGS)


class EvalParityConfig(StrictConfig):
    """`rerankctl eval parity`: the same pairs through the local model and each endpoint or export."""

    model: str = Field(
        ...,
        description="The model the endpoints should serve.",
        json_schema_extra=MODEL_FLAGS,
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Rerank endpoints (space- or comma-separated).",
        json_schema_extra=ENDPOINTS_FLAGS,
    )
    export: list[str] = Field(
        default_factory=list,
        description="A seq-cls export to score through sentence-transformers CrossEncoder and transformers too.",
        json_schema_extra=PATH,
    )
    max_length: int = Field(1024, ge=16, description="Token limit of the local model.")
    instruction: str | None = Field(None, description="Instruction sent with every pair.")
    threshold: float = Field(1e-5, ge=0, description="Largest |Δp| allowed; past it the exit code is 1.")
    top_k: int = Field(3, ge=1, description="k of the top-k order flips.")
    api_key: str | None = Field(
        None, description="Bearer key for the endpoints.", json_schema_extra=cli(envvar=API_KEY_ENV)
    )
    as_json: bool = Field(False, description="Print the results as JSON.", json_schema_extra=JSON_FLAGS)

    _split = field_validator("endpoints", "export", mode="before")(_split_values)
