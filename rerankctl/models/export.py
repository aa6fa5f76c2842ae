"""Export a trained reranker: merge a LoRA adapter, or convert to sequence classification.

``to_seq_cls`` turns a yes/no causal-LM reranker into a
``*ForSequenceClassification`` model with ``num_labels = 1`` whose single score row
is ``W[yes] - W[no]``. Its logit for a prompt is then exactly
``logit_yes - logit_no`` at the last token, which vLLM (``--task score``), TEI,
Infinity and sentence-transformers' ``CrossEncoder`` serve natively.

The export's tokenizer carries :func:`rerankctl.models.reranker_template.reranker_chat_template`
instead of the base tokenizer's ChatML template, so consumers that render (query, document) pairs
through a chat template (sentence-transformers v6 ``CrossEncoder``, vLLM's score API) see exactly
the Qwen3-Reranker prompt rerankctl scores; ``model_max_length`` is the length the model was trained
at, so their truncation cuts where rerankctl's does. Both exports get a model card (``README.md``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rerankctl.atomic import publish_dir, temp_dir
from rerankctl.errors import UsageError


def _atomic_dir(output: Path):
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    return temp_dir(output.parent, f".{output.name}-")


def _publish(tmp: Path, output: Path) -> Path:
    publish_dir(tmp, output)
    return output


def load_merged(checkpoint: str | Path, base_model: str | None = None) -> tuple[Any, Any]:
    """(causal LM with any LoRA adapter merged into its weights, tokenizer)."""
    import torch

    from rerankctl.models.loading import load_causal_lm, load_tokenizer

    model = load_causal_lm(checkpoint, dtype=torch.float32, base_model=base_model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model, load_tokenizer(checkpoint)


def merge_lora(
    checkpoint: str | Path,
    output: str | Path,
    base_model: str | None = None,
    max_length: int | None = None,
    instruction: str | None = None,
) -> Path:
    """Write the base model with the adapter merged in (a plain HF model directory).

    This keeps the yes/no causal-LM form the original Qwen3-Reranker consumers expect (its
    tokenizer keeps the base chat template: generation still works).
    """
    from rerankctl.models.loading import adapter_base
    from rerankctl.models.model_card import write_model_card

    if adapter_base(checkpoint) is None:
        raise UsageError(
            f"{checkpoint} is not a LoRA adapter (no adapter_config.json)", hint="drop --merge-lora"
        )
    model, tokenizer = load_merged(checkpoint, base_model)
    tmp = _atomic_dir(Path(output))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        write_model_card(
            tmp,
            checkpoint,
            form="causal-lm",
            max_length=max_length or _trained_max_length(checkpoint),
            instruction=instruction,
        )
        return _publish(tmp, Path(output))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def seq_cls_architecture(causal_arch: str) -> str:
    if not causal_arch.endswith("ForCausalLM"):
        raise UsageError(
            f"cannot convert {causal_arch} to sequence classification", hint="expects a *ForCausalLM model"
        )
    return causal_arch.removesuffix("ForCausalLM") + "ForSequenceClassification"


def _trained_max_length(checkpoint: str | Path) -> int | None:
    """The ``max_length`` the run that wrote ``checkpoint`` trained at (from the run store)."""
    from rerankctl.models.model_card import find_run

    run = find_run(checkpoint)
    value = (run.config or {}).get("max_length") if run is not None else None
    return int(value) if isinstance(value, int) and value > 0 else None


def to_seq_cls(
    checkpoint: str | Path,
    output: str | Path,
    base_model: str | None = None,
    max_length: int | None = None,
    instruction: str | None = None,
) -> Path:
    """Write a ``*ForSequenceClassification`` model whose one score row is ``W_yes - W_no``.

    Args:
        max_length: token limit written as the tokenizer's ``model_max_length`` (default: the
            training run's ``max_length`` from the run store, else 512).
        instruction: the template's default instruction (default: the web-search one).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from rerankctl.data.prompt import PromptTokenizer, get_yes_no_token_ids
    from rerankctl.models.model_card import write_model_card
    from rerankctl.models.reranker_template import reranker_chat_template
    from rerankctl.models.scoring import decoder_and_head

    max_length = max_length or _trained_max_length(checkpoint) or 512

    causal, tokenizer = load_merged(checkpoint, base_model)
    PromptTokenizer(tokenizer, max_length=max_length)  # refuses a max_length the prompt cannot fit
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
    seq.model.load_state_dict(decoder.state_dict(), strict=True)
    with torch.no_grad():
        row = (head.weight[yes_id] - head.weight[no_id]).to(torch.float32)
        seq.score.weight.copy_(row.unsqueeze(0))
    tmp = _atomic_dir(Path(output))
    try:
        seq.save_pretrained(str(tmp))
        # The base ChatML template would make CrossEncoder/vLLM wrap the pair in a chat turn.
        tokenizer.chat_template = reranker_chat_template(instruction)
        tokenizer.model_max_length = max_length
        tokenizer.save_pretrained(str(tmp))
        # Record how inputs must be formatted, for serving tools and for `rerankctl serve`.
        meta = {
            "format": "qwen3-reranker",
            "yes_token_id": yes_id,
            "no_token_id": no_id,
            "max_length": max_length,
            "instruction": instruction,
            "source": str(checkpoint),
        }
        (tmp / "rerankctl_export.json").write_text(json.dumps(meta, indent=2), "utf-8")
        write_model_card(tmp, checkpoint, form="seq-cls", max_length=max_length, instruction=instruction)
        return _publish(tmp, Path(output))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
