"""A scalar reward model: a causal-LM backbone plus a value head.

The backbone is loaded with ``AutoModel`` (the transformer without its LM head, so
151,936-row vocabulary projections are never computed). The value head is either a
single linear layer or a 2-layer MLP (hidden -> hidden/2 -> 1). Pooling reads the
last non-padding token (works for left and right padding) or the masked mean.

On disk a reward model is an ordinary Hugging Face directory: the backbone's
``config.json``, one ``model.safetensors`` holding ``backbone.*`` and ``head.*``
tensors, ``reward_config.json`` (head, pooling, LoRA settings) and the tokenizer.
The Hugging Face ``Trainer`` saves and resumes checkpoints in the same layout.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerankctl.atomic import publish_dir, temp_dir
from rerankctl.errors import NotFoundError, UsageError

REWARD_CONFIG_NAME = "reward_config.json"
WEIGHTS_NAME = "model.safetensors"
HEADS = ("linear", "mlp")
POOLINGS = ("last", "mean")


@dataclass
class RewardHeadConfig:
    """How the head and pooling are built; saved next to the weights as ``reward_config.json``."""

    head: str = "mlp"
    pooling: str = "last"
    lora: dict[str, Any] | None = None  # peft LoraConfig kwargs when the backbone carries an adapter
    base_model: str | None = None  # where the backbone came from (for the record)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise UsageError(f"unknown value head {self.head!r}", hint=f"use one of {', '.join(HEADS)}")
        if self.pooling not in POOLINGS:
            raise UsageError(f"unknown pooling {self.pooling!r}", hint=f"use one of {', '.join(POOLINGS)}")


def build_value_head(hidden: int, kind: str, dtype: torch.dtype | None = None) -> nn.Module:
    """A linear head or a 2-layer MLP (hidden -> hidden/2 -> 1), initialised small.

    A small output init keeps the first rewards near zero, so the Bradley-Terry loss
    starts at log(2) and early gradients are not dominated by a random head.
    """
    if kind == "linear":
        head = nn.Linear(hidden, 1)
        out = head
    elif kind == "mlp":
        head = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1))
        out = head[2]
    else:
        raise UsageError(f"unknown value head {kind!r}", hint=f"use one of {', '.join(HEADS)}")
    nn.init.normal_(out.weight, std=1.0 / (hidden + 1))
    nn.init.zeros_(out.bias)
    return head.to(dtype) if dtype is not None else head


def output_bias(head: nn.Module) -> nn.Parameter:
    """The bias of the head's last layer (the one that adds the same constant to every reward)."""
    last = head[-1] if isinstance(head, nn.Sequential) else head
    return last.bias


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``(B, L, H)`` hidden states to ``(B, H)``.

    ``last`` takes the position of the last 1 in the mask: with right padding that is
    ``sum(mask) - 1``, with left padding it is ``L - 1``; the arg-max over
    ``mask * position`` finds it in both cases (and inside packed masks with holes).
    """
    mask = attention_mask.to(hidden.device)
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
        last = (mask.long() * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean":
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
    raise UsageError(f"unknown pooling {pooling!r}", hint=f"use one of {', '.join(POOLINGS)}")


def _decoder_layers(backbone: nn.Module) -> nn.ModuleList | None:
    """The backbone's list of transformer blocks (``layers`` on Qwen/Llama), through a peft wrapper."""
    base = backbone
    if hasattr(base, "get_base_model"):
        base = base.get_base_model()
    for name in ("layers", "h", "blocks"):
        layers = getattr(base, name, None)
        if isinstance(layers, nn.ModuleList):
            return layers
    inner = getattr(base, "model", None)
    return _decoder_layers(inner) if isinstance(inner, nn.Module) and inner is not base else None


