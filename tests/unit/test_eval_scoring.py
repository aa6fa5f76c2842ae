"""GroupScorer over functions, score_pairs objects and async clients; CLI multi-value parsing."""

from __future__ import annotations

import threading

import pytest

from rerankctl.cli.eval import expand_multi_values, split_commas
from rerankctl.eval.scoring import GroupScorer, as_scorer

GROUPS = [("q1", ["a", "bbb", "cc"]), ("q2", ["dddd"]), ("q3", ["e", "ff"])]


def by_length(query, docs):
    return [float(len(d)) for d in docs]


def test_function_scores_come_back_per_group_in_order():
    scorer = GroupScorer(by_length, workers=3)
    assert scorer.score_groups(GROUPS) == [[1.0, 3.0, 2.0], [4.0], [1.0, 2.0]]
    assert scorer.pairs_scored == 6


def test_function_returning_ranking_and_scores_is_accepted():
    def rerank(query, docs):
        scores = by_length(query, docs)
        return sorted(range(len(docs)), key=lambda i: -scores[i]), scores

    assert GroupScorer(rerank).score_groups(GROUPS)[0] == [1.0, 3.0, 2.0]


def test_threads_really_run_groups_concurrently():
    barrier = threading.Barrier(3, timeout=5)

    def wait_for_all(query, docs):
        barrier.wait()  # raises BrokenBarrierError unless 3 groups are in flight at once
        return by_length(query, docs)

    assert len(GroupScorer(wait_for_all, workers=3).score_groups(GROUPS)) == 3


def test_wrong_number_of_scores_names_the_model():
    with pytest.raises(ValueError, match="bad-model returned 1 scores for 3 documents"):
        GroupScorer(lambda q, d: [0.5], name="bad-model").score_groups(GROUPS[:1])


class PairModel:
    """Like Qwen3Reranker: score_pairs(queries, docs, instruction=, batch_size=)."""

    name = "pair-model"

    def __init__(self):
        self.calls = []

    def score_pairs(self, queries, docs, instruction=None, batch_size=32):
        self.calls.append((list(queries), list(docs), instruction, batch_size))
        return [len(q) * 10.0 + len(d) for q, d in zip(queries, docs)]


def test_score_pairs_objects_get_one_flat_call_with_instruction_and_batch_size():
    model = PairModel()
    scorer = as_scorer(model, batch_size=7, instruction="find it")
    out = scorer.score_groups([("q", ["x", "yy"]), ("qq", ["z"])])
    assert out == [[11.0, 12.0], [21.0]]
    assert model.calls == [(["q", "q", "qq"], ["x", "yy", "z"], "find it", 7)]
    scorer.score_groups([("q", ["x"])], instruction="other")
    assert model.calls[-1][2] == "other"
    assert scorer.name == "pair-model"


class AsyncClient:
    name = "async-client"

    def __init__(self):
        self.in_flight = self.peak = 0
        self.closed = 0

    async def arerank(self, query, docs):
        import asyncio

        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        scores = by_length(query, docs)
        return sorted(range(len(docs)), key=lambda i: -scores[i]), scores

    async def aclose(self):
        self.closed += 1


def test_async_clients_are_bounded_by_workers_and_closed():
    client = AsyncClient()
    groups = [(f"q{i}", ["a", "bb"]) for i in range(10)]
    out = GroupScorer(client, workers=3).score_groups(groups)
    assert out == [[1.0, 2.0]] * 10
    assert client.peak == 3 and client.closed == 1


def test_expand_multi_values():
    args = ["--endpoints", "http://a", "http://b", "--datasets", "chinese", "T2Reranking", "--json"]
    assert expand_multi_values(args) == [
        "--endpoints", "http://a", "--endpoints", "http://b",
        "--datasets", "chinese", "--datasets", "T2Reranking", "--json",
    ]  # fmt: skip
    # A subcommand name ends the values; the first value is always the option's own.
    assert expand_multi_values(["--model", "m1", "reward", "--x"], {"reward"}) == [
        "--model",
        "m1",
        "reward",
        "--x",
    ]
    assert expand_multi_values(["--model", "reward"], {"reward"}) == ["--model", "reward"]
    # A subcommand's own arguments are left alone.
    assert expand_multi_values(["reward", "--model", "d", "x.jsonl"], {"reward"}) == [
        "reward",
        "--model",
        "d",
        "x.jsonl",
    ]
    assert split_commas(["a,b", " c "]) == ["a", "b", "c"]
