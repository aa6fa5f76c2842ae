"""Dynamic int8 quantisation of a reranker for CPU scoring (``--quantize int8``).

``torch.ao.quantization.quantize_dynamic`` stores ``nn.Linear`` weights as int8 (per tensor) and
quantises activations on the fly, so matrix products run in int8 (fbgemm) while everything else
stays fp32. Two kinds of layer are kept in fp32 on purpose:

- the LM head: the yes/no score reads two of its rows directly (``W_yes - W_no``);
- ``down_proj``: its inputs (SiLU-gated MLP activations) have outliers that a per-tensor int8 scale
  flattens.

Even so the drift is not small on a real model: zero-shot SmolLM2-135M over 200 held-out WordNet
pairs moved by up to 0.21 in probability (mean 0.04), Kendall tau vs fp32 0.26 over all pairs and
0.10 within a query, and the top document changed in 10 of 10 queries (its zero-shot scores lie
close together, so small shifts reorder them). Measure it on your model before serving int8
(bench/real/quantize_drift.py; figures in bench/RESULTS.md).

CPU only: fbgemm has no CUDA kernels, and on a GPU bf16 is the faster path anyway.
"""

from __future__ import annotations

from typing import Any

from rerankctl.errors import UsageError

QUANTIZE_MODES = ("none", "int8")
KEEP_FP32 = ("lm_head", "down_proj")


def check_quantize(mode: str | None, device: str | None = None) -> str | None:
    """Validate ``--quantize`` before any model loads; return None for no quantisation."""
    if mode in (None, "", "none"):
        return None
    if mode not in QUANTIZE_MODES:
        raise UsageError(
            f"--quantize {mode}: unknown mode", hint="use int8 (CPU dynamic quantisation) or none"
        )
    if device is not None and not str(device).startswith("cpu"):
        raise UsageError(f"--quantize {mode} runs on CPU only (device {device})", hint="add --device cpu")
    return mode


def quantize_int8(model: Any, keep_fp32: tuple[str, ...] = KEEP_FP32) -> Any:
    """Quantise every ``nn.Linear`` whose name has none of ``keep_fp32`` in it; returns the model."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # a LoRA adapter: fold it in, then quantise the merged weights
    names = {
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not any(k in name for k in keep_fp32)
    }
    if not names:
        return model
    return quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)
