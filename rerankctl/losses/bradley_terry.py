"""Bradley-Terry reward-model loss, with optional margin and reward centering.

Formula, over ``M`` preference pairs with scalar rewards ``r_c`` (chosen) and ``r_r``
(rejected)::

    loss = mean_m[ −log σ(r_c − r_r − margin) ]  +  λ · mean_m[ (r_c + r_r)² ]

The first term is the negative log-likelihood of the observed preference under the
Bradley-Terry model ``P(c ≻ r) = σ(r_c − r_r)``. ``margin`` (per pair, e.g. how strongly the
annotator preferred ``c``) demands a larger gap for stronger preferences, as in Llama 2's
reward model. The second term, weighted by ``λ = center_rewards_coef``, pulls rewards
towards zero mean, which makes them comparable across prompts and keeps them in a range
where the RL stage is stable; it is TRL ``RewardTrainer``'s ``center_rewards_coefficient``
(TRL recommends 0.01).

Papers: Ralph A. Bradley, Milton E. Terry, "Rank Analysis of Incomplete Block Designs",
Biometrika 1952; Ouyang et al., "Training language models to follow instructions with human
feedback", arXiv:2203.02155 (the RLHF reward-model loss); margin: Touvron et al.,
"Llama 2", arXiv:2307.09288; centering: Eisenstein et al., "Helping or Herding? Reward
Model Ensembles Mitigate but do not Eliminate Reward Hacking", arXiv:2312.09244, eq. 2 (the
reference TRL gives for ``center_rewards_coefficient``).

Inputs: ``chosen[M]`` and ``rejected[M]`` rewards (any shape, matched elementwise),
``margin`` a float or ``[M]`` tensor (None: 0).

Relations: with ``margin=None`` and no centering it is :func:`rerankctl.losses.ranknet_loss`
on two-document groups (chosen labelled 1, rejected 0), and the DPO sigmoid loss with the
implicit rewards ``β log π/π_ref`` in place of ``r``.

Example::

    >>> import torch
    >>> from rerankctl.losses import bradley_terry_loss
    >>> c, r = torch.tensor([1.0]), torch.tensor([1.0])
    >>> round(bradley_terry_loss(c, r).item(), 4)                              # log 2
    0.6931
    >>> round(bradley_terry_loss(c, r, center_rewards_coef=0.01).item(), 4)    # + 0.01 * 4
    0.7331
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bradley_terry_loss(
    chosen: Tensor,
    rejected: Tensor,
    margin: Tensor | float | None = None,
    center_rewards_coef: float | None = None,
) -> Tensor:
    """Bradley-Terry NLL with optional margin and centering (see module docstring)."""
    if chosen.shape != rejected.shape:
        raise ValueError(
            f"bradley_terry_loss: chosen {tuple(chosen.shape)} and rejected {tuple(rejected.shape)} differ"
        )
    c = chosen.float() if chosen.dtype in (torch.float16, torch.bfloat16) else chosen
    r = rejected.to(c.dtype)
    diff = c - r
    if margin is not None:
        diff = diff - torch.as_tensor(margin, dtype=c.dtype, device=c.device)
    loss = -F.logsigmoid(diff).mean()
    if center_rewards_coef:
        loss = loss + center_rewards_coef * ((c + r) ** 2).mean()
    return loss
