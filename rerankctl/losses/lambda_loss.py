"""LambdaLoss: metric-driven pairwise logistic loss (Wang et al., CIKM 2018).

Formula, for one group ranked by the model's current scores (rank ``π(i)`` of document
``i``, labels ``y``, gains ``G_i = (2^{y_i} − 1) / maxDCG@k``, discounts ``D_i = log2(1 + π(i))``)::

    loss = (1 / |P|) Σ_{(i,j) ∈ P} w_ij · −log σ(σ_s · (s_i − s_j))

    P = {(i, j): both real, y_i > y_j, π(i) ≤ k or π(j) ≤ k}      (all i ≠ j for NDCGLoss1)

with ``w_ij`` from the weighting scheme (see :mod:`rerankctl.losses.lambda_weighting`).
The scalar is the mean over groups that have at least one pair and a positive label.

Paper: Xuanhui Wang, Cheng Li, Nadav Golbandi, Michael Bendersky, Marc Najork, "The
LambdaLoss Framework for Ranking Metric Optimization", CIKM 2018 (no arXiv id;
https://research.google/pubs/pub47258/).

The top-k pair rule (``topk_rule``), chosen deliberately:

* ``"either"`` (default): a pair counts if **either** document is in the model's top ``k``
  (``π(i) ≤ k or π(j) ≤ k``), as sentence-transformers v6 ``LambdaLoss`` does ("a document pair
  contributes to the loss if at least one of the two documents is in the model's top K"; the
  paper's NDCG@k bound, Eq. 18: swapping a top-k document with one below k changes NDCG@k, so
  those pairs carry the metric's gradient). ``k = 1`` is meaningful: the pairs of the top
  document with every other one.
* ``"both"``: a pair counts only if **both** documents are in the top ``k``, allRank's rule
  (``allrank/models/losses/lambdaLoss.py``: ``ndcg_at_k_mask[:k, :k] = 1``). Pairs that cross
  the cut-off get no gradient, so a relevant document ranked below ``k`` is never pulled up;
  ``k = 1`` would leave no pair at all (an all-zero gradient) and is refused.

The two rules differ only when ``k`` is below the group size.

Score activation (``score_activation``, ``activation_scale`` = ``c``), applied to the scores
before ranking and pairing::

    none:   s' = s
    tanh:   s' = c · tanh(s / c)
    arctan: s' = (2c / π) · arctan(π s / (2c))

Both squash monotonically (the model's ranking, and so every swap weight, is unchanged), have
slope 1 at 0 and stay inside ``(−c, c)``, so a pair's difference is bounded by ``2c`` and a few
pairs with runaway logits cannot dominate the loss (their gradient fades as they saturate).
From the seed (original Qwen3-Reranker) training scripts' LambdaLoss option of "tanh / arctan
scaled" score activations, named in issue 16; their exact constants were not available, so
these are the bounded, slope-1 forms (an arctan without the π/2c factor would bound at c·π/2).

Inputs: ``scores[B, N]`` raw logits (any real number), ``labels[B, N]`` binary or graded
(negative grades count as gain 0), ``mask[B, N]`` True for real documents.

Choices a researcher should know:

* ``metric="map"`` / ``"mrr"`` use exact ``|ΔAP|`` / ``|ΔRR|`` swap weights (LambdaRank
  recipe) for every scheme except ``"none"``; the NDCG bounds 1/2/2++ have no MAP/MRR form.
* ``−log σ(x)`` is computed as ``softplus(−x)`` in natural log. allRank and
  sentence-transformers use ``log2`` with a clamp at ``eps``; their value is this one
  divided by ``ln 2``, and the clamp kills gradients of badly ordered pairs, which
  ``softplus`` does not. ``eps`` only guards the division by maxDCG.
* Ties in the model's scores are ranked by original index (stable sort).
* NDCGLoss1 averages over the ordered pairs ``i ≠ j``. allRank and sentence-transformers also
  count the ``n`` diagonal cells ``(i, i)``, each the constant ``ln 2 · G_i / D_i`` (no
  gradient), which only changes the normalisation; otherwise every scheme and ``k`` equals
  sentence-transformers v6 ``LambdaLoss(reduction_log="natural")`` on one group
  (``tests/unit/test_loss_lambda.py``).

Relations:

* ``weighting_scheme="none"`` (any metric) equals :func:`rerankctl.losses.ranknet_loss`
  with the same ``sigma`` and no ``max_pairs``.
* ``"lambdarank"`` weights are the LambdaRank gradients' ``|ΔNDCG|`` (Burges 2010).

Example::

    >>> import torch
    >>> from rerankctl.losses import lambda_loss
    >>> scores = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    >>> labels = torch.tensor([[1.0, 0.0, 0.0]])
    >>> round(lambda_loss(scores, labels, weighting_scheme="none").item(), 4)  # = RankNet
    1.0032
    >>> loss = lambda_loss(scores, labels)                       # NDCGLoss2++
    >>> loss.backward(); bool(scores.grad[0, 0] < 0)             # push the positive up
    True
    >>> round(lambda_loss(scores, labels, weighting_scheme="none", score_activation="tanh",
    ...                   activation_scale=0.5).item(), 4)  # (softplus(0.5·tanh(2)) + ln 2) / 2
    0.828
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rerankctl.losses._common import fill_padding, mean_over_groups, prepare, stable_sort_desc
from rerankctl.losses.lambda_weighting import (
    SCHEME_NAMES,
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
    resolve_scheme,
)

TOPK_RULES = ("either", "both")
ACTIVATIONS = ("none", "tanh", "arctan")

__all__ = [
    "SCHEME_NAMES",
    "ACTIVATIONS",
    "TOPK_RULES",
    "activate_scores",
    "LambdaRankScheme",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
    "check_lambda_options",
    "lambda_loss",
]


def check_lambda_options(k: int | None, sigma: float, mu: float, topk_rule: str) -> None:
    """Raise ``ValueError`` for options that would silently do something else (module docstring)."""
    if topk_rule not in TOPK_RULES:
        raise ValueError(f"topk_rule must be 'either' or 'both', got {topk_rule!r}")
    if k is not None:
        if isinstance(k, bool) or int(k) != k or k < 1:
            # k <= 0 used to be clamped to 1, a cut-off nobody asked for.
            raise ValueError(
                f"lambda_loss: k must be an integer >= 1 (or None for the whole list), got {k!r}"
            )
        if k == 1 and topk_rule == "both":
            raise ValueError(
                "lambda_loss: k=1 with topk_rule='both' keeps no pair (both documents cannot be rank 1), "
                "so every gradient would be zero; use topk_rule='either' or k >= 2"
            )
    if not sigma > 0:
        raise ValueError(f"lambda_loss: sigma must be > 0, got {sigma!r}")
    if not mu >= 0:
        raise ValueError(f"lambda_loss: mu must be >= 0, got {mu!r}")


def activate_scores(scores: Tensor, activation: str = "none", scale: float = 1.0) -> Tensor:
    """The score activation of the module docstring: ``none``, ``c·tanh(s/c)`` or ``(2c/π)·arctan(πs/2c)``."""
    if activation == "none":
        return scores
    if not scale > 0:
        raise ValueError(f"lambda_loss: activation_scale must be > 0, got {scale!r}")
    if activation == "tanh":
        return scale * torch.tanh(scores / scale)
    if activation == "arctan":
        half_pi = torch.pi / 2
        return (scale / half_pi) * torch.atan(half_pi * scores / scale)
    raise ValueError(
        f"lambda_loss: score_activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
    )


def lambda_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    metric: str = "ndcg",
    weighting_scheme: str | object = "ndcgloss2pp",
    k: int | None = None,
    sigma: float = 1.0,
    mu: float = 10.0,
    eps: float = 1e-10,
    topk_rule: str = "either",
    score_activation: str = "none",
    activation_scale: float = 1.0,
) -> Tensor:
    """LambdaLoss over padded groups; see the module docstring for the formula.

    Args:
        scores: ``[B, N]`` model logits.
        labels: ``[B, N]`` binary or graded relevance.
        mask: ``[B, N]`` bool, True for real documents (None: all real).
        metric: ``"ndcg"``, ``"map"`` or ``"mrr"``: the metric whose swap deltas weight pairs.
        weighting_scheme: one of ``"ndcgloss2pp"`` (default), ``"ndcgloss1"``, ``"ndcgloss2"``,
            ``"lambdarank"``, ``"none"``, or a scheme object ``(gain, discount, labels_sorted)
            -> weights[B, N, N]`` with an ``all_pairs`` attribute.
        k: truncation of the metric, ``>= 1``: only pairs with a document in the model's top
            ``k`` count (see ``topk_rule``) and maxDCG is taken at ``k`` (None: the whole list;
            a ``k`` above the group size is the whole list). ``|ΔAP|``/``|ΔRR|`` are computed on
            the whole list either way.
        sigma: slope of the pairwise logistic, ``> 0``.
        mu: weight of the NDCGLoss2 term in NDCGLoss2++, ``>= 0``.
        eps: lower bound of maxDCG in the gain normalisation.
        topk_rule: ``"either"`` (sentence-transformers v6, default) keeps a pair if either
            document is in the top ``k``; ``"both"`` (allRank) only if both are (``k >= 2``).
        score_activation: ``"none"`` (default), ``"tanh"`` or ``"arctan"``: squash the scores
            into ``(−activation_scale, activation_scale)`` first (module docstring).
        activation_scale: the bound ``c`` of the activation, ``> 0``.

    Raises:
        ValueError: ``k < 1``; ``k = 1`` with ``topk_rule="both"``; ``sigma <= 0``; ``mu < 0``;
            an unknown ``topk_rule``, ``metric`` or ``weighting_scheme``.

    Returns:
        Scalar loss: mean over groups with at least one pair and a positive label.
    """
    check_lambda_options(k, sigma, mu, topk_rule)
    scheme = resolve_scheme(weighting_scheme, metric, mu)
    s, y, mask = prepare(scores, labels, mask, "lambda_loss")
    s = activate_scores(s, score_activation, activation_scale)
    b, n = s.shape
    kk = n if k is None else min(int(k), n)

    order = stable_sort_desc(fill_padding(s, mask))  # padding sorts last
    s_sorted = s.gather(1, order)
    y_sorted = y.gather(1, order)
    m_sorted = mask.gather(1, order)

    grade = y_sorted.clamp(min=0.0)
    ideal = torch.sort(y.clamp(min=0.0), dim=1, descending=True).values  # padding has y = 0
    pos = torch.arange(1, n + 1, device=s.device, dtype=s.dtype)
    discount = torch.log2(1.0 + pos)[None, :]
    max_dcg = ((torch.pow(2.0, ideal) - 1.0) / discount)[:, :kk].sum(1)
    gain = (torch.pow(2.0, grade) - 1.0) / max_dcg.clamp(min=eps)[:, None]

    weights = scheme(gain, discount, grade)

    eye = torch.eye(n, dtype=torch.bool, device=s.device)
    pairs = m_sorted[:, :, None] & m_sorted[:, None, :] & ~eye
    if not getattr(scheme, "all_pairs", False):
        pairs = pairs & (y_sorted[:, :, None] > y_sorted[:, None, :])
    in_top = torch.arange(n, device=s.device) < kk
    if topk_rule == "both":  # allRank: both documents inside the top k
        pairs = pairs & in_top[None, :, None] & in_top[None, None, :]
    else:  # sentence-transformers v6: at least one of them inside
        pairs = pairs & (in_top[None, :, None] | in_top[None, None, :])

    diffs = s_sorted[:, :, None] - s_sorted[:, None, :]
    pair_loss = weights * F.softplus(-sigma * diffs)
    pair_loss = torch.where(pairs, pair_loss, torch.zeros_like(pair_loss))
    n_pairs = pairs.sum(dim=(1, 2))
    per_group = pair_loss.sum(dim=(1, 2)) / n_pairs.clamp(min=1).to(s.dtype)

    valid = n_pairs > 0
    if not isinstance(scheme, NoWeightingScheme):
        valid = valid & ((grade > 0) & m_sorted).any(dim=1)
    return mean_over_groups(per_group, valid)
