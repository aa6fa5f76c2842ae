"""APIReranker and call_rerank_batch against real servers on loopback ports (tiny model, flaky stand-ins)."""

import asyncio
import math
import socket
import time

import pytest

from rerankctl.errors import RerankctlError
from rerankctl.serve.app import ServeSettings, create_app
from rerankctl.serve.backends import NoOpBackend
from rerankctl.serve.client import APIReranker, call_rerank_batch
from rerankctl.serve.runner import BackgroundServer

WORDS = "bm25 dense sparse passage query answer ranking model index retrieval".split()


def _docs(seed: int, n: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 25))) for _ in range(n)]


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    return Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=256)


@pytest.fixture(scope="module")
def model_server(reranker):
    with BackgroundServer(create_app(reranker, ServeSettings(api_key="k", max_docs=8))) as srv:
        yield srv


def _flaky_app(
    plan: list, top_k: int | None = None, delay_first_s: float = 0.0, fail_after: int | None = None
):
    """A rerank stand-in: answers the statuses in ``plan`` first (a status, or (status, headers)), then NoOp
    scores; ``top_k`` returns only the best k results whatever the client asks; after ``fail_after`` answers
    it refuses with 400 until ``app.state.fail_after`` is set to None."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    app.state.calls = 0
    app.state.answered = 0
    app.state.fail_after = fail_after

    @app.post("/v1/rerank")
    async def rerank(request: Request):
        body = await request.json()
        app.state.calls += 1
        if app.state.calls == 1 and delay_first_s:
            await asyncio.sleep(delay_first_s)
        if plan:
            step = plan.pop(0)
            status, headers = step if isinstance(step, tuple) else (step, {})
            return JSONResponse({"message": f"planned {status}"}, status_code=status, headers=headers)
        if app.state.fail_after is not None and app.state.answered >= app.state.fail_after:
            return JSONResponse({"message": "this run is over"}, status_code=400)
        app.state.answered += 1
        scores = [
            NoOpBackend.expected_score(body["query"], d, body.get("instruction")) for d in body["documents"]
        ]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: top_k or len(scores)]
        return {"results": [{"index": i, "relevance_score": scores[i]} for i in order]}

    return app


def test_rerank_and_score_pairs_equal_in_process(model_server, reranker):
    client = APIReranker(model_server.url, api_key="k", batch_size=3, use_cache=False)
    docs = _docs(1, 8)
    ranking, scores = client.rerank("what is bm25", docs)
    expected = reranker.score_pairs(["what is bm25"] * 8, docs)
    assert scores == pytest.approx(expected, abs=1e-5)
    assert ranking == sorted(range(8), key=lambda i: -expected[i])
    assert client.stats["requests"] == 3  # 8 documents in batches of 3
    queries = ["a", "b", "a", "c", "b"]
    pair_docs = _docs(2, 5)
    assert client.score_pairs(queries, pair_docs) == pytest.approx(
        reranker.score_pairs(queries, pair_docs), abs=1e-5
    )
    assert client.count_tokens(queries, pair_docs) == reranker.count_tokens(queries, pair_docs)
    assert client.test_connection() is True and client.max_length == 256


def test_arerank_inside_a_running_loop(model_server, reranker):
    client = APIReranker(model_server.url, api_key="k", use_cache=False)

    async def main():
        got = await asyncio.gather(client.arerank("q1", ["x y", "z"]), client.arerank("q2", ["w"]))
        sync_inside_loop = client.rerank("q3", ["v"])  # runs on a helper thread, not this loop
        await client.aclose()
        return got, sync_inside_loop

    (first, second), third = asyncio.run(main())
    assert first[1] == pytest.approx(reranker.score_pairs(["q1"] * 2, ["x y", "z"]), abs=1e-5)
    assert second[1] == pytest.approx(reranker.score_pairs(["q2"], ["w"]), abs=1e-5)
    assert third[1] == pytest.approx(reranker.score_pairs(["q3"], ["v"]), abs=1e-5)


def test_call_rerank_batch_progress_and_cache_resume(model_server, reranker, tmp_path, capsys):
    items = [(f"query {i}", _docs(10 + i, 2 + i)) for i in range(6)]  # 27 documents
    results = call_rerank_batch(
        items,
        model_server.url,
        max_concurrency=4,
        show_progress=True,
        api_key="k",
        batch_size=4,
        cache_dir=str(tmp_path),
    )
    for (query, docs), (ranking, scores) in zip(items, results):
        expected = reranker.score_pairs([query] * len(docs), docs)
        assert scores == pytest.approx(expected, abs=1e-5)
        assert ranking == sorted(range(len(docs)), key=lambda i: -expected[i])
    assert "27/27" in capsys.readouterr().err  # the rich progress bar counts documents
    # A second run is answered from the cache without a single request.
    again = APIReranker(model_server.url, api_key="k", cache_dir=str(tmp_path))
    assert call_rerank_batch(items, again, show_progress=False) == results
    assert again.stats["requests"] == 0 and again.stats["cache_hits"] == 27
    # Another instruction is another cache entry.
    other = APIReranker(model_server.url, api_key="k", cache_dir=str(tmp_path), instruction="Find code")
    other.rerank("query 0", items[0][1])
    assert other.stats["requests"] == 1


def test_interrupted_run_resumes_from_the_cache(tmp_path):
    items = [(f"q{i}", [f"d{i}-{j}" for j in range(5)]) for i in range(8)]
    app = _flaky_app([], fail_after=4)
    with BackgroundServer(app) as srv:
        # The run stops with an error after four answered requests (one connection, so in order).
        client = APIReranker(srv.url, batch_size=5, max_concurrency=1, retries=0, cache_dir=str(tmp_path))
        with pytest.raises(RerankctlError, match="HTTP 400: this run is over"):
            call_rerank_batch(items, client, show_progress=False)
        assert len(client._cache) == 20  # four answers of five documents, committed as they arrived
        app.state.fail_after = None
        resumed = APIReranker(srv.url, batch_size=5, cache_dir=str(tmp_path))
        results = call_rerank_batch(items, resumed, show_progress=False)
    assert resumed.stats["cache_hits"] == 20 and resumed.stats["documents"] == 20
    assert resumed.stats["requests"] == 4
    for (query, docs), (_, scores) in zip(items, results):
        assert scores == [NoOpBackend.expected_score(query, d) for d in docs]


def test_retries_5xx_and_429_with_retry_after_then_succeeds():
    app = _flaky_app([503, 502, (429, {"Retry-After": "0.4"})])
    with BackgroundServer(app) as srv:
        client = APIReranker(srv.url, retries=3, backoff_base=0.01, use_cache=False)
        start = time.monotonic()
        ranking, scores = client.rerank("q", ["a", "b"])
        elapsed = time.monotonic() - start
    assert scores == [NoOpBackend.expected_score("q", d) for d in ["a", "b"]]
    assert client.stats["retries"] == 3 and app.state.calls == 4
    assert elapsed >= 0.4  # waited as long as Retry-After asked


def test_timeouts_are_retried():
    app = _flaky_app([], delay_first_s=1.0)
    with BackgroundServer(app) as srv:
        client = APIReranker(srv.url, timeout=0.3, retries=2, backoff_base=0.01, use_cache=False)
        _, scores = client.rerank("q", ["a"])
    assert scores == [NoOpBackend.expected_score("q", "a")] and client.stats["retries"] == 1


def test_servers_returning_only_top_n_are_filled_by_index():
    with BackgroundServer(_flaky_app([], top_k=2)) as srv:
        client = APIReranker(srv.url, use_cache=False)
        docs = ["a", "b", "c", "d"]
        ranking, scores = client.rerank("q", docs)
    expected = [NoOpBackend.expected_score("q", d) for d in docs]
    best = sorted(range(4), key=lambda i: -expected[i])[:2]
    assert [scores[i] for i in best] == [expected[i] for i in best]
    assert sorted(i for i in range(4) if scores[i] == -math.inf) == sorted(set(range(4)) - set(best))
    assert ranking[:2] == best


def test_client_errors_are_not_retried_and_name_the_endpoint(model_server):
    client = APIReranker(model_server.url, api_key="wrong", retries=3, use_cache=False)
    with pytest.raises(RerankctlError, match=r"/v1/rerank answered HTTP 401: invalid API key") as info:
        client.rerank("q", ["a"])
    assert "api_key" in info.value.hint and client.stats["requests"] == 1
    too_many = APIReranker(model_server.url, api_key="k", batch_size=9, use_cache=False)
    with pytest.raises(RerankctlError, match="HTTP 413"):
        too_many.rerank("q", ["a"] * 9)


def test_unreachable_endpoint_fails_after_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    client = APIReranker(f"http://127.0.0.1:{port}", retries=2, backoff_base=0.01, use_cache=False)
    with pytest.raises(
        RerankctlError, match=rf"127.0.0.1:{port}/v1/rerank: no answer after 3 attempts"
    ) as info:
        client.rerank("q", ["a"])
    assert "ConnectError" in str(info.value) and client.stats["retries"] == 2
    with pytest.raises(RerankctlError, match="no answer"):
        client.test_connection()
