"""mteb's own mock reranking task through our cross-encoder adapter, and our metrics vs mteb's."""

from __future__ import annotations

import random
import zlib

import pytest

from rerankctl.data.formats import RerankRecord
from rerankctl.eval.local import evaluate_local, records_to_mteb_task
from rerankctl.eval.mteb_runner import MTEBRerankEvaluator, get_task


def by_length(query, docs):
    return [float(len(d)) for d in docs]


def test_mock_reranking_task_hand_computed():
    # mteb joins title and text: under q1 the relevant d1 reads "Title of d2 This is another positive
    # sentence" (45 chars) and d2 "Title of d1 This is a positive sentence" (39). Scoring by length
    # ranks d1 first for both queries: q1 (relevant d1) AP = RR = 1; q2 (relevant d2) AP = RR = 1/2.
    result = MTEBRerankEvaluator(by_length, workers=2, name="len").evaluate("MockRerankingTask")
    assert result.task == "MockRerankingTask" and result.model == "len"
    assert result.main_metric == "map_at_1000"
    assert result.main_score == pytest.approx(0.75)
    assert result.metrics["mrr_at_10"] == pytest.approx(0.75)
    # nDCG@10: q1 = 1, q2 = (1/log2 3) / 1 = 0.63093; mean 0.81546.
    assert result.metrics["ndcg_at_10"] == pytest.approx(0.81546, abs=1e-5)
    assert result.metrics["precision_at_1"] == pytest.approx(0.5)
    assert (result.n_queries, result.n_pairs) == (2, 4)


def test_max_samples_keeps_the_first_queries():
    result = MTEBRerankEvaluator(by_length).evaluate("MockRerankingTask", max_samples=1)
    assert result.n_queries == 1 and result.n_pairs == 2
    assert result.main_score == pytest.approx(1.0)  # only q1, whose relevant doc is the longest


def test_evaluate_multiple_accepts_names_objects_and_reports_each():
    seen = []
    out = MTEBRerankEvaluator(lambda q, d: [-s for s in by_length(q, d)]).evaluate_multiple(
        ["MockRerankingTask", get_task("MockMultilingualRerankingTask")], on_result=seen.append
    )
    assert list(out) == ["MockRerankingTask", "MockMultilingualRerankingTask"] == [s.task for s in seen]
    # Shortest first: q1 gets its relevant doc second (AP 1/2), q2 first (AP 1); both languages alike.
    assert out["MockRerankingTask"].main_score == pytest.approx(0.75)
    assert out["MockMultilingualRerankingTask"].main_score == pytest.approx(0.75)
    assert out["MockMultilingualRerankingTask"].n_queries == 4


def _mock_records():
    """MockRerankingTask's data as rerank records, texts joined the way mteb joins them."""
    task = get_task("MockRerankingTask")
    task.load_data()
    split = task.dataset["default"]["test"]
    corpus = {row["id"]: (row["title"] + " " + row["text"]).strip() for row in split["corpus"]}
    records = []
    for row in split["queries"]:
        ids = split["top_ranked"][row["id"]]
        labels = [float(split["relevant_docs"][row["id"]].get(d, 0)) for d in ids]
        records.append(RerankRecord(query=row["text"], docs=[corpus[d] for d in ids], labels=labels))
    return records


METRIC_PAIRS = {"map": "map_at_1000", "mrr": "mrr_at_10"} | {
    f"{ours}@{k}": f"{theirs}_at_{k}"
    for k in (1, 5, 10)
    for ours, theirs in (("ndcg", "ndcg"), ("p", "precision"), ("r", "recall"))
}


def _assert_same(ours, theirs):
    for mine, mteb_key in METRIC_PAIRS.items():
        # mteb rounds its scores to 5 decimals.
        assert ours.metrics[mine] == pytest.approx(theirs.metrics[mteb_key], abs=1e-5), (mine, mteb_key)


@pytest.mark.parametrize("scorer", [by_length, lambda q, d: [-x for x in by_length(q, d)]])
def test_our_metrics_equal_mteb_on_the_mock_task(scorer):
    theirs = MTEBRerankEvaluator(scorer).evaluate("MockRerankingTask")
    ours = evaluate_local(scorer, _mock_records())
    _assert_same(ours, theirs)
    assert ours.main_score == pytest.approx(theirs.main_score, abs=1e-5)


def test_our_metrics_equal_mteb_on_a_larger_random_task():
    rng = random.Random(7)
    records = []
    for q in range(25):
        n = rng.randint(3, 10)
        labels = [0.0] * n
        for i in rng.sample(range(n), rng.randint(1, min(3, n))):
            labels[i] = 1.0
        docs = [f"doc {q}-{i} " + "x" * rng.randint(1, 60) for i in range(n)]
        records.append(RerankRecord(query=f"query number {q}", docs=docs, labels=labels))

    def hashed(query, docs):
        # crc32, not hash(): str hashes change per process, and `% 1000` made ties that mteb
        # (pytrec_eval) and we break differently. 32-bit values are distinct here and stable.
        return [float(zlib.crc32(f"{query}|{d}".encode())) for d in docs]

    ours = evaluate_local(hashed, records, ks=(1, 5, 10))
    theirs = MTEBRerankEvaluator(hashed).evaluate(records_to_mteb_task(records))
    assert theirs.n_queries == ours.n_queries == 25
    _assert_same(ours, theirs)
    assert 0.0 < ours.metrics["map"] < 1.0  # not a degenerate case
