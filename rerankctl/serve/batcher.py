"""Dynamic batching: pairs from concurrent requests share forward passes on one scoring thread.

Each request is tokenized on a tokenizer thread (so the event loop never blocks on it), then
queued as a job. One worker coroutine takes the oldest job, waits up to ``max_wait_ms`` for
more to arrive (or until ``max_gather_tokens`` prompt tokens are queued), and hands all of
them to the single scoring thread, which sorts their pairs by length and scores them in
chunks of at most ``max_batch_size`` pairs and ``max_batch_tokens`` padded tokens. While the
thread scores, new jobs queue up and form the next batch, so under load batches fill without
waiting.

Gathering several forward batches' worth of pairs before sorting is what keeps padding low:
with documents of 90-210 tokens, sorting two 50-document requests and cutting them into
16k-token chunks pads 29% extra tokens; sorting 800 documents into chunks of 64 pads 3%
(one length-sorted pass over everything, the in-process ideal, pads 0.5%).

The queue is bounded by documents (``max_queue_docs``): a request that would overflow it is
refused at once with :class:`QueueFull` (the app answers 503 with Retry-After). ``close``
stops admitting requests, finishes every queued job and then stops the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rerankctl.serve.backends import ScoringBackend, TokenScoringBackend


class QueueFull(Exception):
    """The batcher holds ``max_queue_docs`` documents already; try again shortly."""


class Closing(Exception):
    """The server is shutting down and admits no new requests."""


@dataclass
class Scored:
    """A request's scores and prompt token counts, in document order."""

    scores: list[float]
    tokens: list[int]


@dataclass
class _Job:
    queries: list[str]
    docs: list[str]
    instruction: str | None
    encoded: list[Any] | None
    tokens: list[int]
    future: asyncio.Future
    arrival: float = field(default_factory=time.monotonic)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


