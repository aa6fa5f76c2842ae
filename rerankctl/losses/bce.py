"""Pointwise binary cross-entropy on raw logits.

Formula, per real document with logit ``s`` and target ``y ∈ [0, 1]``::

    ℓ(s, y) = −[ w_+ · y · log σ(s) + (1 − y) · log(1 − σ(s)) ]

(``torch.nn.functional.binary_cross_entropy_with_logits``; ``w_+ = pos_weight``, default 1).
The group's loss is the mean over its real documents; the scalar is the mean over groups
with at least one real document. With equal-size groups and no padding this is exactly the
mean over all documents.

Targets may be soft (e.g. a teacher's probability) but must lie in [0, 1]; graded labels
such as 0-3 are rejected with a :class:`rerankctl.errors.UsageError` (rescale them, or use a
listwise loss that understands grades).

``pos_weight``: with ``n_neg`` negatives per positive, ``pos_weight = n_neg`` balances the
two classes' total weight (the usual fix when each group has 1 positive and 15 negatives).

Reference: the standard logistic-regression objective; for rerankers, Nogueira & Cho,
"Passage Re-ranking with BERT", arXiv:1901.04085 (monoBERT).

Inputs: ``scores[B, N]`` logits (not probabilities), ``labels[B, N]``, ``mask[B, N]``.

Relations: pointwise, so it is *not* shift-invariant: it calibrates ``σ(s)`` as a relevance
probability, which the listwise losses do not. Scores trained with it can be read as
``sigmoid(score)`` directly; scores from listwise losses only rank.

Example::

    >>> import torch
    >>> from rerankctl.losses import bce_loss
    >>> scores = torch.tensor([[0.0, 0.0]])
    >>> labels = torch.tensor([[1.0, 0.0]])
    >>> round(bce_loss(scores, labels).item(), 4)   # log 2
    0.6931
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rerankctl.losses._common import masked_mean, mean_over_groups, prepare


def bce_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    pos_weight: float | None = None,
) -> Tensor:
    """Pointwise BCE on logits (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]`` targets in [0, 1].
        mask: ``[B, N]`` bool, True for real documents.
        pos_weight: weight of the positive term (None: 1).
    """
    s, y, mask = prepare(scores, labels, mask, "bce_loss")
    real = y[mask]
    if real.numel() and bool(((real < 0) | (real > 1)).any()):
        from rerankctl.errors import UsageError

        bad = real[(real < 0) | (real > 1)][0].item()
        raise UsageError(
            f"bce loss needs labels in [0, 1], got {bad:g}",
            hint="rescale graded labels to [0, 1], or use a listwise loss such as lambdaloss or listnet",
        )
    pw = None if pos_weight is None else torch.tensor(float(pos_weight), dtype=s.dtype, device=s.device)
    per_doc = F.binary_cross_entropy_with_logits(s, y, reduction="none", pos_weight=pw)
    return mean_over_groups(masked_mean(per_doc, mask, dim=1), mask.any(1))
