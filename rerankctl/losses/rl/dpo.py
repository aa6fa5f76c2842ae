"""DPO (sigmoid) and IPO preference losses on policy and reference log-probs.

With summed log-probs of the chosen/rejected responses under the policy (``π_c``, ``π_r``)
and the frozen reference (``ρ_c``, ``ρ_r``)::

    h = (π_c − ρ_c) − (π_r − ρ_r)
    sigmoid (DPO):  loss = mean[ −(1 − ε) log σ(β h) − ε log σ(−β h) ]   (ε: label_smoothing)
    ipo:            loss = mean[ (h − 1/(2β))² ]

The implicit rewards are ``β (π − ρ)``; stats report their means for chosen and rejected,
their margin, and the accuracy (fraction of pairs with chosen reward > rejected reward).
At policy == reference ``h = 0``: the sigmoid loss is ``log 2`` and the IPO loss ``1/(4β²)``.

Papers: Rafael Rafailov et al., "Direct Preference Optimization: Your Language Model is
Secretly a Reward Model", arXiv:2305.18290; IPO: Mohammad Gheshlaghi Azar et al., "A
General Theoretical Paradigm to Understand Learning from Human Preferences",
arXiv:2310.12036; label smoothing (conservative DPO): Mitchell, "A note on DPO with noisy
preferences" (2023).

Inputs: four ``[M]`` tensors of summed log-probs (the reference ones carry no gradient).

Relations: the sigmoid loss is :func:`rerankctl.losses.bradley_terry_loss` on the implicit
rewards.

Example::

    >>> import torch
    >>> from rerankctl.losses import dpo_loss
    >>> lp = torch.tensor([-3.0, -5.0])
    >>> loss, stats = dpo_loss(lp, lp - 1.0, lp, lp - 1.0, beta=0.1)
    >>> round(loss.item(), 4)                # log 2
    0.6931
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """DPO/IPO loss and implicit-reward stats (see module docstring)."""
    if beta <= 0:
        raise ValueError(f"dpo_loss: beta must be > 0, got {beta}")
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1:
        raise ValueError(f"dpo_loss: the four log-prob tensors must have one shape, got {sorted(shapes)}")
    dtype = torch.float64 if policy_chosen.dtype == torch.float64 else torch.float32
    pc, pr = policy_chosen.to(dtype), policy_rejected.to(dtype)
    rc, rr = ref_chosen.detach().to(dtype), ref_rejected.detach().to(dtype)
    h = (pc - rc) - (pr - rr)
    if loss_type == "sigmoid":
        losses = -(1.0 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    elif loss_type == "ipo":
        losses = (h - 1.0 / (2.0 * beta)) ** 2
    else:
        raise ValueError(f"dpo_loss: loss_type must be 'sigmoid' or 'ipo', got {loss_type!r}")
    loss = losses.mean()
    with torch.no_grad():
        reward_c = beta * (pc - rc)
        reward_r = beta * (pr - rr)
        stats = {
            "loss": float(loss.item()),
            "reward_chosen": float(reward_c.mean().item()),
            "reward_rejected": float(reward_r.mean().item()),
            "reward_margin": float((reward_c - reward_r).mean().item()),
            "reward_accuracy": float((reward_c > reward_r).to(dtype).mean().item()),
        }
    return loss, stats
