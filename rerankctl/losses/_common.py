"""Shared plumbing for the ranking losses: input checks, masking and the group mean.

Every ranking loss takes padded groups ``scores[B, N]``, ``labels[B, N]`` and an optional
boolean ``mask[B, N]`` (True for real documents). Padding must get *exactly* zero gradient
and must never turn a loss into NaN, so the losses follow three rules:

1. Padded scores are replaced with ``masked_fill`` before any arithmetic. ``masked_fill``'s
   backward writes zeros at the filled positions whatever arrives from above, so padding
   gets an exact zero gradient even if the caller padded with NaN or inf.
2. Where a softmax / log-sum-exp must ignore padding, padding is filled with
   :data:`NEG_FILL` (a large *finite* negative) rather than ``-inf``: ``exp`` underflows to
   exactly 0, yet ``0 * log p`` and ``(-inf) - (-inf)`` can never appear, so neither the
   forward pass nor the backward pass can produce NaN.
3. Groups that carry no signal for a loss (no real document, no positive, no pair) are
   dropped from the mean by :func:`mean_over_groups` instead of contributing NaN or 0.

Scores are upcast to at least float32 for the loss arithmetic (bf16 logits lose the
small differences ranking losses live on); the gradient flows back in the input dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Fill value for padded logits inside softmax/log-sum-exp. Finite on purpose (see above);
#: exp(NEG_FILL - m) is exactly 0 in float32/float64 for any realistic score m.
NEG_FILL = -1e30


def prepare(scores: Tensor, labels: Tensor, mask: Tensor | None, name: str) -> tuple[Tensor, Tensor, Tensor]:
    """Check shapes and return ``(scores, labels, mask)`` ready for loss arithmetic.

    Returns scores upcast to float32 (or float64 if given) with padding set to 0, labels as
    the same float dtype with padding set to 0, and a boolean mask (all True if ``None``).
    """
    if scores.dim() != 2:
        raise ValueError(f"{name}: scores must have shape [B, N], got {tuple(scores.shape)}")
    if labels.shape != scores.shape:
        raise ValueError(
            f"{name}: labels shape {tuple(labels.shape)} does not match scores {tuple(scores.shape)}"
        )
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    else:
        if mask.shape != scores.shape:
            raise ValueError(
                f"{name}: mask shape {tuple(mask.shape)} does not match scores {tuple(scores.shape)}"
            )
        mask = mask.to(device=scores.device, dtype=torch.bool)
    dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    s = scores.to(dtype).masked_fill(~mask, 0.0)
    y = labels.detach().to(device=scores.device, dtype=dtype).masked_fill(~mask, 0.0)
    return s, y, mask


def prepare_teacher(teacher_scores: Tensor | None, like: Tensor, mask: Tensor, name: str) -> Tensor:
    """Teacher scores as a float tensor shaped like ``like`` with padding set to 0 (no grad)."""
    if teacher_scores is None:
        raise ValueError(f"{name} needs teacher_scores (a [B, N] tensor of teacher logits)")
    if teacher_scores.shape != like.shape:
        raise ValueError(
            f"{name}: teacher_scores shape {tuple(teacher_scores.shape)} does not match "
            f"scores {tuple(like.shape)}"
        )
    return teacher_scores.detach().to(device=like.device, dtype=like.dtype).masked_fill(~mask, 0.0)


def fill_padding(values: Tensor, mask: Tensor, fill: float = NEG_FILL) -> Tensor:
    """``values`` with padded positions set to ``fill`` (default: a huge finite negative)."""
    return values.masked_fill(~mask, fill)


def mean_over_groups(per_group: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``per_group[B]`` over the groups where ``valid[B]`` is True.

    Invalid groups are replaced by 0 with ``torch.where`` (their values are finite by
    construction, so no NaN can leak through the backward pass). With no valid group at all
    the result is a zero that is still attached to the graph, so ``loss.backward()`` works
    and every gradient is exactly zero.
    """
    kept = torch.where(valid, per_group, torch.zeros_like(per_group))
    count = valid.sum().clamp(min=1).to(per_group.dtype)
    return kept.sum() / count


def masked_mean(values: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Mean of ``values`` over ``dim`` counting only ``mask`` entries (0 where none)."""
    kept = torch.where(mask, values, torch.zeros_like(values))
    count = mask.sum(dim=dim).clamp(min=1).to(values.dtype)
    return kept.sum(dim=dim) / count


def stable_sort_desc(keys: Tensor) -> Tensor:
    """Indices that sort ``keys`` descending along the last dim; ties keep index order."""
    return torch.sort(keys.detach(), dim=-1, descending=True, stable=True).indices
