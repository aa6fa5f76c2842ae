"""One scoring interface over everything that can rerank: a local model, an HTTP client, a function.

Evaluation code never cares what produces the scores. It hands a list of groups
``(query, [doc, ...])`` to a `GroupScorer` and gets one score per document back, in input
order. `as_scorer` builds one from:

* an `APIReranker`: every group goes to ``call_rerank_batch`` at once, so all queries' requests
  share the client's ``max_concurrency`` connections on one event loop (with a progress bar on a
  terminal, and the client's on-disk score cache);
* a `Qwen3Reranker` (any object with ``score_pairs(queries, docs, instruction=, batch_size=)``):
  all pairs go in one call, so the model batches by length across queries;
* an object with only an async ``arerank(query, docs)``: groups are sent concurrently on one
  event loop, ``workers`` at a time;
* a plain function ``fn(query, docs) -> scores`` (or ``-> (ranking, scores)``): groups run on a
  thread pool of ``workers`` threads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Group = tuple[str, Sequence[str]]


def _scores_of(result: Any, n_docs: int, who: str) -> list[float]:
    """Accept ``scores`` or ``(ranking, scores)`` and check the length."""
    if isinstance(result, tuple) and len(result) == 2:
        result = result[1]
    try:
        scores = [float(x) for x in result]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{who} returned {type(result).__name__}, not a list of scores") from exc
    if len(scores) != n_docs:
        raise ValueError(f"{who} returned {len(scores)} scores for {n_docs} documents")
    return scores


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class GroupScorer:
    """Scores groups of documents against their query.

    Args:
        source: a reranker object or a function (see the module docstring).
        batch_size: pairs per forward pass for local models (HTTP clients batch themselves).
        workers: groups scored at the same time (threads for functions, concurrent requests
            for async clients).
        instruction: passed to sources that take one (local models); HTTP clients carry theirs.
        name: shown in reports; defaults to the source's ``name``/``endpoint``.
    """

    def __init__(
        self,
        source: Any,
        batch_size: int = 32,
        workers: int = 4,
        instruction: str | None = None,
        name: str | None = None,
    ) -> None:
        self.source = source
        self.batch_size = max(int(batch_size), 1)
        self.workers = max(int(workers), 1)
        self.instruction = instruction
        self.name = name or describe(source)
        self.pairs_scored = 0
        self.show_progress: bool | None = None  # None: a progress bar when stderr is a terminal

    def score_groups(self, groups: Sequence[Group], instruction: str | None = None) -> list[list[float]]:
        """One list of scores per group, each in the group's document order.

        ``instruction`` overrides the scorer's own for this call (per-record instructions).
        """
        groups = [(q, list(docs)) for q, docs in groups]
        if not groups:
            return []
        instruction = instruction if instruction is not None else self.instruction
        src = self.source
        if _is_api_client(src):
            out = self._score_client(groups, instruction)
        elif hasattr(src, "score_pairs"):
            out = self._score_flat(groups, instruction)
        elif hasattr(src, "arerank"):
            out = self._score_async(groups, instruction)
        elif callable(src):
            out = self._score_threads(groups, instruction)
        else:
            raise TypeError(f"cannot score with {type(src).__name__}: expected a reranker or a function")
        self.pairs_scored += sum(len(d) for _, d in groups)
        return out

    def _score_client(
        self, groups: list[tuple[str, list[str]]], instruction: str | None
    ) -> list[list[float]]:
        """`call_rerank_batch`: every query's requests share the client's connections, with a progress bar."""
        import sys

        from rerankctl.serve.client import call_rerank_batch

        items = [(q, docs, instruction) for q, docs in groups]
        # a bar on a terminal; in a log (pipe, file, CI) a line every tenth of the documents
        show = self.show_progress if self.show_progress is not None else (sys.stderr.isatty() or "plain")
        results = call_rerank_batch(items, self.source, show_progress=show)
        return [_scores_of(res, len(docs), self.name) for res, (_, docs) in zip(results, groups, strict=True)]

    def _score_flat(self, groups: list[tuple[str, list[str]]], instruction: str | None) -> list[list[float]]:
        queries = [q for q, docs in groups for _ in docs]
        docs = [d for _, ds in groups for d in ds]
        kwargs: dict[str, Any] = {}
        fn = self.source.score_pairs
        if _accepts(fn, "batch_size"):
            kwargs["batch_size"] = self.batch_size
        if instruction is not None and _accepts(fn, "instruction"):
            kwargs["instruction"] = instruction
        flat = _scores_of(fn(queries, docs, **kwargs), len(docs), self.name)
        out, start = [], 0
        for _, ds in groups:
            out.append(flat[start : start + len(ds)])
            start += len(ds)
        return out

    def _score_threads(
        self, groups: list[tuple[str, list[str]]], instruction: str | None
    ) -> list[list[float]]:
        fn = self.source
        kwargs = (
            {"instruction": instruction} if instruction is not None and _accepts(fn, "instruction") else {}
        )

        def one(group: tuple[str, list[str]]) -> list[float]:
            query, docs = group
            res = fn(query, docs, **kwargs)
            return _scores_of(res, len(docs), self.name)

        if self.workers == 1 or len(groups) == 1:
            return [one(g) for g in groups]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="rerankctl-score") as pool:
            return list(pool.map(one, groups))

    def _score_async(self, groups: list[tuple[str, list[str]]], instruction: str | None) -> list[list[float]]:
        import asyncio

        fn = self.source.arerank
        kwargs = (
            {"instruction": instruction} if instruction is not None and _accepts(fn, "instruction") else {}
        )

        async def run() -> list[list[float]]:
            # Bound the groups in flight; the client bounds its own requests per group too.
            sem = asyncio.Semaphore(self.workers)

            async def one(query: str, docs: list[str]) -> list[float]:
                async with sem:
                    return _scores_of(await fn(query, docs, **kwargs), len(docs), self.name)

            try:
                return list(await asyncio.gather(*(one(q, d) for q, d in groups)))
            finally:
                if hasattr(self.source, "aclose"):  # connections belong to this loop
                    await self.source.aclose()

        return _run_coroutine(run)


def _is_api_client(source: Any) -> bool:
    """An `APIReranker` (checked by class name first, so no import when it cannot be one)."""
    if type(source).__name__ != "APIReranker":
        return False
    from rerankctl.serve.client import APIReranker

    return isinstance(source, APIReranker)


def _run_coroutine(factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, even when a loop already runs in this thread."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Inside a running loop (a notebook, an async caller): use a private loop on a worker thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def describe(source: Any) -> str:
    """A short human name for a scoring source."""
    for attr in ("name", "endpoint", "model_name"):
        value = getattr(source, attr, None)
        if isinstance(value, str) and value:
            return value
    return getattr(source, "__name__", type(source).__name__)


def as_scorer(
    source: Any,
    batch_size: int = 32,
    workers: int = 4,
    instruction: str | None = None,
    name: str | None = None,
) -> GroupScorer:
    """Wrap ``source`` in a `GroupScorer` (a `GroupScorer` is returned unchanged)."""
    if isinstance(source, GroupScorer):
        return source
    return GroupScorer(source, batch_size=batch_size, workers=workers, instruction=instruction, name=name)
