"""Serving rerankers over HTTP and calling rerank endpoints.

* ``backends`` - the :class:`ScoringBackend` protocol, model-kind detection and ``load_backend``.
* ``seqcls`` / ``vllm_backend`` - sequence-classification and vLLM backends.
* ``batcher`` - dynamic batching of concurrent requests into one scoring thread.
* ``schemas`` / ``app`` / ``metrics`` / ``runner`` - the FastAPI app and how it is run.
* ``client`` / ``cache`` - the async HTTP client (`APIReranker`) and its on-disk score cache.

Nothing here is imported by ``rerankctl --help``; the heavy libraries load inside functions.
"""
