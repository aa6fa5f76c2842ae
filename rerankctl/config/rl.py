"""Configuration of `rerankctl train rl` (defaults < preset < flags).

Field names shared with :class:`rerankctl.config.sft.SFTConfig` (optimisation, bookkeeping, group
sampling) mean the same thing, so the SFT runner's helpers (``training_arguments``,
``build_datasets``, ``resolve_resume``) serve both commands.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rerankctl.config.aliases import canonical
from rerankctl.config.base import (
    DATA,
    LR_FLAGS,
    MODEL,
    OPTIM,
    cli,
)
from rerankctl.config.run_settings import RankerRunSettings
from rerankctl.config.sft import LoRAConfig

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "reinforce", "dpo")
REWARD_TYPES = ("rank_based", "ndcg_based", "recall_based", "score_based")


class RLConfig(RankerRunSettings):
    """Everything `train rl` needs. Every field is a flag (`--kl-coef`) and a preset key (`kl_coef`)."""

    cli_sections = {
        "sft_model": MODEL,
        "streaming": DATA,
        "loss_type": "RL objective",
        "lora": MODEL,
        "learning_rate": OPTIM,
    }

    # What to train
    sft_model: str | None = Field(
        None,
        description="The SFT result to start from: a full model dir or a LoRA adapter dir (final/).",
        json_schema_extra=cli(check="model"),
    )
    base_model: str | None = Field(
        None,
        description="Base model of an SFT adapter (default: the adapter's base_model_name_or_path); "
        "without sft_model, RL starts from this base model (it is then the reference).",
        json_schema_extra=cli(check="model"),
    )
    streaming: bool = Field(
        False, description="Stream the JSONL training data (constant memory; needs max_steps)."
    )
    n_docs: int = Field(0, ge=0, description="Documents per query group (0 = all, capped by max_docs).")
    n_pos: int = Field(0, ge=0, description="Positives per group (0 = keep the data's ratio).")
    max_docs: int = Field(32, ge=2, description="Cap on documents per group when n_docs is 0.")
    sampling: Literal["hard", "random", "mixed"] = Field(
        "random",
        description="How negatives are drawn when a group is sub-sampled: hardest, random, or half each.",
    )
    # The RL objective
    loss_type: Literal["grpo", "dapo", "dr_grpo", "reinforce", "dpo"] = Field(
        "dapo",
        description="Policy loss on rollouts: grpo, dapo, dr_grpo, reinforce; or dpo (candidate pairs, no rollouts).",
        json_schema_extra=cli(aliases="rl_loss_type"),
    )
    policy: Literal["plackett-luce", "pointwise"] = Field(
        "plackett-luce",
        description="Action space: a Plackett-Luce ranking of the scores, or a yes/no judgement per document.",
    )
    reward_type: Literal["rank_based", "ndcg_based", "recall_based", "score_based"] = Field(
        "ndcg_based",
        description="Reward: per-document AUC (rank_based), NDCG share, recall share, or yes/no agreement "
        "with the label (score_based; pointwise policy).",
    )
    reward_k: int | None = Field(
        None, ge=1, description="Cut-off of the ndcg_based (NDCG@k) and recall_based (recall@k) rewards."
    )
    scale_rewards: Literal["group", "batch", "none"] | None = Field(
        None,
        description="Advantage scale: group std, batch std or none (default: none for dr_grpo, group otherwise).",
    )
    num_iterations: int = Field(
        1, ge=1, description="Optimisation passes over each stored rollout (mu); the clip acts from pass 2."
    )
    steps_per_rollout: int = Field(
        1,
        ge=1,
        description="Optimizer steps (mini-batches of batch_size x accumulation) in one pass over a rollout.",
    )
    num_samples: int = Field(
        16, ge=2, description="Rankings sampled per query (the GRPO group); costs no extra forward pass."
    )
    credit: Literal["reward_to_go", "ranking"] = Field(
        "reward_to_go",
        description="Credit of each ranking position: the reward still to come (lower variance) or the whole ranking's.",
    )
    temperature: float = Field(
        1.0, gt=0, description="Policy temperature tau: rankings ~ Plackett-Luce(s / tau)."
    )
    kl_coef: float = Field(
        0.0, ge=0, description="Weight of the k3 KL penalty to the reference (the SFT model)."
    )
    log_reference_kl: bool = Field(
        True,
        description="Score the reference every step to log the KL even when kl_coef is 0 (one no-grad pass).",
    )
    kl_kind: Literal["k3", "k1", "k2"] = Field("k3", description="KL estimator per ranking position.")
    clip_eps: float = Field(0.2, gt=0, description="PPO clip range (grpo, dr_grpo; DAPO's lower bound).")
    clip_eps_high: float = Field(0.28, gt=0, description="DAPO upper clip bound (clip-higher).")
    dapo_dynamic_sampling: bool = Field(
        True,
        description="DAPO: replace query groups whose samples all earn the same reward with fresh groups from the data.",
        json_schema_extra=cli("--dynamic-sampling", hidden=("--dapo-dynamic-sampling",)),
    )
    dynamic_sampling_max_draws: int = Field(
        4,
        ge=0,
        description="DAPO refill: extra batches scored at most per micro-batch before training on fewer groups.",
    )
    dpo_beta: float = Field(0.1, gt=0, description="DPO beta (strength of the implicit KL to the reference).")
    dpo_loss_type: Literal["sigmoid", "ipo"] = Field("sigmoid", description="DPO variant.")
    dpo_max_pairs: int | None = Field(
        None, ge=1, description="Sample at most this many (positive, negative) pairs per group (DPO)."
    )
    dpo_reference_free: bool = Field(
        False,
        description="DPO without a reference model (reference log-probabilities 0).",
        json_schema_extra=cli(off="--dpo-with-reference"),
    )

    lora: LoRAConfig = Field(
        default_factory=LoRAConfig, description="The fresh RL LoRA adapter (must be enabled)."
    )

    # Optimisation
    learning_rate: float = Field(1e-5, gt=0, description="Peak learning rate.", json_schema_extra=LR_FLAGS)
    lr_scheduler: str = Field("constant_with_warmup", description="Hugging Face scheduler name.")
    seed: int = Field(42, description="Seed for sampling (data and rollouts), initialisation and dropout.")

    @field_validator("loss_type", "reward_type", mode="before")
    @classmethod
    def _seed_spellings(cls, value: object, info: ValidationInfo) -> object:
        """The original scripts' spellings (``lambda_loss``, ``posset``, ``ndcg``): config/aliases.py."""
        return canonical("rl_loss_type" if info.field_name == "loss_type" else info.field_name, value)

    @model_validator(mode="after")
    def _check(self) -> RLConfig:
        if self.n_docs and self.n_pos > self.n_docs:
            raise ValueError(f"n_pos ({self.n_pos}) is larger than n_docs ({self.n_docs})")
        if self.n_docs == 1:
            raise ValueError("n_docs 1 cannot be ranked: use 0 (all documents) or at least 2")
        if self.reward_type == "score_based" and self.policy != "pointwise":
            raise ValueError("reward_type score_based rewards yes/no judgements: use policy pointwise")
        if self.loss_type == "dpo" and self.policy != "plackett-luce":
            raise ValueError(
                "dpo trains on candidate pairs, not rollouts: policy applies to the other losses"
            )
        if self.loss_type == "reinforce" and self.num_iterations > 1:
            raise ValueError(
                "reinforce has no importance ratio: use grpo/dapo/dr_grpo with num_iterations > 1"
            )
        if not self.lora.enabled:
            raise ValueError(
                "RL trains a LoRA adapter: the reference policy is the model with the adapter disabled"
            )
        return self
