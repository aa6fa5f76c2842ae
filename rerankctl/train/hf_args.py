"""TrainingArguments keyword groups every trainer of this package passes the same way."""

from __future__ import annotations

from typing import Any


def checkpointing_args(enabled: bool) -> dict[str, Any]:
    """TrainingArguments kwargs for activation checkpointing (the 5.2x name, else the older one)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    return {
        f"{prefix}_checkpointing": enabled,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if enabled else None,
    }


def bookkeeping_args(seed: int, report_to: Any) -> dict[str, Any]:
    """Seeds, reporting and data-loading kwargs shared by the SFT, RL, reward and VL trainers."""
    import os

    import torch

    return {
        # `--gpus cpu:N` workers: accelerate's MULTI_CPU (gloo) needs use_cpu in every process.
        "use_cpu": os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"),
        "report_to": report_to or "none",
        "seed": seed,
        "data_seed": seed,
        "remove_unused_columns": False,  # our collators read columns the model's forward() does not take
        "disable_tqdm": True,  # the rich progress callback shows progress
        "dataloader_pin_memory": torch.cuda.is_available(),  # pinning without a GPU only warns, every epoch
    }
