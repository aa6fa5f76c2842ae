"""A vision-language reward model: Qwen2-VL / Qwen2.5-VL backbone + 2-layer MLP score head.

The score of (image, query, response) is read at the last non-padding token (the
``<|im_end|>`` closing the answer) and mapped into ``[score_min, score_max]`` with
``score_min + (score_max - score_min) * sigmoid(x)``: bounded like a clamp, but with a
gradient everywhere (a hard clamp would stop learning for any score outside the range).

Saved like :class:`rerankctl.models.reward.RewardModel`: the backbone's ``config.json``,
``model.safetensors`` (backbone + head), ``vl_reward_config.json`` and the tokenizer plus
``preprocessor_config.json`` of the image processor.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerankctl.atomic import publish_dir, temp_dir
from rerankctl.errors import NotFoundError, UsageError
from rerankctl.models.reward import pool_hidden

VL_REWARD_CONFIG_NAME = "vl_reward_config.json"
WEIGHTS_NAME = "model.safetensors"
IMAGE_TOKEN_ID = 151655  # <|image_pad|> in Qwen2/Qwen3 vocabularies
# Bumped when the built-in tiny model changes, so a cached older one is not reused (v2: init 0.1).
TINY_VL_VERSION = 2
# As for the tiny Qwen3 (models/tiny.py): the default initializer_range 0.02 is tuned for hidden
# sizes of 1,024+; at hidden 64 the last token barely depends on the image and the answer words, and
# a synth-vl run sat on the ln 2 plateau for 400+ steps. ~1/sqrt(hidden) leaves it within ~100 steps
# (bench/RESULTS.md, "tiny_vl_reward", session 5).
TINY_VL_INIT = 0.1


@dataclass
class VLHeadConfig:
    """Score range and processor settings, saved as ``vl_reward_config.json``."""

    score_min: float = -5.0
    score_max: float = 5.0
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    base_model: str | None = None

    def __post_init__(self) -> None:
        if not self.score_max > self.score_min:
            raise UsageError(
                f"score range [{self.score_min}, {self.score_max}] is empty",
                hint="--score-max must exceed --score-min",
            )


def tiny_qwen2vl_config(**text_overrides: Any):
    """A Qwen2VLConfig with a tiny text model (hidden 64, 2 layers) and a 1-block vision tower."""
    from transformers import Qwen2VLConfig

    from rerankctl.models.tokenizer import QWEN3_VOCAB_SIZE

    text = {
        "vocab_size": QWEN3_VOCAB_SIZE,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        # head_dim 16 -> 8 rotary frequencies split over (temporal, height, width).
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
        "initializer_range": TINY_VL_INIT,
        **text_overrides,
    }
    vision = {
        "depth": 1,
        "embed_dim": 32,
        "hidden_size": 64,
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "initializer_range": TINY_VL_INIT,
    }
    return Qwen2VLConfig(
        text_config=text, vision_config=vision, pad_token_id=151643, initializer_range=TINY_VL_INIT
    )


def build_tiny_qwen2vl(
    output_dir: str | os.PathLike, seed: int = 0, tokenizer_cache: str | None = None
) -> Path:
    """Write a random tiny Qwen2-VL (``Qwen2VLModel``) with the offline Qwen3 tokenizer to ``output_dir``."""
    from transformers import AutoModel

    from rerankctl.models.tokenizer import load_qwen3_tokenizer

    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_qwen2vl_config(), dtype=torch.float32)
    tmp = temp_dir(output_dir.parent, ".tiny-vl-")
    try:
        model.save_pretrained(str(tmp))
        load_qwen3_tokenizer(tokenizer_cache).save_pretrained(str(tmp))
        publish_dir(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def tiny_qwen2vl_dir(seed: int = 0) -> Path:
    """The cached tiny Qwen2-VL under the rerankctl home (built on first use)."""
    from rerankctl import paths
    from rerankctl.cache import build_once

    target = paths.cache_dir("models") / f"tiny-qwen2vl-v{TINY_VL_VERSION}-seed{seed}"
    # Under a lock: several distributed workers on a fresh home ask for it at the same moment.
    return build_once(
        target, lambda t: (t / "config.json").is_file(), lambda t: build_tiny_qwen2vl(t, seed=seed)
    )


class VLRewardModel(nn.Module):
    """Qwen2-VL backbone + MLP head (hidden -> hidden/2 -> 1), scores in ``[score_min, score_max]``."""

    def __init__(
        self, backbone: nn.Module, config: VLHeadConfig | None = None, tokenizer: Any = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.vl_config = config or VLHeadConfig()
        self.tokenizer = tokenizer
        hidden = _text_hidden_size(backbone.config)
        self.head = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1))
        nn.init.normal_(self.head[2].weight, std=1.0 / (hidden + 1))
        nn.init.zeros_(self.head[2].bias)
        self.config = backbone.config

    @classmethod
    def from_backbone(
        cls,
        path: str | os.PathLike,
        config: VLHeadConfig | None = None,
        *,
        dtype: torch.dtype | None = None,
        attn_implementation: str | None = None,
    ) -> VLRewardModel:
        """A fresh head on a pretrained Qwen2-VL / Qwen2.5-VL (``AutoModel`` gives the model without LM head)."""
        from transformers import AutoModel

        if not (Path(path) / "config.json").is_file() and str(path).startswith((".", "/", "~")):
            raise NotFoundError(
                f"{path}: not a model directory (no config.json)", hint="point --model at Qwen2-VL"
            )
        kwargs: dict[str, Any] = {"dtype": dtype or torch.float32}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        backbone = AutoModel.from_pretrained(str(path), **kwargs)
        config = config or VLHeadConfig()
        config.base_model = str(path)
        return cls(backbone, config, load_vl_tokenizer(path))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | None = None) -> VLRewardModel:
        """Load a directory written by :meth:`save_pretrained`."""
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        if not (path / VL_REWARD_CONFIG_NAME).is_file():
            raise NotFoundError(
                f"{path}: not a VL reward model directory (no {VL_REWARD_CONFIG_NAME})",
                hint="point at a `train vl-reward` run's final_model/, best_model_step_N/ or checkpoint_step_N/",
            )
        config = VLHeadConfig(**json.loads((path / VL_REWARD_CONFIG_NAME).read_text("utf-8")))
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(str(path)), dtype=torch.float32)
        model = cls(backbone, config, load_vl_tokenizer(path))
        model.load_weights(path)
        if device:
            model.to(device)
        return model.eval()

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load ``model.safetensors`` from a saved model or checkpoint (``--load-weights-only``)."""
        from safetensors.torch import load_file

        file = Path(path) / WEIGHTS_NAME
        if not file.is_file():
            raise NotFoundError(
                f"{file}: no weights file", hint="pass a checkpoint_step_N or final_model folder"
            )
        missing, unexpected = self.load_state_dict(load_file(str(file), device="cpu"), strict=False)
        missing = [k for k in missing if "rotary_emb" not in k]
        if missing or unexpected:
            raise NotFoundError(
                f"{file}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})",
                hint="the checkpoint is from another model shape",
            )

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """Recompute activations in backward (non-reentrant, so frozen embeddings need no input grads)."""
        kwargs = activation_checkpointing_kwargs or {"use_reentrant": False}
        backbone = self.backbone
        if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.2x
            backbone.activation_checkpointing_enable(
                activation_checkpointing_kwargs=kwargs, every_n_layers=every_n_layers, offload=offload
            )
        else:  # pragma: no cover - older transformers
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def gradient_checkpointing_enable(
        self, gradient_checkpointing_kwargs: dict | None = None, **kwargs
    ) -> None:
        """The pre-5.2x name of :meth:`activation_checkpointing_enable`."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def freeze_vision(self) -> None:
        """Freeze the vision tower (train the language model and head only)."""
        visual = getattr(self.backbone, "visual", None)
        if visual is None:
            raise UsageError("this backbone has no vision tower to freeze", hint="drop --freeze-vision")
        for p in visual.parameters():
            p.requires_grad_(False)

    def map_scores(self, raw: torch.Tensor) -> torch.Tensor:
        low, high = self.vl_config.score_min, self.vl_config.score_max
        return low + (high - low) * torch.sigmoid(raw)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        mm_types = (input_ids == IMAGE_TOKEN_ID).int()
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            mm_token_type_ids=mm_types,
            use_cache=False,
        )
        pooled = pool_hidden(out.last_hidden_state, attention_mask, "last")
        raw = self.head(pooled.float()).squeeze(-1)
        return {"scores": self.map_scores(raw), "raw": raw}

    def save_pretrained(self, output_dir: str | os.PathLike, state_dict=None) -> Path:
        """Config, weights (safetensors), head config, tokenizer and image processor, written atomically."""
        from safetensors.torch import save_file

        output_dir = Path(output_dir)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_dir(output_dir.parent, ".vl-reward-")
        try:
            state = state_dict if state_dict is not None else self.state_dict()
            state = {k: v.detach().contiguous().clone() for k, v in state.items() if "rotary_emb" not in k}
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
            self.backbone.config.save_pretrained(str(tmp))
            (tmp / VL_REWARD_CONFIG_NAME).write_text(json.dumps(asdict(self.vl_config), indent=2), "utf-8")
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(str(tmp))
            publish_dir(tmp, output_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return output_dir


def _text_hidden_size(config: Any) -> int:
    text = getattr(config, "text_config", None)
    return int(getattr(text, "hidden_size", None) or config.hidden_size)


def load_vl_tokenizer(path: str | os.PathLike):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="right")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
