"""Two-stage evaluation with a real OpenAI-style /v1/embeddings server on loopback.

The embedding server hashes words into a bag-of-words vector (deterministic, no model needed);
the first stage's nDCG@10 is checked against our own metrics on the same top-k, and an oracle
reranker must reach the best nDCG@10 the candidate lists allow.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from fastapi import FastAPI, Request

from rerankctl.eval.metrics import compute_all_metrics
from rerankctl.eval.two_stage import EmbeddingEndpointError, HTTPEmbedder, run_two_stage_eval

DIM = 48
TOPICS = ["apple fruit orchard", "python code snake", "river water bridge", "violin music concert",
          "mountain snow climb", "coffee bean roast"]  # fmt: skip


def embed_text(text: str) -> list[float]:
    vec = np.zeros(DIM)
    for word in text.lower().split():
        h = zlib.crc32(word.encode())
        vec[h % DIM] += 1.0 + (h % 89) / 89  # uneven weights, so similarities do not tie
    return vec.tolist()


def embeddings_app(calls: list) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        body = await request.json()
        calls.append(len(body["input"]))
        data = [
            {"object": "embedding", "index": i, "embedding": embed_text(t)}
            for i, t in enumerate(body["input"])
        ]
        return {
            "object": "list",
            "data": data[::-1],
            "model": body.get("model", "bow"),
        }  # out of order on purpose

    return app


@pytest.fixture()
def embed_server():
    from rerankctl.serve.runner import BackgroundServer

    calls: list[int] = []
    with BackgroundServer(embeddings_app(calls)) as srv:
        yield srv.url, calls


def retrieval_task():
    """30 documents over 6 topics; each query's relevant documents are its topic's 5 documents."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.abstasks.task_metadata import TaskMetadata

    from rerankctl.eval.local import _TASK_METADATA

    corpus, qrels, queries = [], {}, []
    for t, topic in enumerate(TOPICS):
        words = topic.split()
        queries.append({"id": f"q{t}", "text": f"{words[0]} {words[1]}"})
        qrels[f"q{t}"] = {}
        for j in range(5):
            # Documents share some words with their topic and some noise words with others.
            noise = TOPICS[(t + j + 1) % len(TOPICS)].split()[j % 3]
            text = f"{words[j % 3]} {words[(j + 1) % 3]} {noise} note{j}"
            corpus.append({"id": f"d{t}-{j}", "text": text, "title": ""})
            qrels[f"q{t}"][f"d{t}-{j}"] = 1
    split = RetrievalSplitData(queries=Dataset.from_list(queries), corpus=Dataset.from_list(corpus),
                               relevant_docs=qrels, top_ranked=None)  # fmt: skip
    meta = dict(_TASK_METADATA, type="Retrieval", main_score="ndcg_at_10")

    class BowRetrieval(AbsTaskRetrieval):
        metadata = TaskMetadata(name="BowRetrieval", **meta)

        def load_data(self, num_proc=None, **kwargs):
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return BowRetrieval(), corpus, queries, qrels


def _expected_first_stage(corpus, queries, qrels, top_k):
    docs = np.array([embed_text(d["text"]) for d in corpus])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    values = []
    for q in queries:
        v = np.array(embed_text(q["text"]))
        sims = docs @ (v / np.linalg.norm(v))
        top = np.argsort(-sims, kind="stable")[:top_k]
        positives = [i for i, d in enumerate(corpus) if qrels[q["id"]].get(d["id"])]
        values.append(compute_all_metrics(list(top), positives, ks=(10,)))
    return {k: float(np.mean([v[k] for v in values])) for k in values[0]}


def test_http_embedder_maps_vectors_back_by_index(embed_server):
    url, calls = embed_server
    texts = [f"apple {i} fruit" for i in range(7)]
    vecs = HTTPEmbedder(url, batch_size=3, max_concurrency=2).embed(texts)
    assert vecs.shape == (7, DIM)
    np.testing.assert_allclose(vecs, np.array([embed_text(t) for t in texts]))
    assert sorted(calls) == [1, 3, 3]


def test_two_stage_first_stage_and_oracle_rerank(embed_server):
    url, _ = embed_server
    task, corpus, queries, qrels = retrieval_task()
    text_topic = {d["text"]: d["id"].split("-")[0][1:] for d in corpus}
    query_topic = {q["text"]: q["id"][1:] for q in queries}

    def oracle(query, docs):
        return [1.0 if text_topic[d] == query_topic[query] else 0.0 for d in docs]

    top_k = 8
    [result] = run_two_stage_eval(oracle, [task], HTTPEmbedder(url), top_k=top_k, name="oracle")
    expected = _expected_first_stage(corpus, queries, qrels, top_k)
    assert result.main_metric == "ndcg_at_10" and result.n_queries == 6
    assert result.first_stage["ndcg_at_10"] == pytest.approx(expected["ndcg@10"], abs=1e-5)
    assert result.first_stage["recall_at_10"] == pytest.approx(expected["r@10"], abs=1e-5)
    assert result.first_stage["ndcg_at_10"] < 1.0  # the bag of words is not perfect
    # The oracle puts every relevant candidate first: the best nDCG@10 those candidates allow.
    recall_bound = _oracle_ndcg(corpus, queries, qrels, top_k)
    assert result.reranked["ndcg_at_10"] == pytest.approx(recall_bound, abs=1e-5)
    assert result.gain > 0
    # Reranking cannot change which documents are in the top-k, only their order.
    assert result.reranked["recall_at_10"] == pytest.approx(result.first_stage["recall_at_10"], abs=1e-5)


