"""Configuration of `rerankctl serve` (every field is a flag; cli/serve.py checks the cross-flag limits).

The scoring fields (``--device``, ``--dtype``, ``--quantize``, ``--max-length``, ``--shared-prefix``,
``--instruction``) come from :class:`~rerankctl.config.scoring.ScoringSettings`, as in `eval` and
`rerank`. The request limits are checked by cli/serve.py with the flag named (not by ``ge=`` here),
so ``--max-batch-tokens 0`` reads "--max-batch-tokens must be at least 1".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rerankctl.config.base import cli
from rerankctl.config.eval import API_KEY_ENV
from rerankctl.config.scoring import MODEL_FLAGS, SCORING, ScoringSettings
from rerankctl.data.limits import DEFAULT_MAX_CHARS

SERVER = "Server"
BATCHING = "Batching"
LIMITS = "Request limits"


class ServeConfig(ScoringSettings):
    """Everything `rerankctl serve` needs."""

    cli_sections = {"model": SCORING, "port": SERVER, "max_batch_tokens": BATCHING, "max_docs": LIMITS}

    model: str = Field(
        ...,
        description="Model directory: causal-LM reranker, PEFT adapter, exported seq-cls model or "
        "CrossEncoder (any name with --backend noop).",
        json_schema_extra=MODEL_FLAGS,
    )
    backend: Literal["torch", "vllm", "noop"] = Field(
        "torch",
        description="torch (in-process), vllm (GPU + vLLM), or noop (no model: for testing clients and "
        "the HTTP layer).",
    )
    cpu_threads: int | None = Field(
        None, description="torch CPU threads for scoring (default: torch's choice; 1 suits a busy machine)."
    )

    # Server
    port: int = Field(9997, description="TCP port (0: any free port, printed at start).")
    host: str = Field("127.0.0.1", description="Address to bind; 0.0.0.0 exposes the server to the network.")
    api_key: str | None = Field(
        None,
        description="Require 'Authorization: Bearer KEY' on every route but /health, /docs and /openapi.json.",
        json_schema_extra=cli(envvar=API_KEY_ENV),
    )
    served_model_name: str | None = Field(
        None, description="Name reported in responses and /v1/models (default: --model)."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "info", description="uvicorn log level."
    )
    graceful_timeout: float = Field(30.0, description="Seconds to let in-flight requests finish on shutdown.")

    # Batching
    max_batch_tokens: int = Field(
        16384, description="Prompt tokens per scoring batch (padded, per forward pass)."
    )
    max_batch_size: int = Field(64, description="Pairs per forward pass at most (raise on a large GPU).")
    max_gather_tokens: int = Field(
        131072,
        description="Prompt tokens taken from the queue at once, sorted by length and cut into forward "
        "passes (more: less padding, later answers).",
    )
    max_wait_ms: float = Field(5.0, description="How long a request waits for others to share its batch.")
    batching: bool = Field(
        True, description="Batch concurrent requests together (off: one batch per request)."
    )

    # Request limits
    max_docs: int = Field(1000, description="Documents per request at most (more: 413).")
    max_doc_chars: int = Field(DEFAULT_MAX_CHARS, description="Characters per document at most (more: 413).")
    max_query_chars: int = Field(20_000, description="Characters per query at most (more: 413).")
    max_queue_docs: int = Field(
        20_000,
        description="Documents queued at once before answering 503 (at least --max-docs, else an error).",
    )
