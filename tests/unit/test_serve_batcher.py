"""Dynamic batching: requests share forward passes, budgets hold, the queue is bounded, close drains."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rerankctl.serve.backends import NoOpBackend
from rerankctl.serve.batcher import Batcher, Closing, QueueFull


class RecordingBackend(NoOpBackend):
    """NoOp scores, recording each score_pairs call (and which thread made it)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(delay_s=delay_s)
        self.calls: list[tuple[int, str | None, int]] = []
        self.threads: set[str] = set()

    def score_pairs(self, queries, docs, instruction=None, batch_size=32):
        self.calls.append((len(docs), instruction, batch_size))
        self.threads.add(threading.current_thread().name)
        return super().score_pairs(queries, docs, instruction, batch_size)


class TokenBackend:
    """A TokenScoringBackend whose 'tokens' are characters: encode once, score the ids."""

    name, max_length = "chars", 1000

    def __init__(self) -> None:
        self.encoded = 0
        self.chunks: list[list[int]] = []

    def encode(self, queries, docs, instruction=None):
        self.encoded += len(docs)
        return [list(q + "|" + d) for q, d in zip(queries, docs)]

    def count_tokens(self, queries, docs, instruction=None):
        return [len(x) for x in self.encode(queries, docs, instruction)]

    def score_ids(self, sequences, batch_size=32):
        self.chunks.append([len(s) for s in sequences])
        return [len(s) / 1000 for s in sequences]

    def score_pairs(self, queries, docs, instruction=None, batch_size=32):
        return self.score_ids(self.encode(queries, docs, instruction), batch_size)


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_batches_and_keep_their_own_scores():
    backend = RecordingBackend()

    async def main():
        batcher = Batcher(backend, max_wait_ms=200, max_batch_tokens=10_000)
        await batcher.start()
        requests = [(f"q{i}", [f"doc {i} {j}" for j in range(i + 1)]) for i in range(8)]
        results = await asyncio.gather(*(batcher.submit([q] * len(d), d) for q, d in requests))
        await batcher.close()
        return requests, results

    requests, results = run(main())
    for (q, docs), scored in zip(requests, results):
        assert scored.scores == [NoOpBackend.expected_score(q, d) for d in docs]
        assert scored.tokens == [1 + len(d.split()) for d in docs]
    assert sum(n for n, _, _ in backend.calls) == 36  # 1 + 2 + ... + 8 pairs
    assert len(backend.calls) == 1  # all eight arrived within the 200 ms wait: one batch
    assert backend.threads == {"rerankctl-score_0"}  # scored on the one scoring thread


def test_without_batching_each_request_is_scored_alone():
    backend = RecordingBackend()

    async def main():
        batcher = Batcher(backend, max_wait_ms=200, batching=False)
        await batcher.start()
        await asyncio.gather(*(batcher.submit(["q"] * 3, ["a", "b", "c"]) for _ in range(5)))
        await batcher.close()

    run(main())
    assert [n for n, _, _ in backend.calls] == [3] * 5


def test_instructions_are_scored_separately_on_plain_backends():
    backend = RecordingBackend()

    async def main():
        batcher = Batcher(backend, max_wait_ms=100)
        await batcher.start()
        a, b = await asyncio.gather(batcher.submit(["q"], ["d"], "A"), batcher.submit(["q"], ["d"], "B"))
        await batcher.close()
        return a, b

    a, b = run(main())
    assert a.scores == [NoOpBackend.expected_score("q", "d", "A")]
    assert b.scores == [NoOpBackend.expected_score("q", "d", "B")]
    assert sorted(instr for _, instr, _ in backend.calls) == ["A", "B"]


def test_token_budget_bounds_padded_chunk_size():
    backend = TokenBackend()
    batcher = Batcher(backend, max_batch_tokens=30, max_batch_size=3)
    # Lengths 5, 10, 10, 12, 4, 28 -> sorted 4, 5, 10, 10, 12, 28.
    # [4, 5, 10] (3 x 10 = 30 <= 30, then full at 3 rows); [10, 12] (2 x 12 = 24); 28 alone (3 x 28 > 30).
    chunks = batcher._chunks([5, 10, 10, 12, 4, 28])
    assert chunks == [[4, 0, 1], [2, 3], [5]]
    assert all(len(c) * max([5, 10, 10, 12, 4, 28][i] for i in c) <= 30 for c in chunks)

    async def main():
        await batcher.start()
        scored = await batcher.submit(["ab"] * 4, ["x", "xxxxxxxx", "xx", "xxxxxxxxxxxxxxxxxxxxxxxx"])
        await batcher.close()
        return scored

    scored = run(main())
    assert scored.tokens == [4, 11, 5, 27]
    assert scored.scores == [0.004, 0.011, 0.005, 0.027]
    assert backend.encoded == 4  # tokenized once, never again for scoring
    assert backend.chunks == [[4, 5], [11], [27]]  # 3 x 11 > 30 splits after the first two


def test_full_queue_is_refused_and_closing_refuses_new_work():
    backend = RecordingBackend(delay_s=0.2)

    async def main():
        batcher = Batcher(backend, max_queue_docs=5, max_wait_ms=0)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(["q"] * 4, ["a", "b", "c", "d"]))
        await asyncio.sleep(0.05)
        assert batcher.pending_docs == 4
        with pytest.raises(QueueFull):
            await batcher.submit(["q"] * 2, ["e", "f"])
        ok = await batcher.submit(["q"], ["e"])  # 4 + 1 fits
        await first
        await batcher.close()
        with pytest.raises(Closing):
            await batcher.submit(["q"], ["x"])
        return ok, batcher.pending_docs

    ok, pending = run(main())
    assert ok.scores == [NoOpBackend.expected_score("q", "e")] and pending == 0


def test_close_finishes_queued_requests():
    backend = RecordingBackend(delay_s=0.1)

    async def main():
        batcher = Batcher(backend, max_wait_ms=0, batching=False)
        await batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit(["q"], [f"d{i}"])) for i in range(4)]
        await asyncio.sleep(0.02)
        await batcher.close()
        return await asyncio.gather(*tasks)

    results = run(main())
    assert [r.scores for r in results] == [[NoOpBackend.expected_score("q", f"d{i}")] for i in range(4)]


def test_backend_errors_reach_the_request_and_the_worker_survives():
    class Flaky(RecordingBackend):
        def score_pairs(self, queries, docs, instruction=None, batch_size=32):
            if "boom" in docs:
                raise RuntimeError("CUDA out of memory")
            return super().score_pairs(queries, docs, instruction, batch_size)

    async def main():
        batcher = Batcher(Flaky(), max_wait_ms=0, batching=False)
        await batcher.start()
        with pytest.raises(RuntimeError, match="out of memory"):
            await batcher.submit(["q"], ["boom"])
        ok = await batcher.submit(["q"], ["fine"])
        await batcher.close()
        return ok

    assert run(main()).scores == [NoOpBackend.expected_score("q", "fine")]
