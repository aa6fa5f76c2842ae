"""ListNet: cross-entropy between the label distribution and the softmax of the scores.

Formula, for one group over its real documents::

    p_j = exp(s_j / τ) / Σ_k exp(s_k / τ)                     (model's top-one probability)
    q_j = y_j⁺ / Σ_k y_k⁺            (target="normalize", default; y⁺ = max(y, 0))
    q_j = exp(y_j) / Σ_k exp(y_k)    (target="softmax", the paper's φ = exp on labels)
    loss = − Σ_j q_j · log p_j

The scalar is the mean over groups with at least one real document and, for
``target="normalize"``, a positive label (``Σ y⁺ > 0``; otherwise there is no target).

Paper: Zhe Cao, Tao Qin, Tie-Yan Liu, Ming-Feng Tsai, Hang Li, "Learning to Rank: From
Pairwise Approach to Listwise Approach", ICML 2007 (no arXiv id).

Why ``normalize`` is the default: with binary labels, ``softmax(labels)`` still puts mass on
every negative (``[1, 0, 0] → [0.58, 0.21, 0.21]``), so the model is trained to *keep*
negatives likely. Normalised labels put all mass on the positives. allRank and
sentence-transformers use ``softmax``; pass ``target="softmax"`` to reproduce them.

Inputs: ``scores[B, N]`` logits, ``labels[B, N]`` binary or graded, ``mask[B, N]``.

Relations:

* With one-hot labels, ``list_net(temperature=τ)`` equals
  ``infonce_loss(mode="single", temperature=τ)``; at τ = 1 both are the softmax
  cross-entropy of the positive.
* ``list_net(target="normalize", temperature=1)`` equals
  :func:`rerankctl.losses.ce_loss` (``target="distribution"``).
* Invariant to adding a constant to all scores of a group.

Example::

    >>> import torch
    >>> from rerankctl.losses import list_net
    >>> scores = torch.tensor([[1.0, 0.0, 0.0]])
    >>> labels = torch.tensor([[1.0, 0.0, 0.0]])
    >>> round(list_net(scores, labels).item(), 4)   # -log(e / (e + 2))
    0.5514
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses._common import NEG_FILL, mean_over_groups, prepare


def masked_log_softmax(values: Tensor, mask: Tensor) -> Tensor:
    """log-softmax over the real entries of each row; 0 at padding (never NaN)."""
    logp = torch.log_softmax(values.masked_fill(~mask, NEG_FILL), dim=-1)
    return torch.where(mask, logp, torch.zeros_like(logp))


def list_net(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    temperature: float = 1.0,
    target: str = "normalize",
) -> Tensor:
    """ListNet top-one cross-entropy (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]`` relevance.
        mask: ``[B, N]`` bool, True for real documents.
        temperature: scores are divided by it.
        target: ``"normalize"`` (labels / their sum) or ``"softmax"`` (softmax of labels).
    """
    if temperature <= 0:
        raise ValueError(f"list_net: temperature must be > 0, got {temperature}")
    s, y, mask = prepare(scores, labels, mask, "list_net")
    logp = masked_log_softmax(s / temperature, mask)
    if target == "normalize":
        pos = y.clamp(min=0.0)
        total = pos.sum(1, keepdim=True)
        q = pos / total.clamp(min=1e-30)
        valid = total.squeeze(1) > 0
    elif target == "softmax":
        q = torch.softmax(y.masked_fill(~mask, NEG_FILL), dim=1)
        q = torch.where(mask, q, torch.zeros_like(q))
        valid = mask.any(1)
    else:
        raise ValueError(f"list_net: target must be 'normalize' or 'softmax', got {target!r}")
    return mean_over_groups(-(q * logp).sum(1), valid)
