"""Per-query retrieval metrics on worked examples that follow the TREC definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rerankctl.eval.metrics import (
    average_precision,
    compute_all_metrics,
    hit_rate,
    kendall_tau,
    mrr,
    ndcg_at_k,
    precision_at_k,
    rank_by_scores,
    recall_at_k,
)


def test_average_precision_divides_by_all_relevant_including_missing():
    # relevant {0, 2, 7}; 7 was never retrieved. Hits at ranks 1 and 3.
    ranking = [0, 1, 2, 3, 4]
    assert average_precision(ranking, [0, 2, 7]) == pytest.approx((1 / 1 + 2 / 3) / 3)
    # the caller knows 5 documents are relevant in total
    assert average_precision(ranking, [0, 2, 7], num_relevant=5) == pytest.approx((1 + 2 / 3) / 5)
    assert average_precision(ranking, []) == 0.0


def test_average_precision_textbook_example():
    # Manning et al., IR book style: relevant at ranks 1, 3, 6, 9, 10 of 10; 5 relevant.
    ranking = list(range(10))
    relevant = [0, 2, 5, 8, 9]
    want = (1 / 1 + 2 / 3 + 3 / 6 + 4 / 9 + 5 / 10) / 5
    assert average_precision(ranking, relevant) == pytest.approx(want)
    assert want == pytest.approx(0.62222, abs=1e-5)


def test_graded_ndcg_wikipedia_worked_example_with_missing_documents():
    # Wikipedia "Discounted cumulative gain": ranked grades 3, 2, 3, 0, 1, 2, plus two judged
    # documents never ranked (grades 3 and 2). Linear gain: DCG6 = 6.861, IDCG6 = 8.740.
    relevance = {0: 3, 1: 2, 2: 3, 3: 0, 4: 1, 5: 2, 6: 3, 7: 2}
    ranking = [0, 1, 2, 3, 4, 5]
    dcg = 3 + 2 / math.log2(3) + 3 / 2 + 0 + 1 / math.log2(6) + 2 / math.log2(7)
    idcg = 3 + 3 / math.log2(3) + 3 / 2 + 2 / math.log2(5) + 2 / math.log2(6) + 2 / math.log2(7)
    assert dcg == pytest.approx(6.861, abs=1e-3) and idcg == pytest.approx(8.740, abs=1e-3)
    got = ndcg_at_k(ranking, None, 6, relevance=relevance, gain="linear")
    assert got == pytest.approx(dcg / idcg) and got == pytest.approx(0.785, abs=1e-3)
    # exponential gain 2^g - 1 (the default)
    e = lambda g: 2**g - 1  # noqa: E731
    dcg_e = e(3) + e(2) / math.log2(3) + e(3) / 2 + 0 + e(1) / math.log2(6) + e(2) / math.log2(7)
    idcg_e = (
        e(3)
        + e(3) / math.log2(3)
        + e(3) / 2
        + e(2) / math.log2(5)
        + e(2) / math.log2(6)
        + e(2) / math.log2(7)
    )
    assert ndcg_at_k(ranking, None, 6, relevance=relevance) == pytest.approx(dcg_e / idcg_e)
    # relevance as a list indexed by document id gives the same
    as_list = [relevance[i] for i in range(8)]
    assert ndcg_at_k(ranking, None, 6, relevance=as_list) == pytest.approx(dcg_e / idcg_e)


def test_binary_ndcg_and_cutoffs():
    ranking = [4, 0, 3, 1]
    # relevant {0, 1}: hits at ranks 2 and 4
    want = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranking, [0, 1], 10) == pytest.approx(want)
    assert ndcg_at_k(ranking, [0, 1], 1) == 0.0
    assert ndcg_at_k(ranking, [0, 1], 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(ranking, [], 10) == 0.0
    # binary relevance: exponential and linear gain agree
    assert ndcg_at_k(ranking, [0, 1], 3, gain="linear") == pytest.approx(ndcg_at_k(ranking, [0, 1], 3))


def test_precision_recall_hit_mrr():
    ranking = [5, 2, 9]
    positives = [2, 7]
    assert precision_at_k(ranking, positives, 1) == 0.0
    assert precision_at_k(ranking, positives, 2) == 0.5
    assert precision_at_k(ranking, positives, 10) == pytest.approx(0.1)  # trec_eval: divide by k
    assert recall_at_k(ranking, positives, 2) == 0.5
    assert recall_at_k(ranking, positives, 2, num_relevant=4) == 0.25
    assert hit_rate(ranking, positives, 1) == 0.0 and hit_rate(ranking, positives, 2) == 1.0
    assert mrr(ranking, positives) == 0.5
    assert mrr(ranking, positives, k=1) == 0.0
    assert mrr(ranking, [42]) == 0.0


def test_compute_all_metrics_keys_and_values():
    ranking = [3, 1, 0, 2]
    out = compute_all_metrics(ranking, [0, 2], ks=(1, 2))
    assert set(out) == {"mrr", "map", "ndcg@1", "p@1", "r@1", "hit@1", "ndcg@2", "p@2", "r@2", "hit@2"}
    assert out["mrr"] == pytest.approx(1 / 3)
    assert out["map"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert out["p@2"] == 0.0 and out["hit@2"] == 0.0 and out["r@2"] == 0.0
    graded = compute_all_metrics(ranking, None, ks=(10,), relevance=[2, 0, 1, 0])
    assert graded["mrr"] == pytest.approx(1 / 3)  # positives from relevance > 0
    assert graded["ndcg@10"] == pytest.approx(ndcg_at_k(ranking, None, 10, relevance=[2, 0, 1, 0]))


def test_rank_by_scores_breaks_ties_by_index():
    assert rank_by_scores([0.5, 0.9, 0.5, 0.9, 0.1]).tolist() == [1, 3, 0, 2, 4]


def test_bad_rankings_are_rejected():
    with pytest.raises(ValueError, match="more than once"):
        mrr([1, 1, 2], [2])
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k([1, 2], [2], 0)
    with pytest.raises(ValueError, match="gain"):
        ndcg_at_k([0], [0], 1, gain="cubic")


def test_kendall_tau_b_by_hand_with_ties():
    # x = [1, 2, 2, 3], y = [1, 3, 2, 2]: concordant (0,1), (0,2), (0,3); discordant (1,3);
    # (1,2) tied in x, (2,3) tied in y: tau_b = (3 - 1) / sqrt(5 * 5) = 0.4
    x = [1, 2, 2, 3]
    y = [1, 3, 2, 2]
    nc = nd = tx = ty = 0
    for i in range(4):
        for j in range(i + 1, 4):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            nc += dx * dy > 0
            nd += dx * dy < 0
            tx += dx == 0
            ty += dy == 0
    want = (nc - nd) / math.sqrt((6 - tx) * (6 - ty))
    assert (nc, nd, tx, ty) == (3, 1, 1, 1)
    assert kendall_tau(x, y) == pytest.approx(want) and want == pytest.approx(0.4)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1], [2]))


def test_kendall_tau_matches_scipy_on_larger_tied_samples():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (5, 50, 1500):
        x = rng.integers(0, 6, n).astype(float)
        y = x + rng.integers(-2, 3, n)
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
