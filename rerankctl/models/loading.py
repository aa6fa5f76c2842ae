"""Loading causal LMs and tokenizers from a local directory or a hub id.

A directory holding a PEFT adapter (``adapter_config.json``) is loaded as its
base model with the adapter applied; the base is found through the adapter's
``base_model_name_or_path``. Everything goes through the real Hugging Face
loading code (``AutoModelForCausalLM.from_pretrained``) so hub ids work when the
machine is online and local directories work everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rerankctl.errors import NotFoundError, RerankctlError


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def pick_dtype(dtype: str | None, device: str):
    """bf16 on a GPU that supports it, fp32 on CPU, unless ``dtype`` says otherwise."""
    import torch

    table = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if dtype and dtype != "auto":
        if dtype not in table:
            raise RerankctlError(f"unknown dtype {dtype!r}", hint="use bf16, fp16 or fp32")
        return table[dtype]
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def adapter_base(path: str | Path) -> str | None:
    """The base model of a PEFT adapter directory, or None when ``path`` is not one."""
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text("utf-8")).get("base_model_name_or_path")


def gguf_parts(path: str | Path) -> tuple[str, str] | None:
    """(directory, file name) when ``path`` is a GGUF file, else None.

    transformers reads GGUF through ``from_pretrained(directory, gguf_file=name)``: the weights are
    dequantised to the requested dtype and the tokenizer is rebuilt from the file's metadata, so a
    ``--model some.gguf`` works wherever a model directory does (it needs the ``gguf`` package).
    """
    p = Path(path).expanduser()
    if p.suffix.lower() != ".gguf":
        return None
    if not p.is_file():
        raise NotFoundError(f"{path}: no such GGUF file", hint="check the path to the .gguf file")
    try:
        import gguf  # noqa: F401
    except ImportError as exc:
        raise RerankctlError(
            f"{path}: reading GGUF needs the gguf package",
            hint="pip install 'rerankctl[gguf]' (or: pip install gguf)",
        ) from exc
    return str(p.parent), p.name


def _check_local(path: str) -> None:
    p = Path(path).expanduser()
    if p.suffix.lower() == ".gguf":
        gguf_parts(path)
        return
    looks_local = path.startswith((".", "/", "~")) or p.exists()
    if looks_local and not (p / "config.json").is_file() and not (p / "adapter_config.json").is_file():
        raise NotFoundError(
            f"{path}: not a model directory (no config.json or adapter_config.json)",
            hint="point --model at a Hugging Face model directory or a training run's final/ folder",
        )


def load_tokenizer(path: str | Path, padding_side: str = "left") -> Any:
    from transformers import AutoTokenizer

    path = str(path)
    _check_local(path)
    gguf = gguf_parts(path)
    if gguf is not None:
        tokenizer = AutoTokenizer.from_pretrained(gguf[0], gguf_file=gguf[1], padding_side=padding_side)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    source = path
    if not (Path(path) / "tokenizer_config.json").is_file() and adapter_base(path):
        source = adapter_base(path)
    tokenizer = AutoTokenizer.from_pretrained(source, padding_side=padding_side)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    path: str | Path,
    *,
    dtype=None,
    device: str | None = None,
    attn_implementation: str | None = None,
    base_model: str | None = None,
) -> Any:
    """Load a causal LM (applying a PEFT adapter when ``path`` is one)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # rerankctl draws its own progress; no per-tensor bars
    path = str(path)
    _check_local(path)
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    base = adapter_base(path)
    if base is not None:
        from rerankctl.models.peft_wrap import load_adapter

        base_path = base_model or base
        if gguf_parts(base_path) is not None:
            model = _load_gguf(base_path, kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
        model = load_adapter(model, path)
    elif gguf_parts(path) is not None:
        model = _load_gguf(path, kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if device:
        model.to(device)
    return model


def _load_gguf(path: str, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoModelForCausalLM

    directory, name = gguf_parts(path)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, **kwargs)
    _forget_gguf_quantizer(model, path)
    return model


def _forget_gguf_quantizer(model: Any, path: str) -> None:
    """Make a model read from GGUF an ordinary one.

    Its weights are already dequantised to plain tensors; only the loader's marker remains, and it
    makes ``save_pretrained`` refuse ("quantized with gguf and is not serializable"), which would
    break checkpoints, merges and exports of a model that started from GGUF.
    """
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    # the .gguf path itself, so a LoRA adapter trained on it records a base that loads again
    model.name_or_path = path
    model.config._name_or_path = path


def import_gguf(gguf_file: str | Path, output: str | Path) -> Path:
    """Write a GGUF model (weights dequantised to fp32, tokenizer) as a plain Hugging Face directory."""
    import torch

    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise RerankctlError(f"{output}: directory is not empty", hint="choose a new --output directory")
    model = load_causal_lm(gguf_file, dtype=torch.float32)
    tokenizer = load_tokenizer(gguf_file)
    tmp = output.with_name(output.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        output.rmdir()
    tmp.rename(output)  # nothing half-written under the final name
    return output
