"""Two-stage evaluation: an embedding model retrieves top-k candidates, the reranker reorders them.

The first stage embeds the task's corpus and queries (an OpenAI-style ``/v1/embeddings``
endpoint, or a local sentence-transformers model), takes the ``top_k`` documents by cosine
similarity, and writes them into the mteb retrieval task as its ``top_ranked`` lists. mteb then
scores the same candidate lists twice with its own metrics: once in first-stage order (the
similarities as scores) and once with the reranker, so the two nDCG@10 figures are directly
comparable and the difference is what the reranker adds at that depth.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rerankctl.errors import RerankctlError, UsageError


class EmbeddingEndpointError(RerankctlError):
    """The embedding endpoint refused, failed or answered in the wrong shape."""


class HTTPEmbedder:
    """Embeddings from an OpenAI-style ``POST /v1/embeddings`` endpoint (httpx, concurrent batches).

    Args:
        endpoint: base URL (``http://host:port``) or the full ``.../v1/embeddings`` URL.
        model: the ``model`` field of requests (some servers require it).
        batch_size: texts per request; max_concurrency: requests in flight.
    """

    def __init__(
        self,
        endpoint: str,
        model: str | None = None,
        batch_size: int = 64,
        max_concurrency: int = 4,
        api_key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/embeddings") else base + "/v1/embeddings"
        self.name = endpoint
        self.model = model
        self.batch_size = max(int(batch_size), 1)
        self.max_concurrency = max(int(max_concurrency), 1)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    def _parse(self, body: Any, n: int) -> list[list[float]]:
        try:
            data = sorted(body["data"], key=lambda item: item.get("index", 0))
            vectors = [list(map(float, item["embedding"])) for item in data]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EmbeddingEndpointError(
                f"embedding endpoint {self.url} answered in an unexpected shape ({type(exc).__name__}: {exc})",
                hint='expected {"data": [{"index": i, "embedding": [...]}, ...]} (the OpenAI shape)',
            ) from None
        if len(vectors) != n:
            raise EmbeddingEndpointError(
                f"embedding endpoint {self.url} returned {len(vectors)} vectors for {n} texts"
            )
        return vectors

    def embed(self, texts: Sequence[str]) -> Any:
        """A ``(len(texts), dim)`` float32 array."""
        import asyncio

        import httpx
        import numpy as np

        batches = [list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]

        async def run() -> list[list[list[float]]]:
            sem = asyncio.Semaphore(self.max_concurrency)
            async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client:

                async def one(batch: list[str]) -> list[list[float]]:
                    payload: dict[str, Any] = {"input": batch}
                    if self.model:
                        payload["model"] = self.model
                    async with sem:
                        try:
                            resp = await client.post(self.url, json=payload)
                        except httpx.HTTPError as exc:
                            raise EmbeddingEndpointError(
                                f"embedding endpoint {self.url} unreachable: {type(exc).__name__}: {exc}",
                                hint="check the URL and that the server is running",
                            ) from None
                    if resp.status_code != 200:
                        raise EmbeddingEndpointError(
                            f"embedding endpoint {self.url} answered HTTP {resp.status_code}: {resp.text[:200]}"
                        )
                    try:
                        body = resp.json()
                    except ValueError:
                        raise EmbeddingEndpointError(
                            f"embedding endpoint {self.url} did not answer JSON"
                        ) from None
                    return self._parse(body, len(batch))

                return list(await asyncio.gather(*(one(b) for b in batches)))

        from rerankctl.eval.scoring import _run_coroutine

        vectors = [v for batch in _run_coroutine(run) for v in batch]
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


class SentenceTransformerEmbedder:
    """Embeddings from a local sentence-transformers model directory."""

    def __init__(self, path: str, device: str | None = None, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = str(path)
        self.model = SentenceTransformer(str(path), device=device or "cpu")
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> Any:
        return self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True)


def top_k_candidates(
    query_vecs: Any, doc_vecs: Any, doc_ids: Sequence[str], top_k: int
) -> list[dict[str, float]]:
    """Per query, the ``top_k`` documents by cosine similarity (``{doc_id: similarity}``, best first)."""
    import numpy as np

    def unit(x: Any) -> Any:
        x = np.asarray(x, dtype=np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    sims = unit(query_vecs) @ unit(doc_vecs).T
    k = min(top_k, sims.shape[1])
    out = []
    for row in sims:
        idx = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
        idx = idx[np.argsort(-row[idx], kind="stable")]
        out.append({doc_ids[i]: float(row[i]) for i in idx})
    return out


@dataclass
class TwoStageResult:
    """First-stage and reranked scores of one retrieval task (mteb's metrics on the same top-k)."""

    task: str
    model: str
    embedder: str
    top_k: int
    main_metric: str
    first_stage: dict[str, float] = field(default_factory=dict)
    reranked: dict[str, float] = field(default_factory=dict)
    n_queries: int = 0
    seconds_embed: float = 0.0
    seconds_rerank: float = 0.0

    @property
    def main_score(self) -> float:
        return self.reranked[self.main_metric]

    @property
    def gain(self) -> float:
        """Reranked minus first-stage main score."""
        return self.reranked[self.main_metric] - self.first_stage[self.main_metric]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(main_score=self.main_score, gain=self.gain)
        return out


def _doc_text(row: dict[str, Any]) -> str:
    # mteb's own joining of title and text, so the embedder sees what the reranker sees.
    title = row.get("title") or ""
    return (title + " " + row["text"]).strip() if title else row["text"]


def _first_stage(task: Any, embedder: Any, top_k: int) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """Fill every split's ``top_ranked`` and return the similarities per (subset, split)."""
    sims: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for subset, splits in task.dataset.items():
        for split in task.eval_splits:
            data = splits.get(split)
            if not isinstance(data, dict) or "corpus" not in data:
                continue
            corpus = data["corpus"]
            doc_ids = list(corpus["id"])
            doc_vecs = embedder.embed([_doc_text(row) for row in corpus])
            queries = data["queries"]
            query_vecs = embedder.embed(list(queries["text"]))
            cands = top_k_candidates(query_vecs, doc_vecs, doc_ids, top_k)
            per_query = dict(zip(queries["id"], cands, strict=True))
            data["top_ranked"] = {qid: list(c) for qid, c in per_query.items()}
            sims[(subset, split)] = per_query
    return sims


def run_two_stage_eval(
    reranker: Any,
    tasks: Iterable[Any],
    embedder: Any,
    top_k: int = 100,
    *,
    batch_size: int = 32,
    workers: int = 4,
    max_samples: int | None = None,
    instruction: str | None = None,
    name: str | None = None,
    on_result: Any = None,
) -> list[TwoStageResult]:
    """Embed, retrieve ``top_k``, rerank, and score both stages with mteb, for each retrieval task.

    Args:
        reranker: anything `MTEBRerankEvaluator` accepts, or a ``{name: reranker}`` mapping to
            compare several rerankers on the same first stage (embedded once).
        tasks: retrieval task names (``T2Retrieval``, ``MMarcoRetrieval``) or mteb task objects.
        embedder: an `HTTPEmbedder`, a `SentenceTransformerEmbedder`, or any object with
            ``embed(texts) -> array`` and ``name``.
        on_result: called with each `TwoStageResult` as it is ready.
    """
    from collections.abc import Mapping

    from rerankctl.eval.mteb_runner import MTEBRerankEvaluator, _load, get_task, subsample_task
    from rerankctl.eval.scoring import describe

    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1 (got {top_k})")
    named = dict(reranker) if isinstance(reranker, Mapping) else {name or describe(reranker): reranker}
    evaluators = [
        MTEBRerankEvaluator(r, batch_size=batch_size, workers=workers, instruction=instruction, name=n)
        for n, r in named.items()
    ]
    results = []
    for item in tasks:
        task = get_task(item)
        _load(task)
        if max_samples is not None:
            _keep_queries(task, max_samples)
        start = time.perf_counter()
        sims = _first_stage(task, embedder, top_k)
        seconds_embed = time.perf_counter() - start
        if max_samples is not None:
            subsample_task(task, max_samples)  # drops the corpus beyond the candidates
        first = _score_first_stage(task, sims)
        for evaluator in evaluators:
            reranked = evaluator.evaluate(task)
            result = TwoStageResult(
                task=reranked.task,
                model=evaluator.name,
                embedder=describe(embedder),
                top_k=top_k,
                main_metric=task.metadata.main_score,
                first_stage=first,
                reranked=reranked.metrics,
                n_queries=reranked.n_queries,
                seconds_embed=seconds_embed,
                seconds_rerank=reranked.seconds,
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _keep_queries(task: Any, max_samples: int) -> None:
    """Keep the first ``max_samples`` judged queries before embedding (the corpus stays whole)."""
    for splits in task.dataset.values():
        for data in splits.values():
            if not isinstance(data, dict) or "queries" not in data:
                continue
            qrels = data["relevant_docs"]
            keep = set([qid for qid in data["queries"]["id"] if qrels.get(qid)][:max_samples])
            data["queries"] = data["queries"].filter(lambda row, keep=keep: row["id"] in keep)
            data["relevant_docs"] = {q: v for q, v in qrels.items() if q in keep}


class PrecomputedSearch:
    """An mteb ``SearchProtocol`` model that returns the first stage's results as they are."""

    def __init__(self, sims: dict[tuple[str, str], dict[str, dict[str, float]]]) -> None:
        from mteb.models import ModelMeta

        self.sims = sims
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={"name": "rerankctl/first-stage", "modalities": ["text"]}
        )

    def index(self, corpus: Any, **kwargs: Any) -> None:
        """Nothing to index: the candidates are already chosen."""

    def search(
        self, queries: Any, *, hf_split: str, hf_subset: str, **kwargs: Any
    ) -> dict[str, dict[str, float]]:
        per_query = self.sims[(hf_subset, hf_split)]
        return {qid: dict(per_query.get(qid, {})) for qid in queries["id"]}


def _score_first_stage(
    task: Any, sims: dict[tuple[str, str], dict[str, dict[str, float]]]
) -> dict[str, float]:
    """mteb's metrics of the first-stage candidate lists, in similarity order."""
    import mteb

    from rerankctl.eval.mteb_runner import _average_scores

    result = mteb.evaluate(
        PrecomputedSearch(sims),
        task,
        cache=None,
        co2_tracker=False,
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
    )
    return _average_scores(result.task_results[0])
