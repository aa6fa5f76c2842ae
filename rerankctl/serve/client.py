"""`APIReranker`: an async httpx client for rerank endpoints, and `call_rerank_batch` over many queries.

    >>> reranker = APIReranker("http://127.0.0.1:9997/v1/rerank")   # doctest: +SKIP
    >>> ranking, scores = reranker.rerank("what is BM25?", docs)      # doctest: +SKIP

Long document lists are split into ``batch_size`` requests sent concurrently (at most
``max_concurrency`` in flight per client). Each request asks for ``top_n = len(batch)`` and the
results are mapped back by ``index`` (servers sort them and may return fewer); documents a
server leaves out get ``-inf``. 429, 5xx, timeouts and connection errors are retried with
jittered exponential backoff (honouring ``Retry-After``); other 4xx fail at once. Scores go to an
on-disk cache (:mod:`rerankctl.serve.cache`) as they arrive, so a rerun resumes.

The client also speaks the :class:`rerankctl.serve.backends.ScoringBackend` protocol
(``score_pairs``, ``count_tokens``, ``name``, ``max_length``), so evaluation code treats local
models and endpoints alike.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rerankctl.errors import RerankctlError, UsageError
from rerankctl.serve.wire import (
    RETRY_STATUS,
    STATUS_HINTS,
    base_url,
    error_message,
    gather_or_cancel,
    normalize_endpoint,
    parse_results,
)

__all__ = ["APIReranker", "acall_rerank_batch", "call_rerank_batch", "normalize_endpoint", "parse_results"]


class APIReranker:
    """A client of one rerank endpoint.

    Args:
        endpoint: ``http://host:port/v1/rerank`` (a bare ``http://host:port`` gets ``/v1/rerank``).
        model: model name sent with each request (and part of the cache key).
        batch_size: documents per request.
        max_concurrency: requests in flight at once.
        timeout: seconds per request.
        retries: extra attempts after a 429/5xx/timeout/connection error.
        api_key: sent as ``Authorization: Bearer``.
        instruction: default instruction (sent only when set).
        cache_dir: score cache directory (default ``$RERANKCTL_HOME/cache/scores``).
        use_cache: False disables the score cache.
        backoff_base, backoff_max: first retry delay and the cap, in seconds (jittered).
    """

    def __init__(
        self,
        endpoint: str,
        model: str | None = None,
        batch_size: int = 64,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        retries: int = 3,
        api_key: str | None = None,
        instruction: str | None = None,
        cache_dir: str | None = None,
        use_cache: bool = True,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1 or retries < 0 or timeout <= 0:
            raise UsageError("batch_size and max_concurrency must be >= 1, retries >= 0 and timeout > 0")
        self.endpoint = normalize_endpoint(endpoint)
        self.model = model
        self.name = model or self.endpoint
        self.max_length = 0  # unknown until test_connection() reads /v1/models
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retries = retries
        self.api_key = api_key
        self.instruction = instruction
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0, "documents": 0}
        self._cache = None
        if use_cache:
            from rerankctl import paths
            from rerankctl.serve.cache import ScoreCache

            self._cache = ScoreCache(cache_dir or paths.cache_dir("scores"))
        self._loop_state: tuple[Any, dict[int, Any], asyncio.Queue] | None = None
        self._ssl_context: Any = None

    def after_fork(self) -> None:
        """Make this client usable in a forked child process: new connections, its own cache handle.

        Neither event-loop state nor an SQLite connection may cross ``fork()`` (SQLite: "do not open
        a database, fork, then use it in the child"). The inherited handle is dropped, not closed:
        closing it in the child could release locks the parent still holds.
        """
        self._loop_state = None
        if self._cache is not None:
            from rerankctl.serve.cache import ScoreCache

            self._cache = ScoreCache(self._cache.path.parent)

    # -- connection state: per event loop, max_concurrency lanes of one connection each ------------
    # One single-connection httpx client per lane, handed out through a queue: httpcore's pool walks
    # every connection on each request, which costs more than the request itself at 16 connections.
    def _lanes(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop_state is None or self._loop_state[0] is not loop:
            lanes: asyncio.Queue = asyncio.Queue()
            for lane in range(self.max_concurrency):
                lanes.put_nowait(lane)
            self._loop_state = (loop, {}, lanes)
        return self._loop_state[2]

    def _client(self, lane: int):
        import httpx

        clients = self._loop_state[1]
        if lane not in clients:
            if self._ssl_context is None:  # loading the CA bundle costs ~10-90 ms: once per reranker
                self._ssl_context = httpx.create_ssl_context()
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            clients[lane] = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                headers=headers,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                verify=self._ssl_context,
            )
        return clients[lane]

    async def _request(self, method: str, url: str, **kwargs: Any):
        lanes = self._lanes()
        lane = await lanes.get()
        try:
            self.stats["requests"] += 1
            return await self._client(lane).request(method, url, **kwargs)
        finally:
            lanes.put_nowait(lane)

    async def aclose(self) -> None:
        """Close this loop's HTTP connections."""
        state, self._loop_state = self._loop_state, None
        if state is not None and state[0] is asyncio.get_running_loop():
            for client in state[1].values():
                await client.aclose()

    def close(self) -> None:
        """Close the score cache (HTTP connections close with their event loop)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def _run(self, coro_fn: Callable[[], Any]) -> Any:
        """Run a coroutine from sync code (on a helper thread when a loop already runs here)."""

        async def main():
            try:
                return await coro_fn()
            finally:
                await self.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target, name="rerankctl-client")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    # -- one HTTP request, with retries --------------------------------------------------------------
    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 60.0))
        return delay

    async def _post(self, url: str, payload: dict[str, Any], retries: int | None = None) -> Any:
        """POST ``payload``; the JSON body of the first 2xx answer, or RerankctlError."""
        import httpx

        retries = self.retries if retries is None else retries
        last, retry_after = "no attempt made", None
        for attempt in range(retries + 1):
            if attempt:
                self.stats["retries"] += 1
                await asyncio.sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                response = await self._request("POST", url, json=payload)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s"
                continue
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}: {error_message(response)}"
                try:
                    retry_after = float(response.headers.get("retry-after", ""))
                except ValueError:
                    retry_after = None
                continue
            if response.status_code >= 400:
                raise RerankctlError(
                    f"{url} answered HTTP {response.status_code}: {error_message(response)}",
                    hint=STATUS_HINTS.get(response.status_code),
                )
            try:
                return response.json()
            except ValueError as exc:
                raise RerankctlError(f"{url}: response is not JSON ({response.text[:80]!r})") from exc
        raise RerankctlError(
            f"{url}: no answer after {retries + 1} attempts (last: {last})",
            hint="is the server running? on the command line raise --timeout; in Python, retries= or timeout=",
        )

    async def _score_batch(self, query: str, docs: list[str], instruction: str | None) -> list[float | None]:
        payload: dict[str, Any] = {
            "query": query,
            "documents": docs,
            "top_n": len(docs),
            "return_documents": False,
        }
        if self.model:
            payload["model"] = self.model
        if instruction:
            payload["instruction"] = instruction
        body = await self._post(self.endpoint, payload)
        return parse_results(self.endpoint, body, len(docs))

    # -- scoring -------------------------------------------------------------------------------------
    async def ascore(
        self,
        query: str,
        docs: Sequence[str],
        instruction: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[float]:
        """Scores of ``docs`` for ``query`` in document order (cached ones are not sent again)."""
        from rerankctl.serve.cache import score_key

        instruction = instruction or self.instruction
        keys: list[str] = []
        scores: list[float | None] = [None] * len(docs)
        if self._cache is not None and docs:
            keys = [score_key(self.endpoint, self.model, instruction, query, d) for d in docs]
            cached = self._cache.get_many(keys)
            scores = [cached.get(k) for k in keys]
        missing = [i for i, s in enumerate(scores) if s is None]
        self.stats["cache_hits"] += len(docs) - len(missing)
        if on_progress and len(docs) > len(missing):
            on_progress(len(docs) - len(missing))

        async def one(batch: list[int]) -> None:
            got = await self._score_batch(query, [docs[i] for i in batch], instruction)
            for pos, i in enumerate(batch):
                scores[i] = got[pos]
            if self._cache is not None:
                self._cache.put_many((keys[i], got[p]) for p, i in enumerate(batch) if got[p] is not None)
            self.stats["documents"] += len(batch)
            if on_progress:
                on_progress(len(batch))

        await gather_or_cancel(
            [one(missing[s : s + self.batch_size]) for s in range(0, len(missing), self.batch_size)]
        )
        return [-math.inf if s is None else s for s in scores]

    async def arerank(self, query: str, docs: Sequence[str], instruction: str | None = None):
        """``(ranking, scores)``: document indices best first, and scores in document order."""
        scores = await self.ascore(query, docs, instruction)
        return sorted(range(len(scores)), key=lambda i: -scores[i]), scores

    def rerank(self, query: str, docs: Sequence[str], instruction: str | None = None):
        """Sync :meth:`arerank`."""
        return self._run(lambda: self.arerank(query, docs, instruction))

    async def ascore_pairs(self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None):
        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} documents")
        groups: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            groups.setdefault(q, []).append(i)
        out = [0.0] * len(queries)

        async def one(query: str, rows: list[int]) -> None:
            for i, s in zip(
                rows, await self.ascore(query, [docs[i] for i in rows], instruction), strict=True
            ):
                out[i] = s

        await gather_or_cancel([one(q, rows) for q, rows in groups.items()])
        return out

    def score_pairs(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        instruction: str | None = None,
        batch_size: int | None = None,
    ) -> list[float]:
        """Scores of (query, doc) pairs in input order (the ScoringBackend protocol).

        ``batch_size`` is accepted for the protocol; requests use the client's ``batch_size``.
        """
        return self._run(lambda: self.ascore_pairs(queries, docs, instruction))

    def count_tokens(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[int]:
        """Prompt tokens per pair, from the server's ``/tokenize`` route (rerankctl servers have one)."""

        async def go() -> list[int]:
            out = [0] * len(queries)
            groups: dict[str, list[int]] = {}
            for i, q in enumerate(queries):
                groups.setdefault(q, []).append(i)
            for query, rows in groups.items():
                payload = {"query": query, "documents": [docs[i] for i in rows]}
                if instruction or self.instruction:
                    payload["instruction"] = instruction or self.instruction
                body = await self._post(base_url(self.endpoint) + "/tokenize", payload)
                for i, n in zip(rows, body["tokens"], strict=True):
                    out[i] = int(n)
            return out

        return self._run(go)

    def test_connection(self) -> bool:
        """One tiny rerank request (no retries); True, or RerankctlError saying what went wrong.

        Also reads ``max_model_len`` from ``/v1/models`` when the server has it.
        """

        async def go() -> bool:
            body = await self._post(
                self.endpoint,
                {
                    "query": "ping",
                    "documents": ["pong"],
                    "top_n": 1,
                    **({"model": self.model} if self.model else {}),
                },
                retries=0,
            )
            parse_results(self.endpoint, body, 1)
            try:
                models = (await self._request("GET", base_url(self.endpoint) + "/v1/models")).json()
                self.max_length = int(models["data"][0].get("max_model_len") or 0)
            except Exception:  # noqa: BLE001 - optional information; many servers lack the route
                pass
            return True

        return self._run(go)


async def acall_rerank_batch(
    items: Sequence[tuple],
    reranker: APIReranker,
    show_progress: bool | str = True,
    description: str = "reranking",
) -> list[tuple[list[int], list[float]]]:
    """Async :func:`call_rerank_batch` with an existing client (``show_progress="plain"``: log lines)."""
    total = sum(len(item[1]) for item in items)
    progress = None
    plain = None
    if show_progress == "plain":
        from rerankctl.progress_lines import PlainCounter

        plain = PlainCounter(f"{description} {reranker.endpoint}", total)
    elif show_progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("docs"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        progress.start()
        task = progress.add_task(f"{description} {reranker.endpoint}", total=total)

    def advance(n: int) -> None:
        if progress is not None:
            progress.advance(task, n)
        elif plain is not None:
            plain.advance(n)

    async def one(item: tuple) -> tuple[list[int], list[float]]:
        query, docs = item[0], list(item[1])
        instruction = item[2] if len(item) > 2 else None
        scores = await reranker.ascore(query, docs, instruction, on_progress=advance)
        return sorted(range(len(scores)), key=lambda i: -scores[i]), scores

    try:
        return await gather_or_cancel([one(item) for item in items])
    finally:
        if progress is not None:
            progress.stop()


def call_rerank_batch(
    items: Sequence[tuple],
    endpoint: str | APIReranker,
    max_concurrency: int = 8,
    show_progress: bool | str = True,
    **client_kwargs: Any,
) -> list[tuple[list[int], list[float]]]:
    """Rerank many ``(query, docs)`` (or ``(query, docs, instruction)``) items against one endpoint.

    Requests from all items share ``max_concurrency`` connections; a rich progress bar counts
    documents (cache hits included). Returns ``(ranking, scores)`` per item, in item order.
    ``client_kwargs`` go to :class:`APIReranker` (model, batch_size, timeout, retries, api_key,
    instruction, cache_dir, use_cache) when ``endpoint`` is a URL.

    Raises:
        RerankctlError: naming the endpoint, when a request still fails after its retries
            (every score that arrived before is in the cache).
    """
    reranker = (
        endpoint
        if isinstance(endpoint, APIReranker)
        else APIReranker(endpoint, max_concurrency=max_concurrency, **client_kwargs)
    )
    return reranker._run(lambda: acall_rerank_batch(items, reranker, show_progress))
