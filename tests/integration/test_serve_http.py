"""The rerank server over real loopback HTTP (uvicorn on a free port, in a thread), tiny Qwen3 model."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from rerankctl.serve.app import ServeSettings, create_app
from rerankctl.serve.backends import NoOpBackend
from rerankctl.serve.runner import BackgroundServer

API_KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WORDS = "retrieval ranking neural query passage answer model search index vector sparse dense".split()


def _docs(seed: int, n: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    return Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=256)


@pytest.fixture(scope="module")
def server(reranker):
    settings = ServeSettings(
        api_key=API_KEY,
        max_docs=50,
        max_doc_chars=2000,
        max_query_chars=500,
        max_body_bytes=200_000,
        max_wait_ms=20,
    )
    with BackgroundServer(create_app(reranker, settings)) as srv:
        yield srv


def test_64_concurrent_requests_match_in_process_scores(server, reranker):
    requests = [(f"query {i} about {WORDS[i % len(WORDS)]}", _docs(i, 3 + i % 9)) for i in range(64)]

    async def fire():
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        server.url + "/v1/rerank",
                        json={"query": q, "documents": d, "return_documents": True},
                        headers=AUTH,
                    )
                    for q, d in requests
                )
            )

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 64
    for (query, docs), response in zip(requests, responses):
        body = response.json()
        expected = reranker.score_pairs([query] * len(docs), docs)
        got = {r["index"]: r["relevance_score"] for r in body["results"]}
        assert sorted(got) == list(range(len(docs)))
        for i, score in got.items():
            assert score == pytest.approx(expected[i], abs=1e-5)
        scores = [r["relevance_score"] for r in body["results"]]
        assert scores == sorted(scores, reverse=True)
        assert [r["document"]["text"] for r in body["results"]] == [docs[r["index"]] for r in body["results"]]
        tokens = sum(reranker.count_tokens([query] * len(docs), docs))
        assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
        assert body["meta"] == {"tokens": {"input_tokens": tokens, "output_tokens": 0}}
    # Requests really shared forward passes: fewer batches than requests, some with pairs of several requests.
    metrics = httpx.get(server.url + "/metrics", headers=AUTH).text
    count = _metric(metrics, "rerankctl_batch_pairs_count")
    pairs = _metric(metrics, "rerankctl_batch_pairs_sum")
    assert pairs >= sum(len(d) for _, d in requests)
    assert count < 64 and pairs / count > 9  # the largest request has 11 documents


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


@pytest.mark.parametrize(
    "shape",
    [
        {"query": "Q", "documents": ["D0", "D1", "D2"]},  # Cohere v1/v2, vLLM, Xinference, Infinity
        {
            "model": "anything",
            "query": "Q",
            "documents": [{"text": "D0"}, {"text": "D1"}, "D2"],
            "top_n": 3,
        },  # Jina
        {"query": "Q", "texts": ["D0", "D1", "D2"], "return_text": True},  # TEI
        {
            "query": "Q",
            "documents": ["D0", "D1", "D2"],
            "top_k": 3,
            "rank_fields": ["text"],
            "truncate": "END",
        },
    ],
)
@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_request_shapes_give_the_same_scores(server, reranker, shape, path):
    response = httpx.post(server.url + path, json=shape, headers=AUTH)
    assert response.status_code == 200, response.text
    expected = reranker.score_pairs(["Q"] * 3, ["D0", "D1", "D2"])
    body = response.json()
    if "texts" in shape:  # TEI-shaped request: TEI's bare-list reply
        got = {r["index"]: r["score"] for r in body}
    else:
        got = {r["index"]: r["relevance_score"] for r in body["results"]}
    assert got == pytest.approx(dict(enumerate(expected)), abs=1e-5)


def test_top_n_instruction_and_return_documents(server, reranker):
    docs = _docs(7, 6)
    response = httpx.post(
        server.url + "/rerank",
        headers=AUTH,
        json={"query": "q", "documents": docs, "top_n": 2, "instruction": "Find code"},
    )
    body = response.json()
    expected = reranker.score_pairs(["q"] * 6, docs, instruction="Find code")
    best = sorted(range(6), key=lambda i: -expected[i])[:2]
    assert [r["index"] for r in body["results"]] == best
    assert all("document" not in r for r in body["results"])
    default = reranker.score_pairs(["q"] * 6, docs)
    assert max(abs(a - b) for a, b in zip(expected, default)) > 1e-6  # the instruction reached the prompt


BAD_REQUESTS = [
    # (description, body bytes, headers, expected status, words the message must contain)
    ("bad JSON", b'{"query": "q", "documents": [', AUTH, 400, "not valid JSON"),
    ("empty body", b"", AUTH, 400, "empty request body"),
    ("deeply nested JSON", b"[" * 100_000, AUTH, 400, "not valid JSON"),
    ("invalid UTF-8", b'{"query": "\xff", "documents": ["a"]}', AUTH, 400, "not valid JSON"),
    ("JSON array", b'["q", "d"]', AUTH, 422, "JSON object"),
    ("missing query", json.dumps({"documents": ["a"]}).encode(), AUTH, 422, "'query'"),
    ("empty query", json.dumps({"query": "  ", "documents": ["a"]}).encode(), AUTH, 422, "'query'"),
    ("missing documents", json.dumps({"query": "q"}).encode(), AUTH, 422, "documents"),
    ("empty documents", json.dumps({"query": "q", "documents": []}).encode(), AUTH, 422, "at least one"),
    (
        "too many documents",
        json.dumps({"query": "q", "documents": ["d"] * 51}).encode(),
        AUTH,
        413,
        "51 documents > 50",
    ),
    (
        "oversized document",
        json.dumps({"query": "q", "documents": ["ok", "x" * 2001]}).encode(),
        AUTH,
        413,
        "documents.1",
    ),
    ("oversized query", json.dumps({"query": "q" * 501, "documents": ["d"]}).encode(), AUTH, 413, "'query'"),
    (
        "oversized body",
        json.dumps({"query": "q", "documents": ["x" * 1900] * 50, "pad": "y" * 200_000}).encode(),
        AUTH,
        413,
        "bytes",
    ),
    ("query of wrong type", json.dumps({"query": 5, "documents": ["a"]}).encode(), AUTH, 422, "'query'"),
    (
        "document of wrong type",
        json.dumps({"query": "q", "documents": ["a", 3]}).encode(),
        AUTH,
        422,
        "documents.1",
    ),
    (
        "document object without text",
        json.dumps({"query": "q", "documents": [{"image": "u"}]}).encode(),
        AUTH,
        422,
        "documents.0",
    ),
    ("documents not a list", json.dumps({"query": "q", "documents": "abc"}).encode(), AUTH, 422, "documents"),
    (
        "negative top_n",
        json.dumps({"query": "q", "documents": ["a"], "top_n": -1}).encode(),
        AUTH,
        422,
        "top_n",
    ),
    (
        "top_n of wrong type",
        json.dumps({"query": "q", "documents": ["a"], "top_n": "many"}).encode(),
        AUTH,
        422,
        "top_n",
    ),
    (
        "both documents and texts",
        json.dumps({"query": "q", "documents": ["a"], "texts": ["b"]}).encode(),
        AUTH,
        422,
        "not both",
    ),
    ("no API key", json.dumps({"query": "q", "documents": ["a"]}).encode(), {}, 401, "missing API key"),
    (
        "wrong API key",
        json.dumps({"query": "q", "documents": ["a"]}).encode(),
        {"Authorization": "Bearer nope"},
        401,
        "invalid API key",
    ),
    (
        "wrong auth scheme",
        json.dumps({"query": "q", "documents": ["a"]}).encode(),
        {"Authorization": f"Basic {API_KEY}"},
        401,
        "API key",
    ),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_4xx_with_a_message(server, case):
    _, body, headers, status, words = case
    response = httpx.post(
        server.url + "/v1/rerank", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == status and words in payload["message"], payload
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_streamed_oversized_body_is_refused_while_reading(server):
    def chunks():
        yield b'{"query": "q", "documents": ["'
        for _ in range(30):
            yield b"x" * 10_000  # 300 kB in all, no Content-Length: the server counts as it reads
        yield b'"]}'

    response = httpx.post(server.url + "/rerank", content=chunks(), headers=AUTH)
    assert response.status_code == 413 and "over 200000 bytes" in response.json()["message"]


def test_routes_methods_and_form_content_type(server):
    assert httpx.get(server.url + "/nowhere").status_code == 404
    assert httpx.get(server.url + "/v1/rerank", headers=AUTH).json()["code"] == 405
    # curl -d sends application/x-www-form-urlencoded; a JSON body is still read.
    response = httpx.post(
        server.url + "/rerank",
        content=b'{"query": "q", "documents": ["a"]}',
        headers={"Content-Type": "application/x-www-form-urlencoded", **AUTH},
    )
    assert response.status_code == 200


def test_health_models_openapi_and_metrics(server):
    health = httpx.get(server.url + "/health")  # no key needed for liveness probes
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(server.url + "/v1/models").status_code == 401
    models = httpx.get(server.url + "/v1/models", headers=AUTH).json()
    assert models["data"][0]["max_model_len"] == 256 and models["object"] == "list"
    schema = httpx.get(server.url + "/openapi.json").json()
    assert {"/rerank", "/v1/rerank", "/v2/rerank", "/health", "/metrics"} <= set(schema["paths"])
    ref = schema["paths"]["/v1/rerank"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "$ref"
    ]
    assert ref == "#/components/schemas/RerankRequest"
    assert {"query", "documents", "texts", "top_n"} <= set(
        schema["components"]["schemas"]["RerankRequest"]["properties"]
    )
    httpx.post(server.url + "/rerank", json={"query": "q", "documents": ["a", "b"]}, headers=AUTH)
    metrics = httpx.get(server.url + "/metrics", headers=AUTH)
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert _metric(text, 'rerankctl_requests_total{route="/rerank",status="200"}') >= 1
    assert _metric(text, "rerankctl_documents_total") >= 2
    assert _metric(text, "rerankctl_documents_per_second") > 0
    assert "# TYPE rerankctl_request_duration_seconds histogram" in text


class GatedBackend(NoOpBackend):
    """Holds every scoring call until the test opens the gate: no race with the clock under load."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def score_pairs(self, queries, docs, instruction=None, batch_size=32):
        assert self.gate.wait(60), "the test never opened the gate"
        return super().score_pairs(queries, docs, instruction, batch_size)


