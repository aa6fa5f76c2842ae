"""DAPO policy loss (decoupled clip, token-level mean) and its dynamic-sampling filter.

Formula, per real token ``t`` of document ``i`` (``ρ = exp(logp − old_logp)``)::

    ℓ_{i,t} = −min(ρ A_i, clip(ρ, 1 − ε_low, 1 + ε_high) A_i)
    loss    = Σ_{i,t} ℓ_{i,t} / Σ_i |o_i|                       (aggregation="token")
    loss    = mean_i (1/|o_i|) Σ_t ℓ_{i,t}                       (aggregation="sequence")

"Clip-higher" (``ε_high > ε_low``; paper: 0.2 / 0.28) lets low-probability actions grow
faster, which keeps entropy from collapsing. The token-level mean weights every token
equally, so long outputs are not under-weighted. DAPO drops the KL term; ``kl_coef`` is
kept for experiments (default 0).

Dynamic sampling: groups whose rewards are all equal have zero advantage everywhere and
only shrink the batch's effective size; :func:`dapo_dynamic_sampling_mask` marks them. This
function only marks; the refill is the trainer's job (:class:`rerankctl.train.rl.RLTrainer`
drops such groups and draws further query groups from the training data until the batch is
full again or ``dynamic_sampling_max_draws`` extra batches were scored, as the paper's
``max_num_gen_batches``).

Overlong reward shaping (the paper's soft penalty on truncated responses) does not apply:
a reranker generates no text, every action has a fixed length.

Paper: Qiying Yu et al., "DAPO: An Open-Source LLM Reinforcement Learning System at
Scale", arXiv:2503.14476.

Inputs and returned stats: as :func:`rerankctl.losses.grpo_loss`.

Relations: ``dapo_loss(eps_low=ε, eps_high=ε, aggregation="sequence")`` equals
``grpo_loss(clip_eps=ε)``. With one token per document the two aggregations are equal.

Example::

    >>> import torch
    >>> from rerankctl.losses import dapo_dynamic_sampling_mask
    >>> rewards = torch.tensor([1.0, 1.0, 0.0, 1.0])
    >>> groups = torch.tensor([0, 0, 1, 1])
    >>> dapo_dynamic_sampling_mask(rewards, groups).tolist()
    [False, False, True, True]
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses.rl._policy import policy_loss


def dapo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    aggregation: str = "token",
    ref_logp: Tensor | None = None,
    kl_coef: float = 0.0,
    kl_kind: str = "k3",
) -> tuple[Tensor, dict[str, float]]:
    """DAPO clipped surrogate (see module docstring)."""
    if aggregation not in ("token", "sequence"):
        raise ValueError(f"dapo_loss: aggregation must be 'token' or 'sequence', got {aggregation!r}")
    return policy_loss(
        "dapo_loss",
        logp,
        old_logp,
        advantages,
        mask,
        eps_low=eps_low,
        eps_high=eps_high,
        aggregation=aggregation,
        ref_logp=ref_logp,
        kl_coef=kl_coef,
        kl_kind=kl_kind,
    )


def dapo_dynamic_sampling_mask(rewards: Tensor, group_ids: Tensor, atol: float = 0.0) -> Tensor:
    """True for entries whose group's rewards are not all equal (within ``atol``).

    ``rewards`` and ``group_ids`` have the same shape; any integer group ids (not
    necessarily contiguous). One ``scatter_reduce`` for the max and one for the min.
    """
    if rewards.shape != group_ids.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group_ids {tuple(group_ids.shape)} differ")
    r = rewards.detach().reshape(-1).to(torch.float64)
    _, inv = torch.unique(group_ids.reshape(-1), return_inverse=True)
    n_groups = int(inv.max().item()) + 1 if inv.numel() else 0
    hi = torch.full((n_groups,), -torch.inf, dtype=r.dtype, device=r.device)
    lo = torch.full((n_groups,), torch.inf, dtype=r.dtype, device=r.device)
    hi = hi.scatter_reduce(0, inv, r, reduce="amax")
    lo = lo.scatter_reduce(0, inv, r, reduce="amin")
    return ((hi - lo)[inv] > atol).reshape(rewards.shape)
