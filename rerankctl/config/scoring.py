"""What every command that scores with a local model shares: `eval`, `rerank` and `serve`.

One declaration per option: these fields are the ``--device``, ``--dtype``, ``--quantize``,
``--max-length``, ``--shared-prefix`` and ``--instruction`` flags of all three commands (built by
rerankctl/cli/_options.py), so the same thing has the same name and help everywhere.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rerankctl.config.base import StrictConfig, cli

# Help panels of the scoring commands (the train commands' panels are in config/base.py).
SCORING = "Model and scoring"
OUTPUT = "Output"

#: `--batch-size` of the scoring commands (``--batch`` as in the train commands, hidden).
BATCH_FLAGS = cli("--batch-size", hidden=("--batch",))
#: `--output/-o` of every command that writes files (``--output-dir`` hidden, as in train).
OUTPUT_FLAGS = cli("--output", "-o", hidden=("--output-dir",), metavar="PATH")
#: `--model/-m`: a model directory (or Hub id) in every scoring command.
MODEL_FLAGS = cli("--model", "-m", metavar="PATH")
#: `--endpoints/-e`: rerank endpoints (the seed tool's singular `--endpoint` hidden).
ENDPOINTS_FLAGS = cli("--endpoints", "-e", hidden=("--endpoint",), metavar="URL")
#: `--input/-i`: a rerank-format file.
INPUT_FLAGS = cli("--input", "-i", metavar="PATH")
#: A value that is a file or directory, or a URL (the metavar ``--help`` shows).
PATH = cli(metavar="PATH")
URL = cli(metavar="URL")
#: `--json`: the machine-readable answer on stdout.
JSON_FLAGS = cli("--json", off="--no-json")

QUANTIZE_HELP = (
    "none, or int8: dynamic int8 linear layers (CPU, ~2x faster; scores drift: check with eval parity)."
)


class ScoringSettings(StrictConfig):
    """How a local reranker is loaded and how long its prompts may be."""

    cli_sections = {"device": SCORING}

    device: str | None = Field(
        None, description="Device of local models: cpu, cuda, cuda:1 (default: the first GPU, else CPU)."
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Weights' precision: auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32."
    )
    quantize: Literal["none", "int8"] = Field("none", description=QUANTIZE_HELP)
    max_length: int = Field(
        1024, ge=16, description="Prompt token limit of local models (longer documents are cut first)."
    )
    shared_prefix: bool = Field(
        True,
        description="Encode each query's prompt head once for all its documents "
        "(exact; off: one row per document).",
    )
    instruction: str | None = Field(
        None, description="Instruction for queries that give none (default: the model's, else web search)."
    )

    @property
    def quantize_mode(self) -> str | None:
        """``--quantize`` as the model loaders take it: None for no quantisation."""
        return None if self.quantize == "none" else self.quantize