def test_full_queue_answers_503_with_retry_after():
    backend = GatedBackend()
    app = create_app(backend, ServeSettings(max_docs=10, max_queue_docs=10, max_wait_ms=0))
    with BackgroundServer(app) as srv:
        first = {}

        def slow() -> None:
            first["response"] = httpx.post(
                srv.url + "/rerank", json={"query": "q", "documents": ["d"] * 10}, timeout=60
            )

        thread = threading.Thread(target=slow)
        thread.start()
        try:
            # The first request's 10 documents stay admitted (queued or being scored) until the gate opens.
            deadline = time.monotonic() + 30
            while (
                httpx.get(srv.url + "/health").json()["queued_documents"] < 10 and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            busy = httpx.post(srv.url + "/rerank", json={"query": "q", "documents": ["d"]}, timeout=30)
        finally:
            backend.gate.set()
        thread.join(60)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "busy" in busy.json()["message"]
        assert first["response"].status_code == 200


def test_graceful_shutdown_finishes_in_flight_requests():
    backend = NoOpBackend(delay_s=0.5)
    srv = BackgroundServer(create_app(backend, ServeSettings(max_wait_ms=0))).start()
    box = {}

    def call() -> None:
        box["response"] = httpx.post(
            srv.url + "/rerank", json={"query": "q", "documents": ["a", "b", "c"]}, timeout=30
        )

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 10
    while httpx.get(srv.url + "/health").json()["queued_documents"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.stop()  # what SIGTERM does: should_exit, then uvicorn waits for open requests, then the lifespan ends
    thread.join(30)
    response = box["response"]
    assert response.status_code == 200
    got = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
    assert got == {i: NoOpBackend.expected_score("q", d) for i, d in enumerate(["a", "b", "c"])}
    with pytest.raises(httpx.ConnectError):
        httpx.post(srv.url + "/rerank", json={"query": "q", "documents": ["a"]})