def _oracle_ndcg(corpus, queries, qrels, top_k):
    docs = np.array([embed_text(d["text"]) for d in corpus])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    values = []
    for q in queries:
        v = np.array(embed_text(q["text"]))
        top = list(np.argsort(-(docs @ (v / np.linalg.norm(v))), kind="stable")[:top_k])
        positives = [i for i, d in enumerate(corpus) if qrels[q["id"]].get(d["id"])]
        ranked = sorted(top, key=lambda i: i not in positives)  # relevant first
        values.append(compute_all_metrics(ranked, positives, ks=(10,))["ndcg@10"])
    return float(np.mean(values))


def test_bad_embedding_endpoint_is_named(embed_server):
    from rerankctl.serve.runner import BackgroundServer

    app = FastAPI()

    @app.post("/v1/embeddings")
    async def broken():
        return {"vectors": []}

    with BackgroundServer(app) as srv:
        with pytest.raises(EmbeddingEndpointError, match=srv.url.replace(".", r"\.")):
            HTTPEmbedder(srv.url).embed(["a"])


@pytest.mark.parametrize("baseline", [False, True], ids=["", "baseline"])
def test_cli_two_stage_on_mteb_mock_retrieval(embed_server, tmp_path, capsys, baseline):
    from rerankctl.cli.main import main
    from rerankctl.serve.runner import BackgroundServer

    url, _ = embed_server
    rerank = FastAPI()

    @rerank.post("/v1/rerank")
    async def by_length(request: Request):
        body = await request.json()
        return {
            "results": [
                {"index": i, "relevance_score": float(len(d))} for i, d in enumerate(body["documents"])
            ]
        }

    with BackgroundServer(rerank) as srv:
        try:
            main(["eval", "--endpoints", srv.url, "--two-stage", "--embedding-endpoint", url, "--top-k", "2",
                  "--datasets", "MockRetrievalTask", "--output", str(tmp_path), "--json"]
                 + ["--baseline"] * baseline)  # fmt: skip
        except SystemExit as exc:
            assert exc.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    if baseline:  # the embedding ranking is a column of its own, first, and the reranker's delta is its gain
        first, row = report["results"]
        assert report["models"] == ["first-stage", srv.url] and first["model"] == "first-stage"
        assert first["main_score"] == pytest.approx(row["extra"]["first_stage_main_score"])
        assert row["extra"]["delta"] == pytest.approx(row["extra"]["gain"])
    else:
        [row] = report["results"]
    assert row["dataset"] == "MockRetrievalTask (top-2)" and row["kind"] == "two_stage"
    # Both mock documents are candidates (top-2 of 2), so the order alone decides: by length,
    # the same order as MockRerankingTask's, nDCG@10 = (1 + 1/log2 3) / 2 = 0.81546.
    assert row["main_score"] == pytest.approx(0.81546, abs=1e-5)
    assert row["extra"]["gain"] == pytest.approx(row["main_score"] - row["extra"]["first_stage_main_score"])


@pytest.fixture(scope="module")
def tiny_sentence_transformer(tmp_path_factory):
    """A tiny random BERT + mean pooling saved as a sentence-transformers model, built offline."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("st")
    words = sorted({w for t in TOPICS for w in t.split()} | {f"note{j}" for j in range(5)})
    (root / "bert").mkdir()
    (root / "bert" / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
    )
    BertTokenizerFast(vocab_file=str(root / "bert" / "vocab.txt")).save_pretrained(root / "bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)  # fmt: skip
    BertModel(config).save_pretrained(root / "bert")
    model = SentenceTransformer(modules=[models.Transformer(str(root / "bert")), models.Pooling(32, "mean")])
    model.save(str(root / "st"))
    return str(root / "st")


def test_two_stage_with_a_local_sentence_transformers_model(tiny_sentence_transformer):
    from sentence_transformers import SentenceTransformer

    from rerankctl.eval.runner import EvalOptions, build_embedder

    embedder = build_embedder(
        EvalOptions(models=["m"], two_stage=True, embedding_model=tiny_sentence_transformer)
    )
    reference = SentenceTransformer(tiny_sentence_transformer, device="cpu")
    texts = ["apple fruit", "python code snake"]
    np.testing.assert_allclose(embedder.embed(texts), reference.encode(texts), atol=1e-6)

    task, corpus, queries, qrels = retrieval_task()
    [result] = run_two_stage_eval(lambda q, docs: [0.0] * len(docs), [task], embedder, top_k=10, name="flat")
    # Our own first stage from the same vectors: rank by cosine, top 10, nDCG@10 with our metrics.
    docs = reference.encode([d["text"] for d in corpus])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    expected = []
    for q in queries:
        v = reference.encode([q["text"]])[0]
        top = list(np.argsort(-(docs @ (v / np.linalg.norm(v))), kind="stable")[:10])
        positives = [i for i, d in enumerate(corpus) if qrels[q["id"]].get(d["id"])]
        expected.append(compute_all_metrics(top, positives, ks=(10,))["ndcg@10"])
    assert result.first_stage["ndcg_at_10"] == pytest.approx(float(np.mean(expected)), abs=1e-5)
    assert result.embedder == tiny_sentence_transformer
