"""Group softmax cross-entropy: the "CE" loss of cross-encoder reranker training.

Formula, for one group with ``p_j = softmax(s)_j`` over its real documents::

    target="distribution" (default):  loss = − Σ_j q_j log p_j,  q_j = y_j⁺ / Σ_k y_k⁺
    target="first_positive":          loss = − log p_f,  f = first document with y > 0

With one positive both are ``−log p_pos``; with several, ``distribution`` spreads the target
evenly over binary positives (proportionally over graded ones), while ``first_positive``
treats the other positives as extra negatives (FlagEmbedding's reranker convention, where
the positive is always document 0). The scalar is the mean over groups with a positive.

Reference: the softmax "localized contrastive estimation" loss of Gao, Dai, Callan,
"Rethink Training of BERT Rerankers in Multi-Stage Retrieval Pipeline", arXiv:2101.08751.

Inputs: ``scores[B, N]`` logits, ``labels[B, N]`` (binary or graded), ``mask[B, N]``.

Relations:

* ``ce_loss(target="distribution")`` equals ``list_net(target="normalize", temperature=1)``.
* ``ce_loss(target="first_positive")`` with one positive equals
  ``infonce_loss(temperature=1)`` in every mode.
* Invariant to adding a constant to all scores of a group.

Example::

    >>> import torch
    >>> from rerankctl.losses import ce_loss
    >>> scores = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    >>> labels = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    >>> round(ce_loss(scores, labels).item(), 4)                          # log 4
    1.3863
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses._common import mean_over_groups, prepare
from rerankctl.losses.list_net import masked_log_softmax


def ce_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    target: str = "distribution",
) -> Tensor:
    """Group softmax cross-entropy (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]`` relevance (> 0 is positive).
        mask: ``[B, N]`` bool, True for real documents.
        target: ``"distribution"`` or ``"first_positive"``.
    """
    s, y, mask = prepare(scores, labels, mask, "ce_loss")
    logp = masked_log_softmax(s, mask)
    pos = y.clamp(min=0.0) * mask
    valid = (pos > 0).any(1)
    if target == "distribution":
        q = pos / pos.sum(1, keepdim=True).clamp(min=1e-30)
        per_group = -(q * logp).sum(1)
    elif target == "first_positive":
        first = (pos > 0).to(torch.int8).argmax(1, keepdim=True)
        per_group = -logp.gather(1, first).squeeze(1)
    else:
        raise ValueError(f"ce_loss: target must be 'distribution' or 'first_positive', got {target!r}")
    return mean_over_groups(per_group, valid)
