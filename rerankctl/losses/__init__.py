"""Ranking, distillation, RL and reward-model losses (pure torch; one loss per module).

Ranking losses share one signature, ``fn(scores[B, N], labels[B, N], mask[B, N] | None,
**options) -> scalar`` (distillation losses take ``teacher_scores`` fourth): padded groups,
binary or graded labels, ``mask`` True for real documents, padding gets exactly zero
gradient, and the result is the mean over the groups that carry signal for that loss.
See :mod:`rerankctl.losses.registry` for the CLI names.

Importing this package imports torch and nothing heavier.
"""

from rerankctl.losses.bce import bce_loss
from rerankctl.losses.bradley_terry import bradley_terry_loss
from rerankctl.losses.ce import ce_loss
from rerankctl.losses.infonce import infonce_loss
from rerankctl.losses.kl_distill import kl_distill_loss
from rerankctl.losses.lambda_loss import (
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
    lambda_loss,
)
from rerankctl.losses.list_mle import list_mle
from rerankctl.losses.list_net import list_net
from rerankctl.losses.margin_mse import margin_mse_loss
from rerankctl.losses.margin_ranking import margin_ranking_loss
from rerankctl.losses.p_list_mle import p_list_mle
from rerankctl.losses.ranknet import ranknet_loss
from rerankctl.losses.registry import LOSS_NAMES, LOSSES, LossSpec, build_loss, get_loss, get_spec
from rerankctl.losses.rl import (
    compute_doc_level_advantages,
    compute_doc_level_rewards,
    dapo_dynamic_sampling_mask,
    dapo_loss,
    dpo_loss,
    dr_grpo_loss,
    grpo_loss,
    kl_penalty,
    reinforce_loss,
)

__all__ = [
    "LOSSES",
    "LOSS_NAMES",
    "LambdaRankScheme",
    "LossSpec",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
    "bce_loss",
    "bradley_terry_loss",
    "build_loss",
    "ce_loss",
    "compute_doc_level_advantages",
    "compute_doc_level_rewards",
    "dapo_dynamic_sampling_mask",
    "dapo_loss",
    "dpo_loss",
    "dr_grpo_loss",
    "get_loss",
    "get_spec",
    "grpo_loss",
    "infonce_loss",
    "kl_distill_loss",
    "kl_penalty",
    "lambda_loss",
    "list_mle",
    "list_net",
    "margin_mse_loss",
    "margin_ranking_loss",
    "p_list_mle",
    "ranknet_loss",
    "reinforce_loss",
]
