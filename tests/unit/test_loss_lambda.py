"""LambdaLoss: every weighting scheme by hand, and |ΔAP|, |ΔRR|, |ΔNDCG| against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rerankctl.losses import (
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
    lambda_loss,
)
from rerankctl.losses.lambda_weighting import delta_average_precision, delta_reciprocal_rank, resolve_scheme


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


# scores [0.5, 2.0, 1.0] rank the docs 1, 2, 0; labels [2, 0, 1] in that order are [0, 1, 2].
S = torch.tensor([[0.5, 2.0, 1.0]], dtype=torch.float64)
Y = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
SORTED_S = [2.0, 1.0, 0.5]
SORTED_Y = [0.0, 1.0, 2.0]
MAX_DCG = 3.0 / math.log2(2) + 1.0 / math.log2(3)  # ideal grades 2, 1, 0
G = [(2**y - 1) / MAX_DCG for y in SORTED_Y]
D = [math.log2(1 + r) for r in (1, 2, 3)]
PAIRS = [(i, j) for i in range(3) for j in range(3) if SORTED_Y[i] > SORTED_Y[j]]  # (1,0), (2,0), (2,1)


def by_hand(weight, pairs=PAIRS, sigma=1.0):
    total = sum(weight(i, j) * sp(-sigma * (SORTED_S[i] - SORTED_S[j])) for i, j in pairs)
    return total / len(pairs)


def lambdarank_w(i, j):
    return abs(G[i] - G[j]) * abs(1 / D[i] - 1 / D[j])


def loss2_w(i, j):
    d = abs(i - j)
    return abs(G[i] - G[j]) * abs(1 / math.log2(1 + d) - 1 / math.log2(2 + d))


def test_no_weighting_by_hand():
    assert lambda_loss(S, Y, weighting_scheme="none").item() == pytest.approx(
        by_hand(lambda i, j: 1.0), abs=1e-12
    )
    assert lambda_loss(S, Y, weighting_scheme="none", sigma=0.5).item() == pytest.approx(
        by_hand(lambda i, j: 1.0, sigma=0.5), abs=1e-12
    )


def test_lambdarank_by_hand():
    assert lambda_loss(S, Y, weighting_scheme="lambdarank").item() == pytest.approx(
        by_hand(lambdarank_w), abs=1e-12
    )


def test_ndcgloss2_by_hand():
    assert lambda_loss(S, Y, weighting_scheme="ndcgloss2").item() == pytest.approx(
        by_hand(loss2_w), abs=1e-12
    )


def test_ndcgloss2pp_by_hand_with_mu():
    for mu in (10.0, 2.5):
        want = by_hand(lambda i, j: mu * loss2_w(i, j) + lambdarank_w(i, j))
        assert lambda_loss(S, Y, mu=mu).item() == pytest.approx(want, abs=1e-12)


def test_ndcgloss1_by_hand_uses_all_ordered_pairs():
    all_pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    want = by_hand(lambda i, j: G[i] / D[i], pairs=all_pairs)
    assert lambda_loss(S, Y, weighting_scheme="ndcgloss1").item() == pytest.approx(want, abs=1e-12)


def test_k_keeps_pairs_inside_the_top_k_and_truncates_max_dcg():
    # k=2: only the model's ranks 1-2 (grades 0, 1); maxDCG@2 of ideal (2, 1)
    max_dcg2 = 3.0 + 1.0 / math.log2(3)
    g = [(2**y - 1) / max_dcg2 for y in SORTED_Y]
    w = abs(g[1] - g[0]) * abs(1 / D[1] - 1 / D[0])
    want = w * sp(-(SORTED_S[1] - SORTED_S[0]))
    got = lambda_loss(S, Y, weighting_scheme="lambdarank", k=2).item()
    assert got == pytest.approx(want, abs=1e-12)


def test_map_and_mrr_metrics_use_exact_swap_deltas():
    # binary relevance of the model's order [0, 1, 1]: AP = (1/2 + 2/3) / 2
    ap, rr = _ap, _rr
    rel = [0, 1, 1]

    def swapped(metric, i, j):
        r2 = list(rel)
        r2[i], r2[j] = r2[j], r2[i]
        return abs(metric(r2) - metric(rel))

    for name, metric in (("map", ap), ("mrr", rr)):
        want = by_hand(lambda i, j, metric=metric: swapped(metric, i, j))
        for scheme in ("lambdarank", "ndcgloss2pp", "ndcgloss2", "ndcgloss1"):
            got = lambda_loss(S, Y, metric=name, weighting_scheme=scheme).item()
            assert got == pytest.approx(want, abs=1e-12), (name, scheme)


def _ap(rel):
    total = sum(rel)
    return sum(sum(rel[: i + 1]) / (i + 1) for i in range(len(rel)) if rel[i]) / total if total else 0.0


def _rr(rel):
    return next((1 / (i + 1) for i, r in enumerate(rel) if r), 0.0)


def _dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


@pytest.mark.parametrize("seed", range(6))
def test_swap_deltas_match_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    rel = torch.rand(4, 7, generator=g) < 0.4
    got_ap, got_rr = delta_average_precision(rel), delta_reciprocal_rank(rel)
    for b in range(4):
        base = [int(v) for v in rel[b]]
        for i, j in itertools.product(range(7), repeat=2):
            r2 = list(base)
            r2[i], r2[j] = r2[j], r2[i]
            assert got_ap[b, i, j].item() == pytest.approx(abs(_ap(r2) - _ap(base)), abs=1e-12)
            assert got_rr[b, i, j].item() == pytest.approx(abs(_rr(r2) - _rr(base)), abs=1e-12)


def test_lambdarank_ndcg_weights_are_swap_deltas_of_ndcg():
    grades = [3.0, 0.0, 1.0, 2.0, 0.0, 1.0]
    ideal = _dcg(sorted((2**x - 1 for x in grades), reverse=True))
    gain = torch.tensor([[(2**x - 1) / ideal for x in grades]], dtype=torch.float64)
    disc = torch.log2(1 + torch.arange(1, 7, dtype=torch.float64))[None, :]
    w = LambdaRankScheme("ndcg")(gain, disc, torch.tensor([grades]))
    base = _dcg([2**x - 1 for x in grades]) / ideal
    for i, j in itertools.product(range(6), repeat=2):
        r2 = list(grades)
        r2[i], r2[j] = r2[j], r2[i]
        assert w[0, i, j].item() == pytest.approx(abs(_dcg([2**x - 1 for x in r2]) / ideal - base), abs=1e-12)


def test_resolve_scheme_names_and_objects():
    assert isinstance(resolve_scheme("none", "ndcg", 10), NoWeightingScheme)
    assert isinstance(resolve_scheme("ndcgloss1", "ndcg", 10), NDCGLoss1Scheme)
    assert isinstance(resolve_scheme("ndcgloss2", "ndcg", 10), NDCGLoss2Scheme)
    pp = resolve_scheme("ndcgloss2pp", "ndcg", 3.0)
    assert isinstance(pp, NDCGLoss2PPScheme) and pp.mu == 3.0
    assert resolve_scheme("ndcgloss2pp", "map", 10).metric == "map"
    custom = NDCGLoss2Scheme()
    assert resolve_scheme(custom, "ndcg", 10) is custom
    assert lambda_loss(S, Y, weighting_scheme=custom).item() == pytest.approx(by_hand(loss2_w), abs=1e-12)
    with pytest.raises(ValueError, match="weighting_scheme"):
        lambda_loss(S, Y, weighting_scheme="bogus")
    with pytest.raises(ValueError, match="metric"):
        lambda_loss(S, Y, metric="p@5")


def test_tied_scores_rank_by_index_deterministically():
    s = torch.zeros(1, 4, dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 0.0, 2.0]], dtype=torch.float64)
    a = lambda_loss(s, y).item()
    assert all(lambda_loss(s, y).item() == a for _ in range(3))
    # with every score tied, ranks follow index: grades in model order are [0, 1, 0, 2]
    max_dcg = 3.0 + 1.0 / math.log2(3)
    g = [(2**x - 1) / max_dcg for x in (0.0, 1.0, 0.0, 2.0)]
    d = [math.log2(1 + r) for r in (1, 2, 3, 4)]
    pairs = [(1, 0), (1, 2), (3, 0), (3, 1), (3, 2)]

    def w(i, j):
        dist = abs(i - j)
        l2 = abs(g[i] - g[j]) * abs(1 / math.log2(1 + dist) - 1 / math.log2(2 + dist))
        return 10.0 * l2 + abs(g[i] - g[j]) * abs(1 / d[i] - 1 / d[j])

    assert a == pytest.approx(sum(w(i, j) * math.log(2) for i, j in pairs) / len(pairs), abs=1e-12)
