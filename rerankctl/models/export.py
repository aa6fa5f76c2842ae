"""Export a trained reranker: merge a LoRA adapter, or convert to sequence classification.

``to_seq_cls`` turns a yes/no causal-LM reranker into a
``*ForSequenceClassification`` model with ``num_labels = 1`` whose single score row
is ``W[yes] - W[no]``. Its logit for a prompt is then exactly
``logit_yes - logit_no`` at the last token, which vLLM (``--task score``), TEI,
Infinity and sentence-transformers' ``CrossEncoder`` serve natively. Inputs must
still be formatted with the Qwen3-Reranker prompt (``rerankctl.data.prompt``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rerankctl.errors import UsageError


def _atomic_dir(output: Path):
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))


def _publish(tmp: Path, output: Path) -> Path:
    if output.exists():
        shutil.rmtree(output)
    os.replace(tmp, output)
    return output


def load_merged(checkpoint: str | Path, base_model: str | None = None) -> tuple[Any, Any]:
    """(causal LM with any LoRA adapter merged into its weights, tokenizer)."""
    import torch

    from rerankctl.models.loading import load_causal_lm, load_tokenizer

    model = load_causal_lm(checkpoint, dtype=torch.float32, base_model=base_model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model, load_tokenizer(checkpoint)


def merge_lora(checkpoint: str | Path, output: str | Path, base_model: str | None = None) -> Path:
    """Write the base model with the adapter merged in (a plain HF model directory)."""
    from rerankctl.models.loading import adapter_base

    if adapter_base(checkpoint) is None:
        raise UsageError(
            f"{checkpoint} is not a LoRA adapter (no adapter_config.json)", hint="drop --merge-lora"
        )
    model, tokenizer = load_merged(checkpoint, base_model)
    tmp = _atomic_dir(Path(output))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        return _publish(tmp, Path(output))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def seq_cls_architecture(causal_arch: str) -> str:
    if not causal_arch.endswith("ForCausalLM"):
        raise UsageError(
            f"cannot convert {causal_arch} to sequence classification", hint="expects a *ForCausalLM model"
        )
    return causal_arch.removesuffix("ForCausalLM") + "ForSequenceClassification"


def to_seq_cls(checkpoint: str | Path, output: str | Path, base_model: str | None = None) -> Path:
    """Write a ``*ForSequenceClassification`` model whose one score row is ``W_yes - W_no``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from rerankctl.data.prompt import get_yes_no_token_ids
    from rerankctl.models.scoring import decoder_and_head

    causal, tokenizer = load_merged(checkpoint, base_model)
    yes_id, no_id = get_yes_no_token_ids(tokenizer)
    arch = seq_cls_architecture(type(causal).__name__)
    config = causal.config.__class__.from_dict(causal.config.to_dict())
    config.architectures = [arch]
    config.num_labels = 1
    config.id2label = {0: "LABEL_0"}
    config.label2id = {"LABEL_0": 0}
    config.pad_token_id = tokenizer.pad_token_id
    config.tie_word_embeddings = False
    seq = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    decoder, head = decoder_and_head(causal)
    missing, unexpected = seq.model.load_state_dict(decoder.state_dict(), strict=True), None
    del missing, unexpected
    with torch.no_grad():
        row = (head.weight[yes_id] - head.weight[no_id]).to(torch.float32)
        seq.score.weight.copy_(row.unsqueeze(0))
    tmp = _atomic_dir(Path(output))
    try:
        seq.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        # Record how inputs must be formatted, for serving tools and for `rerankctl serve`.
        meta = {
            "format": "qwen3-reranker",
            "yes_token_id": yes_id,
            "no_token_id": no_id,
            "source": str(checkpoint),
        }
        (tmp / "rerankctl_export.json").write_text(json.dumps(meta, indent=2), "utf-8")
        return _publish(tmp, Path(output))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
