"""Configuration of `rerankctl train sft` (defaults < preset < flags)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rerankctl.config.aliases import canonical
from rerankctl.config.base import DATA, LORA_FLAGS, LOSS, LR_FLAGS, MODEL, OPTIM, StrictConfig, cli
from rerankctl.config.run_settings import BUILTIN_SYNTH_DATA, RankerRunSettings

BUILTIN_TINY_MODEL = "builtin:tiny-qwen3"
__all__ = ["BUILTIN_SYNTH_DATA", "BUILTIN_TINY_MODEL", "LoRAConfig", "SFTConfig"]


class LoRAConfig(StrictConfig):
    """LoRA adapter settings (peft)."""

    enabled: bool = Field(
        True,
        description="Train a LoRA adapter instead of all weights.",
        json_schema_extra=LORA_FLAGS,
    )
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names that get adapters (all attention and MLP projections by default).",
        json_schema_extra=cli("--target-modules", hidden=("--lora-target-modules",)),
    )
    modules_to_save: list[str] = Field(
        default_factory=list, description="Modules trained in full next to the adapter (e.g. embed_tokens)."
    )


class SFTConfig(RankerRunSettings):
    """Everything `train sft` needs. Every field is a flag (`--n-docs`) and a preset key (`n_docs`)."""

    cli_sections = {
        "model": MODEL,
        "n_docs": DATA,
        "loss_type": LOSS,
        "lora": MODEL,
        "learning_rate": OPTIM,
    }

    # What to train on
    model: str = Field(
        "Qwen/Qwen3-Reranker-0.6B",
        description=f"Base model: hub id or local directory. `{BUILTIN_TINY_MODEL}` builds a tiny random Qwen3.",
        json_schema_extra=cli(check="model"),
    )
    n_docs: int = Field(8, ge=0, description="Documents per query group (0 = all, capped by max_docs).")
    n_pos: int = Field(1, ge=0, description="Positives per group (0 = keep the data's ratio).")
    max_docs: int = Field(64, ge=1, description="Cap on documents per group when n_docs is 0.")
    sampling: Literal["hard", "random", "mixed"] = Field(
        "random",
        description="How negatives are drawn when the data has scores: hardest, random, or half each.",
    )
    # Loss
    loss_type: Literal[
        "lambdaloss", "listmle", "plistmle", "listnet", "infonce", "ranknet", "bce", "ce", "margin_mse", "kl"
    ] = Field(
        "infonce",
        description="Loss: lambdaloss, listmle, plistmle, listnet, infonce, ranknet, bce, ce, margin_mse, kl.",
    )
    temperature: float = Field(
        1.0, gt=0, description="Temperature for infonce/listnet/kl (scores are logit differences)."
    )
    infonce_mode: Literal["single", "positive_set", "per_positive"] = Field(
        "positive_set",
        description="InfoNCE with several positives: first only, log-sum-exp over all, or averaged.",
    )
    lambda_metric: Literal["ndcg", "map", "mrr"] = Field("ndcg", description="Metric LambdaLoss optimises.")
    lambda_weighting: Literal["none", "ndcgloss1", "ndcgloss2", "lambdarank", "ndcgloss2pp"] = Field(
        "ndcgloss2pp",
        description="LambdaLoss weighting: none, ndcgloss1, ndcgloss2, lambdarank, ndcgloss2pp.",
    )
    lambda_k: int | None = Field(
        None, ge=1, description="Truncation k of the LambdaLoss metric (None = full list)."
    )
    lambda_sigma: float = Field(1.0, gt=0, description="Sigmoid steepness of the pairwise terms.")
    lambda_mu: float = Field(10.0, gt=0, description="mu of NDCGLoss2++.")
    lambda_topk_rule: Literal["either", "both"] = Field(
        "either",
        description="Pairs lambda_k keeps: either document in the model's top k (sentence-transformers v6) "
        "or both (allRank).",
    )
    lambda_activation: Literal["none", "tanh", "arctan"] = Field(
        "none",
        description="LambdaLoss score activation: none, tanh (c·tanh(s/c)) or arctan ((2c/π)·arctan(πs/2c)); "
        "bounds scores to (-c, c), c = lambda_activation_scale (the seed tool's option).",
    )
    lambda_activation_scale: float = Field(
        5.0, gt=0, description="The bound c of --lambda-activation tanh/arctan."
    )
    ranknet_max_pairs: int | None = Field(
        None, ge=1, description="Sample at most this many pairs per group (RankNet)."
    )
    bce_pos_weight: float | None = Field(None, gt=0, description="Weight of positives in pointwise BCE.")

    lora: LoRAConfig = Field(default_factory=LoRAConfig, description="LoRA settings.")

    # Optimisation
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.", json_schema_extra=LR_FLAGS)
    lr_scheduler: str = Field(
        "cosine", description="Hugging Face scheduler name (linear, cosine, constant_with_warmup, ...)."
    )
    seed: int = Field(42, description="Seed for sampling, initialisation and dropout.")

    @field_validator("loss_type", "infonce_mode", mode="before")
    @classmethod
    def _seed_spellings(cls, value: object, info: ValidationInfo) -> object:
        """The original scripts' spellings (``lambda_loss``, ``posset``, ``ndcg``): config/aliases.py."""
        return canonical(info.field_name, value)

    @model_validator(mode="after")
    def _check(self) -> SFTConfig:
        if self.n_docs and self.n_pos > self.n_docs:
            raise ValueError(f"n_pos ({self.n_pos}) is larger than n_docs ({self.n_docs})")
        if self.lambda_activation != "none" and self.loss_type != "lambdaloss":
            raise ValueError(
                f"lambda_activation {self.lambda_activation} applies to loss_type lambdaloss only, "
                f"not {self.loss_type} (it would have no effect)"
            )
        return self

    # LambdaLoss options that would silently do something else are refused (issue 18). Field
    # validators run only on values given (flag or preset) and see the fields declared above them.
    @field_validator("lambda_weighting")
    @classmethod
    def _weighting_fits_metric(cls, value: str, info: ValidationInfo) -> str:
        metric = info.data.get("lambda_metric", "ndcg")
        if metric != "ndcg" and value in ("ndcgloss1", "ndcgloss2", "ndcgloss2pp"):
            raise ValueError(
                f"{value} is a bound on NDCG with no {metric} form; with lambda_metric {metric} use "
                f"lambdarank (exact |Δ{metric.upper()}| swap weights, what the default becomes)"
            )
        if metric != "ndcg" and value == "none":
            raise ValueError(
                f"none weighs every pair 1 (RankNet), so lambda_metric {metric} would have no effect; "
                "use lambdarank"
            )
        return value

    @field_validator("lambda_topk_rule")
    @classmethod
    def _topk_rule_keeps_pairs(cls, value: str, info: ValidationInfo) -> str:
        if value == "both" and info.data.get("lambda_k") == 1:
            # No pair has both documents at rank 1: the loss and every gradient would be 0.
            raise ValueError(
                "both with lambda_k 1 keeps no pair (an all-zero gradient): use either (the default) "
                "or lambda_k >= 2"
            )
        return value

    def loss_options(self) -> dict:
        """The options of every loss; the registry keeps those the chosen loss accepts."""
        return {
            "temperature": self.temperature,
            "mode": self.infonce_mode,
            "metric": self.lambda_metric,
            "weighting_scheme": self.lambda_weighting,
            "k": self.lambda_k,
            "sigma": self.lambda_sigma,
            "mu": self.lambda_mu,
            "topk_rule": self.lambda_topk_rule,
            "score_activation": self.lambda_activation,
            "activation_scale": self.lambda_activation_scale,
            "max_pairs": self.ranknet_max_pairs,
            "seed": self.seed,
            "pos_weight": self.bce_pos_weight,
        }