class RewardModel(nn.Module):
    """Backbone + value head; ``forward`` returns ``{"rewards": (B,)}``.

    Args:
        backbone: a transformers base model (``AutoModel``), optionally peft-wrapped.
        config: head and pooling settings.
        tokenizer: kept for :meth:`score` and saved with the model.
    """

    def __init__(
        self, backbone: nn.Module, config: RewardHeadConfig | None = None, tokenizer: Any = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.reward_config = config or RewardHeadConfig()
        self.tokenizer = tokenizer
        hidden = backbone.config.hidden_size
        dtype = next(backbone.parameters()).dtype
        self.head = build_value_head(hidden, self.reward_config.head, dtype=torch.float32)
        self._head_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        # The Trainer reads these attributes.
        self.config = backbone.config

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def from_backbone(
        cls,
        path: str | os.PathLike,
        *,
        head: str = "mlp",
        pooling: str = "last",
        dtype: torch.dtype | None = None,
        attn_implementation: str | None = None,
        quantization_config: Any = None,
        tokenizer: Any = None,
    ) -> RewardModel:
        """A fresh reward model on a pretrained (or tiny) causal LM's transformer."""
        from transformers import AutoModel

        kwargs: dict[str, Any] = {}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        if quantization_config is not None:
            kwargs["quantization_config"] = quantization_config
        _check_dir(path)
        backbone = AutoModel.from_pretrained(str(path), **kwargs)
        if tokenizer is None:
            tokenizer = load_reward_tokenizer(path)
        config = RewardHeadConfig(head=head, pooling=pooling, base_model=str(path))
        return cls(backbone, config, tokenizer)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, dtype: torch.dtype | None = None, device: str | None = None
    ):
        """Load a directory written by :meth:`save_pretrained` (a final model or a checkpoint)."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        config_file = path / REWARD_CONFIG_NAME
        if not config_file.is_file():
            raise NotFoundError(
                f"{path}: not a reward model directory (no {REWARD_CONFIG_NAME})",
                hint="point at a `train reward` output's final_model/, best_model_step_N/ or checkpoint_step_N/",
            )
        head_config = RewardHeadConfig(**json.loads(config_file.read_text("utf-8")))
        backbone_config = AutoConfig.from_pretrained(str(path))
        backbone = AutoModel.from_config(backbone_config, dtype=dtype or torch.float32)
        if head_config.lora:
            from peft import LoraConfig

            from rerankctl.models.peft_wrap import get_peft_model

            backbone = get_peft_model(backbone, LoraConfig(**head_config.lora))
        model = cls(backbone, head_config, load_reward_tokenizer(path))
        state = load_file(str(path / WEIGHTS_NAME), device="cpu")
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Rotary buffers are not saved; anything else missing means a wrong or truncated file.
        missing = [k for k in missing if "rotary_emb" not in k]
        if missing or unexpected:
            raise NotFoundError(
                f"{path / WEIGHTS_NAME}: weights do not match the model "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
                hint="the directory may be from another model type or half-written",
            )
        if device:
            model.to(device)
        model.eval()
        return model

    # ------------------------------------------------------------------------------------------ training setup

    def freeze(self, embeddings: bool = False, first_layers: int = 0) -> int:
        """Freeze the input embeddings and/or the first N transformer blocks; returns frozen parameter count."""
        frozen = 0
        if embeddings:
            for p in self.backbone.get_input_embeddings().parameters():
                p.requires_grad_(False)
                frozen += p.numel()
        if first_layers:
            layers = _decoder_layers(self.backbone)
            if layers is None:
                raise UsageError(
                    "cannot find the backbone's transformer layers to freeze", hint="drop --freeze-layers"
                )
            if first_layers > len(layers):
                raise UsageError(
                    f"--freeze-layers {first_layers} but the model has {len(layers)} layers",
                    hint=f"use a number from 0 to {len(layers)}",
                )
            for layer in layers[:first_layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)
                    frozen += p.numel()
        return frozen

    def add_lora(
        self, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: list[str] | None = None
    ):
        """Wrap the backbone in a peft LoRA adapter (the value head stays fully trainable)."""
        from peft import LoraConfig

        from rerankctl.models.peft_wrap import get_peft_model

        lora = {
            "r": r,
            "lora_alpha": alpha,
            "lora_dropout": dropout,
            "target_modules": list(
                target_modules
                or ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            ),
        }
        self.backbone = get_peft_model(self.backbone, LoraConfig(**lora))
        self.reward_config.lora = lora
        return self

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

    # ------------------------------------------------------------------------------------------ forward

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        pooled = pool_hidden(out.last_hidden_state, attention_mask, self.reward_config.pooling)
        rewards = self.head(pooled.to(self._head_dtype)).squeeze(-1)
        return {"rewards": rewards.float()}

    @torch.no_grad()
    def score(
        self,
        prompts: list[str] | list[list[dict[str, str]]],
        responses: list[str],
        *,
        batch_size: int = 16,
        max_length: int = 1024,
    ) -> list[float]:
        """Reward of each (prompt, response) pair; prompts are strings or message lists."""
        from rerankctl.data.preference_dataset import PairTokenizer, pad_right

        if len(prompts) != len(responses):
            raise UsageError(
                f"{len(prompts)} prompts but {len(responses)} responses", hint="pass one prompt per response"
            )
        if self.tokenizer is None:
            raise UsageError(
                "this reward model has no tokenizer", hint="load it with RewardModel.from_pretrained"
            )
        encoder = PairTokenizer(self.tokenizer, max_length)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        scores: list[float] = []
        pad_id = self.tokenizer.pad_token_id or 0
        for start in range(0, len(prompts), batch_size):
            seqs = [
                encoder.join(encoder.encode_prompt(p), encoder.encode_response(p, r))[0]
                for p, r in zip(
                    prompts[start : start + batch_size], responses[start : start + batch_size], strict=True
                )
            ]
            ids, mask = pad_right(seqs, pad_id)
            scores.extend(self(input_ids=ids.to(device), attention_mask=mask.to(device))["rewards"].tolist())
        self.train(was_training)
        return scores

    # ------------------------------------------------------------------------------------------ saving

    def save_pretrained(
        self, output_dir: str | os.PathLike, *, merge_lora: bool = False, state_dict=None
    ) -> Path:
        """Write config, weights (safetensors, head included), reward config and tokenizer atomically.

        With ``merge_lora`` the adapter is folded into the backbone first (for final models;
        this changes the model in place, so only do it once training is over).
        """
        from safetensors.torch import save_file

        if merge_lora and self.reward_config.lora:
            self.backbone = self.backbone.merge_and_unload()
            self.reward_config.lora = None
            state_dict = None
        output_dir = Path(output_dir)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_dir(output_dir.parent, ".reward-")
        try:
            state = state_dict if state_dict is not None else self.state_dict()
            # safetensors refuses shared storage; contiguous copies also drop views of tied weights.
            state = {k: v.detach().contiguous().clone() for k, v in state.items() if "rotary_emb" not in k}
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
            self.backbone_config().save_pretrained(str(tmp))
            (tmp / REWARD_CONFIG_NAME).write_text(json.dumps(asdict(self.reward_config), indent=2), "utf-8")
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(str(tmp))
            publish_dir(tmp, output_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return output_dir

    def backbone_config(self):
        base = self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone
        return base.config

    def trainable_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total


def _check_dir(path: str | os.PathLike) -> None:
    p = Path(path).expanduser()
    text = str(path)
    if (text.startswith((".", "/", "~")) or p.exists()) and not (p / "config.json").is_file():
        raise NotFoundError(
            f"{path}: not a model directory (no config.json)", hint="point --model at a causal LM directory"
        )


def load_reward_tokenizer(path: str | os.PathLike):
    """The tokenizer for a reward model: right padding, pad token falls back to EOS."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="right")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
