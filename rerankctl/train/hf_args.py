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


def bookkeeping_args(seed: int, report_to: Any, dist: Any = None) -> dict[str, Any]:
    """Seeds, reporting, data-loading and sharding kwargs shared by the SFT, RL, reward and VL trainers."""
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
        **distributed_args(dist),
    }


def deepspeed_config_path(value: str) -> str:
    """The JSON file for ``--deepspeed``: a built-in name (zero2, zero3, ...-offload) or the user's file."""
    from pathlib import Path

    builtin = Path(__file__).with_name("deepspeed_configs") / f"{value}.json"
    return str(builtin) if builtin.is_file() else value


def distributed_args(dist: Any) -> dict[str, Any]:
    """TrainingArguments kwargs for the sharding strategy of a ``DistributedConfig``.

    DDP needs nothing here: the Trainer wraps the model whenever the launcher set up a process
    group. FSDP2 auto-wraps the model's ``_no_split_modules`` (its decoder layer class) and gathers
    a full state dict at save, so ``final/`` is an ordinary Hugging Face directory. DeepSpeed
    gets a JSON whose "auto" values the Trainer fills from these same arguments.
    """
    if dist is None:
        return {}
    if dist.deepspeed:
        return {"deepspeed": deepspeed_config_path(dist.deepspeed)}
    if dist.fsdp:
        return {
            "fsdp": "full_shard auto_wrap",
            "fsdp_config": {
                "version": 2,
                "state_dict_type": "FULL_STATE_DICT",
                "reshard_after_forward": True,
            },
        }
    return {}
