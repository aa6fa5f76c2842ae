"""Margin-MSE: match the student's score margins to a teacher's.

Formula, for one group with student scores ``s``, teacher scores ``t`` and the ordered pairs
``P = {(i, j): both real, y_i > y_j}``::

    loss = (1 / |P|) Σ_{(i,j) ∈ P} ( (s_i − s_j) − (t_i − t_j) )²

With one positive and ``n`` negatives this is Hofstätter et al.'s triple loss averaged over
the negatives (sentence-transformers' cross-encoder ``MarginMSELoss``); with graded labels
every pair of different grades contributes. The scalar is the mean over groups with a pair.

Paper: Sebastian Hofstätter, Sophia Althammer, Michael Schröder, Mete Sertkan, Allan
Hanbury, "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
Distillation", arXiv:2010.02666.

Inputs: ``scores[B, N]`` student logits, ``labels[B, N]`` (choose the pairs),
``mask[B, N]``, ``teacher_scores[B, N]`` teacher logits on the same scale as the student's
(no gradient flows into them).

Relations: only margins matter, so it is invariant to shifting the student's (or the
teacher's) scores by a constant per group; it is zero exactly when every pair margin matches.
:func:`rerankctl.losses.kl_distill_loss` matches the whole softmax distribution instead.

Example::

    >>> import torch
    >>> from rerankctl.losses import margin_mse_loss
    >>> scores = torch.tensor([[1.0, 0.0]])
    >>> teacher = torch.tensor([[5.0, 2.0]])
    >>> labels = torch.tensor([[1.0, 0.0]])
    >>> margin_mse_loss(scores, labels, None, teacher).item()    # (1 - 3)^2
    4.0
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses._common import mean_over_groups, prepare, prepare_teacher


def margin_mse_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    teacher_scores: Tensor | None = None,
) -> Tensor:
    """Margin-MSE distillation (see module docstring)."""
    s, y, mask = prepare(scores, labels, mask, "margin_mse_loss")
    t = prepare_teacher(teacher_scores, s, mask, "margin_mse_loss")
    pairs = mask[:, :, None] & mask[:, None, :] & (y[:, :, None] > y[:, None, :])
    gap = (s[:, :, None] - s[:, None, :]) - (t[:, :, None] - t[:, None, :])
    sq = torch.where(pairs, gap * gap, torch.zeros_like(gap))
    n_pairs = pairs.sum(dim=(1, 2))
    per_group = sq.sum(dim=(1, 2)) / n_pairs.clamp(min=1).to(s.dtype)
    return mean_over_groups(per_group, n_pairs > 0)
