"""Pair-weighting schemes of the LambdaLoss framework (and |ΔMAP|, |ΔMRR| lambda weights).

A weighting scheme turns the current ranking into a ``[B, N, N]`` matrix of pair weights
``w_ij`` for :func:`rerankctl.losses.lambda_loss`. Positions are 1-based ranks in the order
the *model* currently ranks the documents; ``gain[b, i]`` is the normalised gain of the
document at rank ``i`` (``(2^y - 1) / maxDCG``), ``discount[0, i] = log2(1 + i)`` and
``true_sorted[b, i]`` its label. Schemes never carry gradient: they depend on labels and on
the (detached) sort order only.

Weights are computed for every pair of ranks; which pairs enter the loss is decided by
:func:`rerankctl.losses.lambda_loss` alone: pairs with ``y_i > y_j`` (every ordered pair for
NDCGLoss1) and, with a cut-off ``k``, its ``topk_rule`` — ``"either"`` (default, as
sentence-transformers v6: at least one document in the model's top ``k``) or ``"both"``
(allRank: both documents in the top ``k``). With ``k`` the gains are normalised by maxDCG@k, as
in both libraries.

Schemes (Wang et al., "The LambdaLoss Framework for Ranking Metric Optimization", CIKM 2018;
no arXiv version, https://research.google/pubs/pub47258/):

============================  ===========================================================
``NoWeightingScheme``         ``w_ij = 1``: plain RankNet over pairs with ``y_i > y_j``.
``NDCGLoss1Scheme``           ``w_ij = G_i / D_i``; every ordered pair (a loose NDCG bound).
``NDCGLoss2Scheme``           ``w_ij = |G_i - G_j| · δ_ij`` with
                              ``δ_ij = |1/D(|i-j|) - 1/D(|i-j|+1)|`` (tight NDCG bound).
``LambdaRankScheme``          ``w_ij = |ΔM_ij|``, the change in the metric when ranks ``i`` and
                              ``j`` swap; for NDCG ``|G_i - G_j| · |1/D_i - 1/D_j|`` (Burges 2010).
``NDCGLoss2PPScheme``         ``w_ij = μ · NDCGLoss2_ij + LambdaRank_ij`` (the paper's best).
============================  ===========================================================

``LambdaRankScheme(metric="map" | "mrr")`` gives the exact ``|ΔAP|`` / ``|ΔRR|`` of each swap
(binary relevance ``y > 0``), the LambdaRank recipe applied to other metrics (Burges,
"From RankNet to LambdaRank to LambdaMART", MSR-TR-2010-82; Donmez et al., "On the local
optimality of LambdaRank", SIGIR 2009). NDCGLoss1/2/2++ are bounds derived for NDCG only;
:func:`resolve_scheme` therefore maps them to ``LambdaRankScheme(metric)`` when the metric is
``map`` or ``mrr``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class NoWeightingScheme:
    """Uniform weights (``w_ij = 1``); LambdaLoss then equals RankNet."""

    all_pairs = False

    def __call__(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        return torch.ones((), dtype=gain.dtype, device=gain.device)


class NDCGLoss1Scheme:
    """``w_ij = G_i / D_i`` over all ordered pairs (i ≠ j), the paper's NDCG-Loss1.

    A looser bound than NDCGLoss2; the paper found it weaker. Unlike the other schemes it
    uses every ordered pair, not only pairs with ``y_i > y_j`` (``all_pairs = True``).
    """

    all_pairs = True

    def __call__(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        return (gain / discount)[:, :, None]


class NDCGLoss2Scheme:
    """``w_ij = |G_i - G_j| · |1/D(|i-j|) - 1/D(|i-j|+1)|``, the paper's NDCG-Loss2."""

    all_pairs = False

    def __call__(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        n = gain.shape[1]
        pos = torch.arange(n, device=gain.device)
        dist = (pos[:, None] - pos[None, :]).abs().to(gain.dtype)
        # D(d) = log2(1 + d); the diagonal (d = 0) is zeroed, so clamp it to avoid 1/0.
        d = dist.clamp(min=1.0)
        delta = (1.0 / torch.log2(1.0 + d) - 1.0 / torch.log2(2.0 + d)).abs()
        delta = delta.masked_fill(dist == 0, 0.0)
        return delta[None, :, :] * (gain[:, :, None] - gain[:, None, :]).abs()


class LambdaRankScheme:
    """``w_ij = |ΔM_ij|``: how much metric ``M`` changes when ranks ``i`` and ``j`` swap.

    Args:
        metric: ``"ndcg"`` (graded, from the gains), ``"map"`` or ``"mrr"`` (binary: y > 0).
    """

    all_pairs = False

    def __init__(self, metric: str = "ndcg") -> None:
        if metric not in ("ndcg", "map", "mrr"):
            raise ValueError(f"metric must be 'ndcg', 'map' or 'mrr', got {metric!r}")
        self.metric = metric

    def __call__(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        if self.metric == "map":
            return delta_average_precision(true_sorted > 0).to(gain.dtype)
        if self.metric == "mrr":
            return delta_reciprocal_rank(true_sorted > 0).to(gain.dtype)
        inv = 1.0 / discount
        return (inv[:, :, None] - inv[:, None, :]).abs() * (gain[:, :, None] - gain[:, None, :]).abs()


class NDCGLoss2PPScheme:
    """``w_ij = μ · NDCGLoss2_ij + LambdaRank_ij`` (NDCG-Loss2++; ``mu`` = 10 in the paper)."""

    all_pairs = False

    def __init__(self, mu: float = 10.0) -> None:
        self.mu = mu
        self._loss2 = NDCGLoss2Scheme()
        self._lambdarank = LambdaRankScheme("ndcg")

    def __call__(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        return self.mu * self._loss2(gain, discount, true_sorted) + self._lambdarank(
            gain, discount, true_sorted
        )


SCHEME_NAMES = ("ndcgloss2pp", "ndcgloss1", "ndcgloss2", "lambdarank", "none")


def resolve_scheme(scheme: object, metric: str, mu: float):
    """A scheme object from a name in :data:`SCHEME_NAMES` or a callable passed through."""
    if metric not in ("ndcg", "map", "mrr"):
        raise ValueError(f"metric must be 'ndcg', 'map' or 'mrr', got {metric!r}")
    if scheme is None or scheme == "none":
        return NoWeightingScheme()
    if not isinstance(scheme, str):
        if not callable(scheme):
            raise ValueError(f"weighting_scheme must be a name or a callable, got {scheme!r}")
        return scheme
    if scheme not in SCHEME_NAMES:
        raise ValueError(f"unknown weighting_scheme {scheme!r}; choose one of {', '.join(SCHEME_NAMES)}")
    if metric != "ndcg" or scheme == "lambdarank":
        # NDCGLoss1/2/2++ are NDCG bounds; for MAP/MRR the exact |ΔM| weights take their place.
        return LambdaRankScheme(metric)
    if scheme == "ndcgloss1":
        return NDCGLoss1Scheme()
    if scheme == "ndcgloss2":
        return NDCGLoss2Scheme()
    return NDCGLoss2PPScheme(mu)


def _pair_index(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    pos = torch.arange(n, device=device)
    lo = torch.minimum(pos[:, None], pos[None, :])
    hi = torch.maximum(pos[:, None], pos[None, :])
    return lo, hi


def delta_average_precision(rel: Tensor) -> Tensor:
    """``|ΔAP|`` for swapping every pair of ranks, for binary relevance ``rel[B, N]`` (bool).

    Returns a float64 ``[B, N, N]`` tensor (no gradient). For ranks ``i < j`` holding one
    relevant and one non-relevant document, with ``R`` the number of relevant documents,
    ``m`` the relevant ones above ``i``, ``k`` those strictly between, and
    ``T = Σ_{i<p<j} rel_p / p``:

        |ΔAP_ij| = ((m + 1)/i − (m + k + 1)/j + T) / R

    (the AP with the relevant document at ``i`` minus the AP with it at ``j``). Pairs with
    equal relevance, and groups with ``R = 0``, get 0.
    """
    r = rel.to(torch.float64)
    b, n = r.shape
    pos = torch.arange(1, n + 1, device=r.device, dtype=r.dtype)
    c = r.cumsum(1)  # C_p: relevant at ranks <= p
    c_prev = c - r  # C_{p-1}
    s = (r / pos).cumsum(1)  # S_p = sum_{q<=p} r_q / q
    lo, hi = _pair_index(n, r.device)
    m = c_prev[:, lo]
    k = c_prev[:, hi] - c[:, lo]
    t = (s[:, hi] - (r / pos)[:, hi]) - s[:, lo]
    delta = (m + 1.0) / pos[lo] - (m + k + 1.0) / pos[hi] + t
    num_rel = r.sum(1).clamp(min=1.0)[:, None, None]
    differ = rel[:, :, None] != rel[:, None, :]
    out = torch.where(differ, delta / num_rel, torch.zeros_like(delta))
    return out.abs()


def delta_reciprocal_rank(rel: Tensor) -> Tensor:
    """``|ΔRR|`` for swapping every pair of ranks, for binary relevance ``rel[B, N]`` (bool).

    Returns a float64 ``[B, N, N]`` tensor (no gradient). For ranks ``i < j`` holding one
    relevant and one non-relevant document: 0 if a relevant document sits above ``i``;
    otherwise ``1/i − 1/min(f, j)`` with ``f`` the first relevant rank after ``i`` (∞ if none).
    """
    r = rel.to(torch.float64)
    b, n = r.shape
    pos = torch.arange(1, n + 1, device=r.device, dtype=r.dtype)
    c_prev = r.cumsum(1) - r
    rel_pos = torch.where(rel, pos.expand(b, n), torch.full_like(r, float("inf")))
    # suffix minimum over ranks > p: reverse cummin, shifted by one
    suffix_min = torch.flip(torch.cummin(torch.flip(rel_pos, [1]), dim=1).values, [1])
    nxt = torch.cat([suffix_min[:, 1:], torch.full_like(r[:, :1], float("inf"))], dim=1)
    lo, hi = _pair_index(n, r.device)
    first_other = torch.minimum(nxt[:, lo], pos[hi].expand(b, n, n))
    delta = 1.0 / pos[lo] - 1.0 / first_other
    ok = (rel[:, :, None] != rel[:, None, :]) & (c_prev[:, lo] == 0)
    out = torch.where(ok, delta, torch.zeros_like(delta))
    return out.abs()
