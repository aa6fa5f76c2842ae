"""Vectorised batch metrics equal the per-query functions (hypothesis) and handle padding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rerankctl.eval.metrics import compute_all_metrics, rank_by_scores
from rerankctl.eval.metrics_batch import compute_all_metrics_batch, compute_all_metrics_batch_per_query

KS = (1, 3, 5, 20)


@st.composite
def batches(draw):
    q = draw(st.integers(1, 6))
    n = draw(st.integers(1, 12))
    # small integer scores force many ties
    scores = draw(hnp.arrays(np.float64, (q, n), elements=st.integers(-3, 3).map(float)))
    relevance = draw(hnp.arrays(np.float64, (q, n), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0])))
    mask = draw(hnp.arrays(np.bool_, (q, n), elements=st.booleans()))
    return scores, relevance, mask


def per_query_reference(scores, relevance, mask, gain, num_relevant=None):
    rows = []
    for qi in range(scores.shape[0]):
        real = np.flatnonzero(mask[qi])
        ranking = real[rank_by_scores(scores[qi, real])] if real.size else np.array([], dtype=np.int64)
        grades = {int(d): float(relevance[qi, d]) for d in real}
        positives = [d for d, g in grades.items() if g > 0]
        nr = None if num_relevant is None else int(num_relevant[qi])
        rows.append(
            compute_all_metrics(ranking, positives, ks=KS, relevance=grades, num_relevant=nr, gain=gain)
        )
    return rows


@settings(max_examples=150, deadline=None)
@given(batch=batches(), gain=st.sampled_from(["exponential", "linear"]))
def test_batch_metrics_equal_per_query_functions(batch, gain):
    scores, relevance, mask = batch
    per_query = compute_all_metrics_batch_per_query(scores, relevance, mask, KS, gain=gain)
    reference = per_query_reference(scores, relevance, mask, gain)
    for key in reference[0]:
        assert per_query[key] == pytest.approx([r[key] for r in reference], abs=1e-12), key
    means = compute_all_metrics_batch(scores, relevance, mask, KS, gain=gain)
    keep = [i for i in range(len(reference)) if per_query["num_relevant"][i] > 0]
    for key, value in means.items():
        want = np.mean([reference[i][key] for i in keep]) if keep else 0.0
        assert value == pytest.approx(want, abs=1e-12), key
    every = compute_all_metrics_batch(scores, relevance, mask, KS, gain=gain, skip_no_relevant=False)
    for key, value in every.items():
        assert value == pytest.approx(np.mean([r[key] for r in reference]), abs=1e-12), key


@settings(max_examples=50, deadline=None)
@given(batch=batches(), extra=st.integers(0, 4))
def test_num_relevant_override_matches_per_query(batch, extra):
    scores, relevance, mask = batch
    judged = ((relevance > 0) & mask).sum(1)
    num_relevant = judged + extra
    per_query = compute_all_metrics_batch_per_query(scores, relevance, mask, KS, num_relevant=num_relevant)
    reference = per_query_reference(scores, relevance, mask, "exponential", num_relevant)
    for key in ("map", "r@1", "r@5", "mrr", "ndcg@5"):
        assert per_query[key] == pytest.approx([r[key] for r in reference], abs=1e-12), key


def test_batch_worked_example_and_padding():
    scores = np.array([[0.1, 0.9, 0.5, 7.0], [2.0, 2.0, 1.0, 0.0]])
    relevance = np.array([[1.0, 0.0, 2.0, 3.0], [0.0, 1.0, 0.0, 0.0]])
    mask = np.array([[True, True, True, False], [True, True, True, True]])
    out = compute_all_metrics_batch_per_query(scores, relevance, mask, ks=(1, 2))
    # query 0 ranks docs 1, 2, 0 (doc 3 is padding): relevant at ranks 2, 3
    assert out["mrr"].tolist() == pytest.approx([1 / 2, 1 / 2])  # query 1: tie keeps doc 0 first
    assert out["map"][0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert out["p@2"].tolist() == pytest.approx([0.5, 0.5])
    assert out["hit@1"].tolist() == [0.0, 0.0]
    assert out["num_relevant"].tolist() == [2.0, 1.0]


def test_queries_without_relevant_documents_are_left_out_of_the_mean():
    scores = np.array([[1.0, 0.0], [1.0, 0.0]])
    relevance = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert compute_all_metrics_batch(scores, relevance)["mrr"] == 1.0
    assert compute_all_metrics_batch(scores, relevance, skip_no_relevant=False)["mrr"] == 0.5


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[Q, N\]"):
        compute_all_metrics_batch(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="mask"):
        compute_all_metrics_batch(np.zeros((2, 3)), np.zeros((2, 3)), mask=np.ones((2, 2), dtype=bool))
