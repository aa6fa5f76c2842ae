"""Loading an SFT result as the starting point of RL: one set of weights, two policies.

``load_sft_model`` returns a PEFT model whose *base* is the SFT model (its LoRA adapter
merged into the base weights, or the full fine-tuned weights) and whose only adapter is a
fresh, zero-initialised LoRA adapter for RL (peft initialises ``lora_B`` to 0, so at step 0
the policy *is* the SFT model). The reference policy of the KL penalty and of DPO is the
same module with the RL adapter switched off::

    with model.disable_adapter():
        ref_scores = yes_no_scores(model, ...)

so the weights are held once; a second frozen copy of the model is never made
(``parameter_bytes`` measures it: the RL model holds the SFT weights plus the adapter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerankctl.errors import NotFoundError, UsageError

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def load_sft_model(
    sft_dir: str | Path,
    base_model: str | None = None,
    *,
    lora: Any = None,
    dtype: Any = None,
    attn_implementation: str | None = None,
    gradient_checkpointing: bool = False,
) -> Any:
    """The SFT model (adapter merged) with a fresh LoRA adapter for RL on top.

    Args:
        sft_dir: a full model directory, or a LoRA adapter directory from `train sft`.
        base_model: the adapter's base (default: ``base_model_name_or_path`` of the adapter).
        lora: a :class:`rerankctl.config.sft.LoRAConfig` for the RL adapter (default: r=16,
            alpha=32, dropout 0.05 on every projection).
        dtype: torch dtype of the weights (default float32: master weights for mixed precision).
        attn_implementation: passed to ``from_pretrained``.
        gradient_checkpointing: make the (frozen) input embeddings emit grad-requiring outputs,
            which activation checkpointing with a frozen base needs.
    """
    import torch
    from peft import LoraConfig, PeftModel

    from rerankctl.models.loading import adapter_base, load_causal_lm
    from rerankctl.models.peft_wrap import get_peft_model

    path = Path(sft_dir).expanduser()
    if not path.is_dir():
        raise NotFoundError(
            f"--sft-model {sft_dir}: no such directory",
            hint="pass the final/ folder of a `rerankctl train sft` run",
        )
    if base_model is None and adapter_base(path) is None and not (path / "config.json").is_file():
        raise NotFoundError(
            f"--sft-model {sft_dir}: not a model directory (no config.json or adapter_config.json)",
            hint="pass the final/ folder of a `rerankctl train sft` run",
        )
    model = load_causal_lm(
        str(path),
        dtype=dtype or torch.float32,
        attn_implementation=attn_implementation,
        base_model=base_model,
    )
    if isinstance(model, PeftModel):
        # Fold the SFT adapter into the base weights: the RL adapter then sits on the SFT model,
        # and "adapter disabled" means exactly the SFT policy.
        model = model.merge_and_unload()
    model.config.use_cache = False
    if hasattr(model, "peft_config"):
        raise UsageError(f"{sft_dir}: the model still carries adapters after merging", hint="merge it first")
    options = lora.model_dump() if lora is not None else {}
    if options and not options.get("enabled", True):
        raise UsageError("RL needs a LoRA adapter", hint="the reference policy is the model with it disabled")
    config = LoraConfig(
        r=options.get("r", 16),
        lora_alpha=options.get("alpha", 32),
        lora_dropout=options.get("dropout", 0.05),
        target_modules=list(options.get("target_modules") or DEFAULT_TARGETS),
        modules_to_save=options.get("modules_to_save") or None,
        task_type="CAUSAL_LM",
    )
    if config.modules_to_save:
        # A trained copy of a module next to the frozen one would be a second copy of those weights.
        raise UsageError(
            "modules_to_save is not supported for RL", hint="the reference must share every weight"
        )
    model = get_peft_model(model, config)
    if gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def parameter_bytes(*modules: Any) -> int:
    """Bytes of the distinct parameter and buffer storages held by ``modules`` together.

    Tied weights and shared modules count once, so this is the parameter memory a training
    process really holds (a reference policy made by copying the model would double it).
    """
    seen: dict[int, int] = {}
    for module in modules:
        tensors = list(module.parameters()) + list(module.buffers())
        for tensor in tensors:
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())
