"""GRPO policy loss: PPO's clipped surrogate with group-normalised advantages.

Formula, per real token ``t`` of document ``i`` (``ρ = exp(logp − old_logp)``, advantage
``A_i`` from :func:`compute_doc_level_advantages` with ``scale="group"``)::

    ℓ_{i,t} = −min(ρ A_i, clip(ρ, 1 − ε, 1 + ε) A_i) + β · k3(logp, ref_logp)
    loss    = mean_i [ (1 / |o_i|) Σ_t ℓ_{i,t} ]          (sequence-level mean)

For a reranker with one yes/no action per document ``|o_i| = 1`` and the loss is the mean
over documents. ``β = kl_coef`` (default 0, TRL's current default; DeepSeekMath used 0.04).

Paper: Zhihong Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in
Open Language Models", arXiv:2402.03300 (eq. 3-4); PPO clip: Schulman et al.,
arXiv:1707.06347.

Inputs: ``logp`` and ``old_logp`` ``[M]`` or ``[M, T]``, ``advantages[M]``, ``mask`` like
``logp``; ``ref_logp`` like ``logp`` when ``kl_coef > 0``.

Returns: ``(loss, stats)`` with ``clip_fraction``, ``clip_low_fraction``,
``clip_high_fraction``, ``ratio_mean``, ``approx_kl`` (k3 between old and new policy),
``advantage_mean``, ``loss`` and ``kl`` (when a reference is given).

Relations: :func:`dapo_loss` with ``eps_low = eps_high = ε`` and ``aggregation="sequence"``
is GRPO; :func:`dr_grpo_loss` drops the ``1/|o_i|``. At ``old_logp == logp`` (first step on
fresh rollouts) the gradient is ``−mean A_i ∇logp``, REINFORCE's.

Example::

    >>> import torch
    >>> from rerankctl.losses import grpo_loss
    >>> logp = torch.log(torch.tensor([0.5, 0.5]))
    >>> loss, stats = grpo_loss(logp, logp, torch.tensor([1.0, -1.0]))
    >>> loss.item(), stats["clip_fraction"]
    (0.0, 0.0)
"""

from __future__ import annotations

from torch import Tensor

from rerankctl.losses.rl._policy import policy_loss


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    clip_eps: float = 0.2,
    ref_logp: Tensor | None = None,
    kl_coef: float = 0.0,
    kl_kind: str = "k3",
) -> tuple[Tensor, dict[str, float]]:
    """GRPO clipped surrogate (see module docstring)."""
    return policy_loss(
        "grpo_loss",
        logp,
        old_logp,
        advantages,
        mask,
        eps_low=clip_eps,
        eps_high=clip_eps,
        aggregation="sequence",
        ref_logp=ref_logp,
        kl_coef=kl_coef,
        kl_kind=kl_kind,
    )
