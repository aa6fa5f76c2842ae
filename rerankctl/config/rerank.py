"""Configuration of `rerankctl rerank` and `rerankctl export` (every field is a flag).

`rerank` shares its scoring fields (``--device``, ``--dtype``, ``--quantize``, ``--max-length``,
``--shared-prefix``, ``--instruction``) with `eval` and `serve` through
:class:`~rerankctl.config.scoring.ScoringSettings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rerankctl.config.base import StrictConfig, cli
from rerankctl.config.scoring import (
    BATCH_FLAGS,
    INPUT_FLAGS,
    JSON_FLAGS,
    MODEL_FLAGS,
    OUTPUT,
    OUTPUT_FLAGS,
    PATH,
    SCORING,
    ScoringSettings,
)
from rerankctl.data.limits import DEFAULT_MAX_CHARS


class RerankConfig(ScoringSettings):
    """Everything `rerankctl rerank` needs besides the documents (its arguments)."""

    cli_sections = {"model": SCORING, "top": OUTPUT}

    model: str = Field(
        ...,
        description="Model directory, hub id or training run's final/.",
        json_schema_extra=MODEL_FLAGS,
    )
    query: str | None = Field(None, description="The query.", json_schema_extra=cli("--query", "-q"))
    input: str | None = Field(
        None, description="JSONL with query/docs (or query/pos/neg); one ranking per line.",
        json_schema_extra=INPUT_FLAGS,
    )  # fmt: skip
    batch_size: int = Field(32, ge=1, description="Pairs per forward pass.", json_schema_extra=BATCH_FLAGS)
    max_chars: int = Field(
        DEFAULT_MAX_CHARS, ge=0, description="Characters kept per query/document before tokenising (0 = all)."
    )
    top: int | None = Field(
        None, ge=1, description="Show only the best K.", json_schema_extra=cli("--top", "-k")
    )
    as_json: bool = Field(False, description="Print JSON instead of a table.", json_schema_extra=JSON_FLAGS)


class ExportConfig(StrictConfig):
    """Everything `rerankctl export` needs besides the checkpoint (its argument)."""

    output: str = Field(..., description="Directory to write.", json_schema_extra=OUTPUT_FLAGS)
    to: Literal["causal-lm", "seq-cls"] = Field(
        "causal-lm",
        description="causal-lm, or seq-cls (vLLM/TEI/Infinity/CrossEncoder: score = logit_yes - logit_no).",
    )
    merge_lora: bool = Field(False, description="Merge the LoRA adapter into the base weights.")
    base_model: str | None = Field(
        None,
        description="Base model, when the adapter's recorded path moved.",
        json_schema_extra=PATH,
    )
    from_gguf: str | None = Field(
        None,
        description="Import a GGUF file (dequantised to fp32) as a plain Hugging Face model directory.",
        json_schema_extra=PATH,
    )
    max_length: int | None = Field(
        None,
        ge=64,
        description="Token limit written into the export (default: the training run's max_length, else 512).",
    )
    instruction: str | None = Field(
        None, description="Default instruction of the export's chat template (seq-cls)."
    )
