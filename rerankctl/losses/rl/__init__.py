"""RL pieces for rerankers: rewards, advantages, policy losses (REINFORCE, GRPO, DAPO,
Dr. GRPO), DPO/IPO and the KL estimators. One concept per module; every docstring
states its exact formula."""

from rerankctl.losses.rl.advantages import compute_doc_level_advantages
from rerankctl.losses.rl.dapo import dapo_dynamic_sampling_mask, dapo_loss
from rerankctl.losses.rl.dpo import dpo_loss
from rerankctl.losses.rl.dr_grpo import dr_grpo_loss
from rerankctl.losses.rl.grpo import grpo_loss
from rerankctl.losses.rl.kl import kl_penalty
from rerankctl.losses.rl.reinforce import reinforce_loss
from rerankctl.losses.rl.rewards import compute_doc_level_rewards, judgement_rewards

__all__ = [
    "compute_doc_level_advantages",
    "compute_doc_level_rewards",
    "dapo_dynamic_sampling_mask",
    "dapo_loss",
    "dpo_loss",
    "dr_grpo_loss",
    "grpo_loss",
    "judgement_rewards",
    "kl_penalty",
    "reinforce_loss",
]
