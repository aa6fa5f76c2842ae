"""ListMLE: negative log-likelihood of the ideal ranking under Plackett-Luce.

Formula, for one group with its real documents sorted by label, best first
(``π(1), …, π(n)``), ``z = s / τ``::

    loss = Σ_i [ log( Σ_{j ∈ S_i} exp(z_{π(j)}) + ε ) − z_{π(i)} ]

* ``ties="index"`` (the paper): ``S_i = {i, …, n}``, all ``n`` positions. The paper breaks
  label ties at random (allRank shuffles first); here they keep index order, so with binary
  labels the loss also learns an arbitrary order *among the negatives* (by position in the
  batch).
* ``ties="breslow"`` (default): ``S_i`` is every document with label ``≤ y_{π(i)}``, the
  same risk set for all documents of a tie class, and the terms of the lowest class are
  dropped (their order carries no information). This is Breslow's tie approximation of
  the Cox partial likelihood, which Plackett-Luce is; with distinct labels it equals the
  paper's ListMLE exactly, and it never rewards an arbitrary order of tied documents.

``ε`` (default 0) is allRank's stabiliser, added inside the log stably (``logaddexp``). The
reverse log-cumsum-exp is exact without it, and ``ε > 0`` makes the loss slightly depend
on a constant shift of the scores. The scalar is the mean over groups with at least two
real documents and not all labels equal (otherwise there is no order to learn).

Paper: Fen Xia, Tie-Yan Liu, Jue Wang, Wensheng Zhang, Hang Li, "Listwise Approach to
Learning to Rank: Theory and Algorithm", ICML 2008 (no arXiv id). Breslow, "Covariance
analysis of censored survival data", Biometrics 1974.

Inputs: ``scores[B, N]`` logits, ``labels[B, N]`` binary or graded, ``mask[B, N]``.

Relations:

* :func:`rerankctl.losses.p_list_mle` with weights all 1 (``rank_weights="uniform"``,
  ``normalize=False``) equals ``list_mle`` (same ``ties``).
* ``ties="breslow"`` with binary labels: ``Σ_{p ∈ pos} (LSE(z) − z_p)``, i.e. ``|pos|`` times
  :func:`rerankctl.losses.ce_loss` at τ = 1; with one positive it equals single-positive
  :func:`rerankctl.losses.infonce_loss` at the same τ.
* Invariant to adding a constant to all scores of a group (for ``ε = 0``).

Example::

    >>> import torch
    >>> from rerankctl.losses import list_mle
    >>> scores = torch.tensor([[2.0, 0.0]])
    >>> labels = torch.tensor([[1.0, 0.0]])
    >>> round(list_mle(scores, labels).item(), 4)   # log(e^2 + 1) - 2
    0.1269
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rerankctl.losses._common import NEG_FILL, mean_over_groups, prepare, stable_sort_desc

TIES = ("breslow", "index")


def plackett_luce_terms(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    temperature: float,
    eps: float,
    ties: str,
    name: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-position Plackett-Luce terms, in label order (best first, ties by index).

    Returns ``(terms[B, N], keep[B, N], ranks[B, N], valid[B], n_real[B])``: ``terms`` are
    ``log(Σ_{j ∈ S_i} exp(z_j) + ε) − z_i`` with ``S_i`` the suffix from ``i`` (``"index"``)
    or every document with label ≤ ``y_i`` (``"breslow"``); ``keep`` marks the terms that
    count; ``ranks`` are 1-based (competition ranks "1 2 2 4" under ``"breslow"``).
    """
    if temperature <= 0:
        raise ValueError(f"{name}: temperature must be > 0, got {temperature}")
    if ties not in TIES:
        raise ValueError(f"{name}: ties must be one of {', '.join(TIES)}, got {ties!r}")
    s, y, mask = prepare(scores, labels, mask, name)
    # Padding sorts after every real document whatever its label.
    key = torch.where(mask, y, torch.full_like(y, -math.inf))
    order = stable_sort_desc(key)
    z = s.gather(1, order) / temperature
    y_sorted = y.gather(1, order)
    m_sorted = mask.gather(1, order)
    filled = z.masked_fill(~m_sorted, NEG_FILL)
    # log Σ_{j >= i} exp(z_j): reverse cumulative log-sum-exp.
    suffix = torch.flip(torch.logcumsumexp(torch.flip(filled, [1]), dim=1), [1])
    n = s.shape[1]
    y_min = torch.where(mask, y, torch.full_like(y, math.inf)).amin(1)
    y_max = torch.where(mask, y, torch.full_like(y, -math.inf)).amax(1)
    if ties == "breslow":
        # First position of each document's tie run = its competition rank - 1; the suffix
        # from there is the log-sum-exp over every document with label <= its own.
        asc = (-key.gather(1, order)).contiguous()
        first = torch.searchsorted(asc, asc, right=False).clamp(max=n - 1)
        suffix = suffix.gather(1, first)
        ranks = first.to(s.dtype) + 1.0
        keep = m_sorted & (y_sorted > y_min[:, None])  # the lowest grade's order carries no information
    else:
        ranks = torch.arange(1, n + 1, device=s.device, dtype=s.dtype).expand_as(z)
        keep = m_sorted
    if eps > 0:
        suffix = torch.logaddexp(suffix, torch.full_like(suffix, math.log(eps)))
    terms = torch.where(keep, suffix - z, torch.zeros_like(suffix))
    n_real = mask.sum(1)
    valid = (n_real >= 2) & (y_max > y_min)
    return terms, keep, ranks, valid, n_real


def list_mle(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    temperature: float = 1.0,
    eps: float = 0.0,
    ties: str = "breslow",
) -> Tensor:
    """ListMLE (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]`` relevance; only their order matters.
        mask: ``[B, N]`` bool, True for real documents.
        temperature: scores are divided by it before the Plackett-Luce model.
        eps: added to each suffix sum inside the log (allRank's stabiliser; 0 = exact).
        ties: ``"breslow"`` (tie classes share one risk set) or ``"index"`` (ties by index).

    Returns:
        Scalar: mean over valid groups of the summed per-position terms.
    """
    terms, _, _, valid, _ = plackett_luce_terms(scores, labels, mask, temperature, eps, ties, "list_mle")
    return mean_over_groups(terms.sum(1), valid)
