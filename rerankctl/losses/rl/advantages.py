"""Group-relative advantages from per-document rewards.

For entries ``m`` with reward ``r_m`` in group ``g(m)`` (``group_ids``; e.g. the query a
document belongs to), with ``μ_g`` the group mean::

    scale="group":  A_m = (r_m − μ_g) / (σ_g + eps)      σ_g: group std, unbiased (GRPO, TRL)
    scale="batch":  A_m = (r_m − μ_g) / (σ_B + eps)      σ_B: std of all rewards in the batch
    scale="none":   A_m =  r_m − μ_g                      (Dr. GRPO)

Every variant sums to zero within each group (up to float rounding). Groups of one entry
get advantage 0 (their std is taken as 0). Entries where ``mask`` is False get 0 and are
left out of the means and stds.

Papers: GRPO, Shao et al., arXiv:2402.03300 (group z-score); Dr. GRPO, Liu et al.,
arXiv:2503.20783 (no std); batch std with group mean: Liu et al., "Tricks or Traps? A Deep
Dive into RL for LLM Reasoning" (Lite PPO), arXiv:2508.08221, and REINFORCE++ (Hu,
arXiv:2501.03262).

Example::

    >>> import torch
    >>> from rerankctl.losses import compute_doc_level_advantages
    >>> r = torch.tensor([1.0, 0.0, 0.5, 0.5])
    >>> g = torch.tensor([0, 0, 1, 1])
    >>> compute_doc_level_advantages(r, g, scale="none").tolist()
    [0.5, -0.5, 0.0, 0.0]
"""

from __future__ import annotations

import torch
from torch import Tensor

SCALES = ("group", "batch", "none")


@torch.no_grad()
def compute_doc_level_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    scale: str = "group",
    eps: float = 1e-6,
    mask: Tensor | None = None,
) -> Tensor:
    """Group-centred (and optionally scaled) advantages, same shape and dtype as ``rewards``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if rewards.shape != group_ids.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group_ids {tuple(group_ids.shape)} differ")
    r = rewards.detach().reshape(-1).to(torch.float64)
    w = torch.ones_like(r) if mask is None else mask.reshape(-1).to(device=r.device, dtype=torch.float64)
    r = torch.where(w > 0, r, torch.zeros_like(r))  # masked entries may hold garbage (NaN)
    _, inv = torch.unique(group_ids.reshape(-1).to(r.device), return_inverse=True)
    n_groups = int(inv.max().item()) + 1 if inv.numel() else 0
    count = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, inv, w)
    total = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, inv, r)
    mean = total / count.clamp(min=1.0)
    centred = (r - mean[inv]) * w
    if scale == "group":
        sq = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, inv, centred * centred)
        std = torch.sqrt(sq / (count - 1.0).clamp(min=1.0))
        adv = centred / (std[inv] + eps)
    elif scale == "batch":
        n = w.sum()
        batch_mean = r.sum() / n.clamp(min=1.0)
        var = (((r - batch_mean) * w) ** 2).sum() / (n - 1.0).clamp(min=1.0)
        adv = centred / (torch.sqrt(var) + eps)
    else:
        adv = centred
    return (adv * w).reshape(rewards.shape).to(rewards.dtype)
