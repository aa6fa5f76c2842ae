"""Document-level rewards for RL on a reranker: how well each document was placed.

The policy's scores rank the group (stable sort on −score: ties keep index order, the
same rule as :mod:`rerankctl.eval.metrics`), giving each real document a 1-based rank
``π(i)``. Relevant means ``label > 0``; ``R`` is the group's number of relevant documents.
Rewards are returned as ``[B, N]`` (0 at padding) and carry no gradient.

``rank_based`` (per-document AUC): the fraction of the document's "opposite" partners (real
documents with a different label) it is correctly ordered against::

    r_i = |{j : y_j ≠ y_i, (y_i > y_j) == (π(i) < π(j))}| / |{j : y_j ≠ y_i}|

In [0, 1]; with binary labels the mean of ``r`` over the positives (or over the negatives)
is the group's ROC-AUC. Both relevant documents ranked too low and irrelevant documents
ranked too high get low rewards. 0 when every label is equal.

``ndcg_based`` (the document's share of NDCG, exponential gain; with ``k``, of NDCG@k: documents
ranked below ``k`` earn 0 and IDCG is IDCG@k)::

    r_i = (2^{y_i⁺} − 1) / log2(1 + π(i)) / IDCG,        Σ_i r_i = NDCG

``recall_based`` (the document's share of recall@k; ``k`` defaults to ``R``, so the sum is
R-precision)::

    r_i = [y_i > 0] · [π(i) ≤ k] / R,                    Σ_i r_i = recall@k

``score_based`` (agreement of the document's yes-probability with its normalised label
``ŷ_i = y_i⁺ / max_j y_j⁺``; no ranking involved)::

    r_i = 1 − |σ(s_i) − ŷ_i|

:func:`judgement_rewards` is the same reward for a *sampled* yes/no judgement ``a_i ∈ {0, 1}``
(``1 − |a_i − ŷ_i|``: 1 for "yes" on the most relevant document or "no" on an irrelevant one).

With ``ndcg_based`` and ``recall_based`` non-relevant documents always get 0, so after
group centring their advantage is negative whatever their rank; use ``rank_based`` when
irrelevant documents' placement should be rewarded too. Groups with ``R = 0`` get all 0.

References: NDCG, Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR
techniques", ACM TOIS 2002; the rewards feed the group-relative advantages of GRPO
(Shao et al., arXiv:2402.03300). These per-document decompositions are rerankctl's own
(each sums to the named metric, or averages to AUC), documented here so runs can be
compared exactly.

Example::

    >>> import torch
    >>> from rerankctl.losses import compute_doc_level_rewards
    >>> scores = torch.tensor([[3.0, 2.0, 1.0]])
    >>> labels = torch.tensor([[0.0, 1.0, 0.0]])
    >>> compute_doc_level_rewards(scores, labels, "rank_based").tolist()
    [[0.0, 0.5, 1.0]]
    >>> compute_doc_level_rewards(scores, labels, "recall_based").tolist()
    [[0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses._common import fill_padding, prepare, stable_sort_desc

REWARD_TYPES = ("rank_based", "ndcg_based", "recall_based", "score_based")


def document_ranks(scores: Tensor, mask: Tensor) -> Tensor:
    """1-based rank of every document (padding ranked after real documents)."""
    order = stable_sort_desc(fill_padding(scores, mask))
    ranks = torch.empty_like(order)
    pos = torch.arange(1, scores.shape[1] + 1, device=scores.device).expand_as(order)
    return ranks.scatter_(1, order, pos)


@torch.no_grad()
def compute_doc_level_rewards(
    scores: Tensor,
    labels: Tensor,
    reward_type: str = "rank_based",
    mask: Tensor | None = None,
    k: int | None = None,
) -> Tensor:
    """Per-document rewards ``[B, N]`` (see module docstring for each ``reward_type``).

    ``k``: cut-off of ``ndcg_based`` (NDCG@k shares) and ``recall_based`` (recall@k; default R).
    """
    if reward_type not in REWARD_TYPES:
        raise ValueError(f"reward_type must be one of {', '.join(REWARD_TYPES)}, got {reward_type!r}")
    s, y, mask = prepare(scores.detach(), labels, mask, "compute_doc_level_rewards")
    ranks = document_ranks(s, mask).to(s.dtype)
    rel = mask & (y > 0)
    n_rel = rel.sum(1, keepdim=True).to(s.dtype)

    if reward_type == "rank_based":
        both = mask[:, :, None] & mask[:, None, :]
        differ = both & (y[:, :, None] != y[:, None, :])
        correct = differ & ((y[:, :, None] > y[:, None, :]) == (ranks[:, :, None] < ranks[:, None, :]))
        n_diff = differ.sum(2).to(s.dtype)
        out = correct.sum(2).to(s.dtype) / n_diff.clamp(min=1.0)
    elif reward_type == "ndcg_based":
        grade = torch.where(mask, y.clamp(min=0.0), torch.zeros_like(y))
        disc = 1.0 / torch.log2(1.0 + ranks)
        ideal = torch.sort(grade, dim=1, descending=True).values
        pos = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=s.dtype)
        ideal_disc = 1.0 / torch.log2(1.0 + pos)
        if k is not None:
            disc = torch.where(ranks <= k, disc, torch.zeros_like(disc))
            ideal_disc = torch.where(pos <= k, ideal_disc, torch.zeros_like(ideal_disc))
        idcg = ((torch.pow(2.0, ideal) - 1.0) * ideal_disc).sum(1, keepdim=True)
        out = (torch.pow(2.0, grade) - 1.0) * disc / idcg.clamp(min=1e-30)
    elif reward_type == "score_based":
        out = 1.0 - (torch.sigmoid(s) - normalised_labels(y, mask)).abs()
    else:
        cut = n_rel if k is None else torch.full_like(n_rel, float(k))
        out = (rel & (ranks <= cut)).to(s.dtype) / n_rel.clamp(min=1.0)
    return torch.where(mask, out, torch.zeros_like(out))


def normalised_labels(labels: Tensor, mask: Tensor) -> Tensor:
    """``y⁺ / max y⁺`` per group (0 where the group has no relevant document, and at padding)."""
    y = torch.where(mask, labels.clamp(min=0.0), torch.zeros_like(labels))
    top = y.max(dim=1, keepdim=True).values
    return torch.where(top > 0, y / top.clamp(min=1e-30), torch.zeros_like(y))


@torch.no_grad()
def judgement_rewards(yes: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """``score_based`` reward of sampled yes/no judgements: ``1 − |a_i − ŷ_i|``, 0 at padding.

    ``yes`` is ``[B, N]`` (or ``[B, G, N]`` with ``labels``/``mask`` ``[B, N]``), True for "yes".
    """
    target = normalised_labels(labels.float(), mask)
    if yes.dim() == 3:
        target, mask = target[:, None, :], mask[:, None, :]
    out = 1.0 - (yes.to(target.dtype) - target).abs()
    return torch.where(mask, out, torch.zeros_like(out))
