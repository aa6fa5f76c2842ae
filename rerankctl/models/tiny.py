"""Tiny Qwen3-architecture models built from a config, for the `tiny` preset and tests.

They have the real Qwen3 architecture and vocabulary (151,936 rows, tied
embeddings) with a handful of hidden units, random weights, and are saved as an
ordinary Hugging Face model directory next to the offline Qwen3 tokenizer, so
every code path that loads a real checkpoint loads these too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rerankctl import paths
from rerankctl.atomic import publish_dir, temp_dir

# Bumped whenever TINY_SHAPE changes, so a cached model built with the old shape is not reused.
TINY_VERSION = 2

TINY_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    # Qwen3's default initializer_range (0.02) is tuned for hidden sizes of 1,024 and more. At
    # hidden 64 it shrinks every projection's output ~6x, attention stays uniform and all documents
    # score alike, so a from-scratch run sits on the ln(n_docs) loss plateau for most of its steps.
    # ~1/sqrt(hidden) escapes it within ~100 steps (bench/RESULTS.md, "SFT learning").
    "initializer_range": 0.1,
}


def qwen3_config(**overrides):
    """A Qwen3Config with the tiny shape (override any field, e.g. for 0.6B-shaped benches)."""
    from transformers import Qwen3Config

    from rerankctl.models.tokenizer import QWEN3_VOCAB_SIZE

    values = {
        "vocab_size": QWEN3_VOCAB_SIZE,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
        "rope_theta": 1_000_000.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "pad_token_id": 151643,
        **TINY_SHAPE,
    }
    values.update(overrides)
    return Qwen3Config(**values)


# A Qwen3-0.6B-shaped config (random weights) for benchmarks.
QWEN3_0_6B_SHAPE = {
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "initializer_range": 0.02,
}


def build_tiny_qwen3(
    output_dir: str | os.PathLike, seed: int = 0, tokenizer_cache: str | None = None, **overrides
) -> Path:
    """Write a randomly initialised tiny Qwen3 causal LM and the Qwen3 tokenizer to ``output_dir``."""
    import torch
    from transformers import AutoModelForCausalLM

    from rerankctl.models.tokenizer import load_qwen3_tokenizer

    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(qwen3_config(**overrides), dtype=torch.float32)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = load_qwen3_tokenizer(tokenizer_cache)
    tmp = temp_dir(output_dir.parent, ".tiny-")
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        publish_dir(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def tiny_qwen3_dir(seed: int = 0) -> Path:
    """The cached tiny model directory under the rerankctl home (built on first use)."""
    target = paths.cache_dir("models") / f"tiny-qwen3-v{TINY_VERSION}-seed{seed}"
    from rerankctl.cache import build_once

    # Under a lock: several distributed workers on a fresh home ask for it at the same moment.
    return build_once(
        target, lambda t: (t / "config.json").is_file(), lambda t: build_tiny_qwen3(t, seed=seed)
    )
