"""p-ListMLE: ListMLE with position-aware weights on each Plackett-Luce step.

Formula, with the group's real documents sorted by label, best first, ``n`` real
documents, rank weights ``α(i)`` and the risk sets ``S_i`` of :func:`list_mle` (``ties``)::

    loss = Σ_i α(i) · [ log( Σ_{j ∈ S_i} exp(s_{π(j)} / τ) + ε ) − s_{π(i)} / τ ]

Default weights (the paper's and TF-Ranking's ``create_p_list_mle_lambda_weight``):
``α(i) = 2^{n − i} − 1``, so getting the top of the list right matters exponentially more
than the tail. Raw exponential weights overflow float32 past ~128 documents and make the
loss scale depend on the group size, so by default they are normalised to sum to 1 per
group (``normalize=True``: ``α(i) / Σ_k α(k)``, computed as ``2^{1−i} − 2^{1−n}`` over its sum,
which never overflows). ``rank_weights="linear"`` uses ``α(i) = n − i + 1``;
``"uniform"`` uses ``α(i) = 1``.

Paper: Yanyan Lan, Yadong Zhu, Jiafeng Guo, Shuzi Niu, Xueqi Cheng, "Position-Aware
ListMLE: A Sequential Learning Process for Ranking", UAI 2014 (no arXiv id).

Inputs: ``scores[B, N]``, ``labels[B, N]`` (binary or graded), ``mask[B, N]``. The scalar is
the mean over groups with ≥ 2 real documents and not all labels equal.

Relations:

* ``p_list_mle(..., rank_weights="uniform", normalize=False)`` equals
  :func:`rerankctl.losses.list_mle`.
* With ``normalize=True`` it is a weighted *average* of ListMLE's terms rather than their
  sum, so its values (and gradients) are smaller by roughly the number of terms; scale the
  learning rate accordingly when switching.

Example::

    >>> import torch
    >>> from rerankctl.losses import p_list_mle
    >>> scores = torch.tensor([[0.0, 0.0, 0.0]])
    >>> labels = torch.tensor([[2.0, 1.0, 0.0]])
    >>> # terms log 3, log 2, 0; weights 3, 1, 0 -> (3 log 3 + log 2) / 4
    >>> round(p_list_mle(scores, labels).item(), 4)
    0.9972
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rerankctl.losses._common import mean_over_groups
from rerankctl.losses.list_mle import plackett_luce_terms

RankWeights = str | Callable[[Tensor, Tensor], Tensor]


def _rank_weights(kind: RankWeights, ranks: Tensor, n: Tensor, normalize: bool) -> Tensor:
    """``α(i)`` for 1-based ``ranks[B, N]`` and real-document counts ``n[B, 1]``."""
    if callable(kind):
        return kind(ranks, n)
    if kind == "exponential":
        if normalize:  # α / 2^{n-1}: same ratios, no overflow
            return torch.pow(2.0, 1.0 - ranks) - torch.pow(2.0, 1.0 - n)
        return torch.pow(2.0, n - ranks) - 1.0
    if kind == "linear":
        return n - ranks + 1.0
    if kind == "uniform":
        return torch.ones_like(ranks * n)
    raise ValueError(f"rank_weights must be 'exponential', 'linear', 'uniform' or a callable, got {kind!r}")


def p_list_mle(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    rank_weights: RankWeights = "exponential",
    normalize: bool = True,
    temperature: float = 1.0,
    eps: float = 0.0,
    ties: str = "breslow",
) -> Tensor:
    """Position-aware ListMLE (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]`` relevance.
        mask: ``[B, N]`` bool, True for real documents.
        rank_weights: ``"exponential"`` (``2^{n−i} − 1``), ``"linear"``, ``"uniform"`` or a callable
            ``(ranks[B, N], n[B, 1]) -> weights[B, N]`` (1-based ranks, float tensors).
        normalize: divide the weights by their sum over each group's real positions.
        temperature: scores are divided by it.
        eps: ListMLE's stabiliser inside the log (0 = exact).
        ties: as in :func:`rerankctl.losses.list_mle`; under ``"breslow"`` tied documents share
            the weight of their class's first rank and the lowest class has no term.
    """
    terms, keep, ranks, valid, n_real = plackett_luce_terms(
        scores, labels, mask, temperature, eps, ties, "p_list_mle"
    )
    b, n = terms.shape
    alpha = _rank_weights(rank_weights, ranks, n_real.to(terms.dtype)[:, None], normalize)
    alpha = torch.where(keep, alpha.expand(b, n), torch.zeros_like(terms))
    if normalize:
        alpha = alpha / alpha.sum(1, keepdim=True).clamp(min=1e-30)
    return mean_over_groups((alpha * terms).sum(1), valid)