class Batcher:
    """Gathers requests into batches for one backend.

    Args:
        backend: the scorer; a :class:`TokenScoringBackend` is tokenized once per pair.
        max_batch_tokens: padded tokens per forward pass at most (bounds activation memory).
        max_batch_size: pairs per forward pass at most.
        max_gather_tokens: prompt tokens gathered from the queue before sorting and scoring.
        max_wait_ms: how long the oldest queued request may wait for company.
        max_queue_docs: documents admitted (queued or being scored) at once.
        batching: False scores each request on its own (for comparison benchmarks).
        metrics: a :class:`rerankctl.serve.metrics.ServerMetrics` to record batch sizes in.
    """

    def __init__(
        self,
        backend: ScoringBackend,
        *,
        max_batch_tokens: int = 16384,
        max_batch_size: int = 64,
        max_gather_tokens: int = 131072,
        max_wait_ms: float = 5.0,
        max_queue_docs: int = 20000,
        batching: bool = True,
        metrics: Any = None,
    ) -> None:
        self.backend = backend
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.max_batch_size = max(1, max_batch_size)
        self.max_gather_tokens = max(self.max_batch_tokens, max_gather_tokens)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_queue_docs = max_queue_docs
        self.batching = batching
        self.metrics = metrics
        self.token_ids = isinstance(backend, TokenScoringBackend)
        self.pending_docs = 0
        self._tokenizing = 0
        self._jobs: deque[_Job] = deque()
        self._queued_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._closing = False
        self._worker: asyncio.Task | None = None
        self._tokenize_pool = ThreadPoolExecutor(1, thread_name_prefix="rerankctl-tokenize")
        self._score_pool = ThreadPoolExecutor(1, thread_name_prefix="rerankctl-score")

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        self._wakeup = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="rerankctl-batcher")

    @property
    def closing(self) -> bool:
        """True once ``close`` has begun: no new requests are admitted."""
        return self._closing

    @property
    def queued_jobs(self) -> int:
        return len(self._jobs)

    async def submit(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> Scored:
        """Score one request's pairs together with whatever else is queued.

        Raises:
            QueueFull: admitting these documents would exceed ``max_queue_docs``.
            Closing: the batcher is shutting down.
        """
        if self._closing or self._worker is None:
            raise Closing("the server is shutting down")
        n = len(docs)
        if self.pending_docs + n > self.max_queue_docs:
            raise QueueFull(f"{self.pending_docs} documents are queued (limit {self.max_queue_docs})")
        self.pending_docs += n
        self._tokenizing += 1
        try:
            loop = asyncio.get_running_loop()
            queries, docs = list(queries), list(docs)
            try:
                encoded, tokens = await loop.run_in_executor(
                    self._tokenize_pool, self._tokenize, queries, docs, instruction
                )
                job = _Job(queries, docs, instruction, encoded, tokens, loop.create_future())
                self._jobs.append(job)
                self._queued_tokens += job.total_tokens
            finally:
                # The worker may only stop once no admitted request is still being tokenized.
                self._tokenizing -= 1
                self._wakeup.set()
            scores = await job.future
            return Scored(scores, tokens)
        finally:
            self.pending_docs -= n

    async def count_tokens(self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None):
        """Prompt tokens per pair, computed on the tokenizer thread (tokenizers are not shared across threads)."""
        loop = asyncio.get_running_loop()
        _, tokens = await loop.run_in_executor(
            self._tokenize_pool, self._tokenize, list(queries), list(docs), instruction
        )
        return tokens

    def _tokenize(self, queries: list[str], docs: list[str], instruction: str | None):
        if self.token_ids:
            encoded = self.backend.encode(queries, docs, instruction)
            return encoded, [len(x) for x in encoded]
        return None, list(self.backend.count_tokens(queries, docs, instruction))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                if self._closing and not self._tokenizing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.batching:
                await self._wait_for_company(loop)
            jobs = self._take()
            live = [j for j in jobs if not j.future.done()]  # a client that hung up needs no scores
            if not live:
                continue
            try:
                results, chunks = await loop.run_in_executor(self._score_pool, self._score_jobs, live)
            except Exception as exc:  # noqa: BLE001 - the error belongs to the requests, not the worker
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            if self.metrics is not None:
                for size in chunks:
                    self.metrics.observe_batch(size)
            for job, scores in zip(live, results, strict=True):
                if not job.future.done():
                    job.future.set_result(scores)

    async def _wait_for_company(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = self._jobs[0].arrival + self.max_wait
        while self._queued_tokens < self.max_gather_tokens and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Job]:
        """The oldest jobs up to the gather budget (always at least one)."""
        jobs = [self._jobs.popleft()]
        tokens = jobs[0].total_tokens
        while self.batching and self._jobs and tokens + self._jobs[0].total_tokens <= self.max_gather_tokens:
            job = self._jobs.popleft()
            jobs.append(job)
            tokens += job.total_tokens
        self._queued_tokens -= tokens
        return jobs

    def _chunks(self, lengths: list[int]) -> list[list[int]]:
        """Pair indices sorted by length, cut so that rows x longest <= max_batch_tokens."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        chunks: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = max(lengths[i], 1)  # sorted, so this pair is the chunk's longest
            if current and (
                (len(current) + 1) * longest > self.max_batch_tokens or len(current) >= self.max_batch_size
            ):
                chunks.append(current)
                current = []
            current.append(i)
        if current:
            chunks.append(current)
        return chunks

    def _score_jobs(self, jobs: list[_Job]) -> tuple[list[list[float]], list[int]]:
        """Runs on the scoring thread: every pair of ``jobs`` in length-sorted chunks."""
        owners = [(j, p) for j, job in enumerate(jobs) for p in range(len(job.docs))]
        lengths = [jobs[j].tokens[p] for j, p in owners]
        flat = [0.0] * len(owners)
        sizes = []
        if self.token_ids:
            encoded = [jobs[j].encoded[p] for j, p in owners]
            for chunk in self._chunks(lengths):
                scores = self.backend.score_ids([encoded[i] for i in chunk], batch_size=len(chunk))
                for i, s in zip(chunk, scores, strict=True):
                    flat[i] = float(s)
                sizes.append(len(chunk))
        else:
            # Plain backends score one instruction at a time; let them batch by count.
            by_instruction: dict[str | None, list[int]] = {}
            for i, (j, _) in enumerate(owners):
                by_instruction.setdefault(jobs[j].instruction, []).append(i)
            for instruction, rows in by_instruction.items():
                longest = max(lengths[i] for i in rows) or 1
                batch_size = max(1, min(self.max_batch_size, self.max_batch_tokens // longest))
                queries = [jobs[owners[i][0]].queries[owners[i][1]] for i in rows]
                docs = [jobs[owners[i][0]].docs[owners[i][1]] for i in rows]
                scores = self.backend.score_pairs(
                    queries, docs, instruction=instruction, batch_size=batch_size
                )
                for i, s in zip(rows, scores, strict=True):
                    flat[i] = float(s)
                sizes += [min(batch_size, len(rows) - k) for k in range(0, len(rows), batch_size)]
        results = [[0.0] * len(job.docs) for job in jobs]
        for (j, p), s in zip(owners, flat, strict=True):
            results[j][p] = s
        return results, sizes

    async def close(self, timeout: float | None = None) -> None:
        """Admit nothing more, score everything queued, stop the worker and the threads."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._worker is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), timeout)
            except asyncio.TimeoutError:
                self._worker.cancel()
        self._tokenize_pool.shutdown(wait=False, cancel_futures=True)
        self._score_pool.shutdown(wait=True)
