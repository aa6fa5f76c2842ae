"""What the rerank client needs besides HTTP itself: endpoint URLs, mapping results back by
index, readable error messages, and gathering coroutines that cancel the rest on the first error.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rerankctl.errors import RerankctlError, UsageError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
STATUS_HINTS = {
    401: "pass the server's key (api_key= / --api-key)",
    403: "pass the server's key (api_key= / --api-key)",
    404: "check the endpoint path (e.g. http://host:port/v1/rerank)",
    413: "lower batch_size, or raise the server's --max-docs",
}


def normalize_endpoint(endpoint: str) -> str:
    """``http://host:port`` becomes ``http://host:port/v1/rerank``; full rerank URLs are kept."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"endpoint {endpoint!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:9997/v1/rerank"
        )
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1/rerank"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def base_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def error_message(response: Any) -> str:
    """The error message of a response body (ours, Cohere's, OpenAI's, FastAPI's) or its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                return str(value)[:300]
    return str(body)[:300]


def parse_results(endpoint: str, body: Any, n: int) -> list[float | None]:
    """Scores by document index from a rerank response (``results`` object, or TEI's bare list)."""
    results = body.get("results") if isinstance(body, dict) else body
    if not isinstance(results, list):
        raise RerankctlError(f"{endpoint}: response has no 'results' list", hint="is this a rerank endpoint?")
    scores: list[float | None] = [None] * n
    for item in results:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get("relevance_score", item.get("score")) if isinstance(item, dict) else None
        if (
            not isinstance(index, int)
            or not 0 <= index < n
            or isinstance(score, bool)
            or not isinstance(score, (int, float))
        ):
            raise RerankctlError(
                f"{endpoint}: malformed result {str(item)[:120]} for {n} documents",
                hint="the server must return 'index' and 'relevance_score' per result",
            )
        if scores[index] is not None:
            raise RerankctlError(f"{endpoint}: index {index} appears twice in one response")
        scores[index] = float(score)
    return scores


async def gather_or_cancel(coros: list[Any]) -> list[Any]:
    """Run coroutines concurrently; on the first error cancel the rest and raise it."""
    if not coros:
        return []
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise t.exception()
    return [t.result() for t in tasks]
