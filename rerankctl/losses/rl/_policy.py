"""Shared pieces of the clipped policy-gradient losses (GRPO, DAPO, Dr.GRPO).

Shapes: ``logp`` and ``old_logp`` are per-document log-probabilities under the current
policy and the rollout (old) policy, either ``[M]`` (one action per document, e.g. the
yes/no token of a reranker) or ``[M, T]`` (``T`` tokens per document, with ``mask[M, T]``
True for real tokens). ``advantages`` is ``[M]``, one per document, broadcast over tokens,
or ``[M, T]``, one per token (e.g. reward-to-go credit of each ranking position).
Advantages and ``old_logp`` never carry gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses.rl.kl import kl_penalty


def as_tokens(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor | None, name: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(logp[M, T], old_logp[M, T], advantages[M, 1], mask[M, T])`` from 1-D or 2-D inputs."""
    if old_logp.shape != logp.shape:
        raise ValueError(f"{name}: old_logp shape {tuple(old_logp.shape)} != logp {tuple(logp.shape)}")
    if logp.dim() not in (1, 2):
        raise ValueError(f"{name}: logp must be [M] or [M, T], got {tuple(logp.shape)}")
    if advantages.shape != logp.shape[:1] and advantages.shape != logp.shape:
        raise ValueError(
            f"{name}: advantages must be [M] = {tuple(logp.shape[:1])} or like logp, "
            f"got {tuple(advantages.shape)}"
        )
    if mask is None:
        mask = torch.ones_like(logp, dtype=torch.bool)
    elif mask.shape != logp.shape:
        raise ValueError(f"{name}: mask shape {tuple(mask.shape)} != logp {tuple(logp.shape)}")
    if logp.dim() == 1:
        logp, old_logp, mask = logp[:, None], old_logp[:, None], mask[:, None]
    mask = mask.to(torch.bool)
    dtype = torch.float64 if logp.dtype == torch.float64 else torch.float32
    # masked_fill first: padded tokens may hold garbage (inf) and must get exactly zero gradient.
    lp = logp.to(dtype).masked_fill(~mask, 0.0)
    old = old_logp.detach().to(dtype).masked_fill(~mask, 0.0)
    adv = advantages.detach().to(dtype)
    adv = adv[:, None] if adv.dim() == 1 else adv.masked_fill(~mask, 0.0)
    return lp, old, adv, mask


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, adv: Tensor, eps_low: float, eps_high: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """PPO's per-token loss ``−min(ρ A, clip(ρ, 1−ε_low, 1+ε_high) A)``, ``ρ = e^{logp − old}``.

    Returns ``(per_token_loss, ratio, clipped_low, clipped_high)``; the last two mark tokens
    whose gradient the clip removed (ratio below ``1−ε_low`` with ``A < 0``, or above
    ``1+ε_high`` with ``A > 0``).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    clip_low = (ratio < 1.0 - eps_low) & (adv < 0)
    clip_high = (ratio > 1.0 + eps_high) & (adv > 0)
    return per_token, ratio, clip_low, clip_high


def aggregate(per_token: Tensor, mask: Tensor, mode: str, max_len: int | None = None) -> Tensor:
    """Reduce ``per_token[M, T]`` to a scalar.

    * ``"sequence"``: mean over each document's tokens, then over documents (GRPO).
    * ``"token"``: sum over all real tokens / number of real tokens (DAPO).
    * ``"constant"``: sum over each document's tokens / ``max_len``, then mean over
      documents (Dr.GRPO: no length normalisation; ``max_len`` defaults to ``T``).
    """
    kept = torch.where(mask, per_token, torch.zeros_like(per_token))
    if mode == "token":
        return kept.sum() / mask.sum().clamp(min=1).to(kept.dtype)
    has_tokens = mask.any(1)
    n_docs = has_tokens.sum().clamp(min=1).to(kept.dtype)
    if mode == "sequence":
        per_doc = kept.sum(1) / mask.sum(1).clamp(min=1).to(kept.dtype)
    elif mode == "constant":
        per_doc = kept.sum(1) / float(max_len or per_token.shape[1])
    else:
        raise ValueError(f"aggregation must be 'sequence', 'token' or 'constant', got {mode!r}")
    return per_doc.sum() / n_docs


def _fraction(flags: Tensor, mask: Tensor) -> float:
    return float((flags & mask).sum().item()) / max(int(mask.sum().item()), 1)


def policy_loss(
    name: str,
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None,
    *,
    eps_low: float,
    eps_high: float,
    aggregation: str,
    ref_logp: Tensor | None,
    kl_coef: float,
    kl_kind: str,
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate + optional KL penalty, aggregated; with the usual training stats."""
    lp, old, adv, m = as_tokens(logp, old_logp, advantages, mask, name)
    per_token, ratio, clip_low, clip_high = clipped_surrogate(lp, old, adv, eps_low, eps_high)
    stats: dict[str, float] = {}
    if kl_coef:
        if ref_logp is None:
            raise ValueError(f"{name}: kl_coef > 0 needs ref_logp")
        ref = ref_logp.detach().to(lp.dtype).reshape(lp.shape).masked_fill(~m, 0.0)
        kl = kl_penalty(lp, ref, kind=kl_kind)
        per_token = per_token + kl_coef * kl
        stats["kl"] = float(torch.where(m, kl, torch.zeros_like(kl)).sum().item()) / max(int(m.sum()), 1)
    loss = aggregate(per_token, m, aggregation, max_len)
    with torch.no_grad():
        approx = kl_penalty(lp, old, kind="k3")
        n = max(int(m.sum().item()), 1)
        real_ratio = ratio[m]
        stats.update(
            {
                "loss": float(loss.item()),
                "clip_fraction": _fraction(clip_low | clip_high, m),
                "clip_low_fraction": _fraction(clip_low, m),
                "clip_high_fraction": _fraction(clip_high, m),
                "ratio_mean": float(torch.where(m, ratio, torch.zeros_like(ratio)).sum().item()) / n,
                "ratio_min": float(real_ratio.min().item()) if real_ratio.numel() else 1.0,
                "ratio_max": float(real_ratio.max().item()) if real_ratio.numel() else 1.0,
                "approx_kl": float(torch.where(m, approx, torch.zeros_like(approx)).sum().item()) / n,
                "advantage_mean": float(adv.expand_as(m)[m].mean().item()) if m.any() else 0.0,
            }
        )
    return loss, stats
