"""The Python API under the original scripts' names, as thin adapters over rerankctl's classes.

Each adapter renames the seed tool's keywords (table: :mod:`rerankctl.config.aliases`) and calls
the canonical constructor; the behaviour is the canonical class's. Light adapters live here;
the trainer adapters (which import transformers) in :mod:`rerankctl.api.trainers`, loaded on
first use.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

from rerankctl.config.aliases import rename_keywords
from rerankctl.data import rerank_dataset as _rerank_dataset
from rerankctl.data import sampling as _sampling
from rerankctl.eval import mteb_runner as _mteb_runner

__all__ = [
    "ContrastiveSFTTrainer",
    "MTEBRerankEvaluator",
    "RLTrainer",
    "RerankDataset",
    "evaluate_reranking_dataset",
    "sample_documents",
    "set_proxy",
]


class RerankDataset(_rerank_dataset.RerankDataset):
    """:class:`rerankctl.data.rerank_dataset.RerankDataset` that also takes ``RerankDataset(path, tokenizer=...)``.

    ``tokenizer`` (with ``max_length``) builds the collator that turns groups into the model's
    input (``dataset.collate_fn``, for ``DataLoader(dataset, collate_fn=dataset.collate_fn)``).
    ``path=``/``data_path=``/``num_docs=``/``num_pos=`` are the seed's names of ``source``/``n_docs``/``n_pos``.
    """

    def __init__(
        self,
        source: Any = None,
        tokenizer: Any = None,
        max_length: int = 512,
        **kwargs: Any,
    ) -> None:
        kwargs = rename_keywords("RerankDataset", kwargs)
        if source is None:
            source = kwargs.pop("source", None)
        if source is None:
            raise TypeError("RerankDataset() needs a data source (a path, records or a datasets.Dataset)")
        super().__init__(source, **kwargs)
        self.tokenizer = tokenizer
        self.collate_fn = None
        if tokenizer is not None:
            from rerankctl.data.collator import RerankCollator

            self.collate_fn = RerankCollator(tokenizer, max_length=max_length)


def sample_documents(
    docs: Sequence[str],
    scores: Sequence[float] | None,
    num_pos: int,
    num_neg: int,
    strategy: str = "hard",
    rng: random.Random | None = None,
    labels: Sequence[float] | None = None,
) -> list[int]:
    """:func:`rerankctl.data.sampling.sample_documents`, callable the seed's way.

    The seed's ``sample_documents(docs, scores, num_pos, num_neg)`` passes relevance as
    ``scores``; without ``labels=`` the scores are taken as the labels (``> 0`` = positive), and
    the hardest negatives are then those scored highest among the non-positive ones.
    """
    if labels is None and num_pos > 0 and scores is not None:
        labels = scores
    return _sampling.sample_documents(
        docs, scores, num_pos, num_neg, strategy=strategy, rng=rng, labels=labels
    )


class MTEBRerankEvaluator(_mteb_runner.MTEBRerankEvaluator):
    """:class:`rerankctl.eval.mteb_runner.MTEBRerankEvaluator` that also takes ``rerank_fn=fn(query, docs)``."""

    def __init__(self, reranker: Any = None, *args: Any, **kwargs: Any) -> None:
        kwargs = rename_keywords("MTEBRerankEvaluator", kwargs)
        if reranker is None:
            reranker = kwargs.pop("reranker", None)
        if reranker is None:
            raise TypeError("MTEBRerankEvaluator() needs a reranker (or rerank_fn=fn(query, docs) -> scores)")
        super().__init__(reranker, *args, **kwargs)


def set_proxy(proxy: str | None, endpoints: Sequence[str] = ()) -> None:
    """Route dataset downloads through ``proxy`` (HTTP(S)_PROXY); loopback and ``endpoints`` bypass it.

    Call it before the first ``mteb``/``datasets`` import, which read the proxy variables then.
    """
    from rerankctl.eval.runner import apply_proxy

    apply_proxy(proxy, list(endpoints))


def evaluate_reranking_dataset(
    reranker: Any,
    data: str | os.PathLike | Sequence[Any],
    *,
    batch_size: int = 32,
    instruction: str | None = None,
    max_samples: int | None = None,
    ks: Sequence[int] = (1, 5, 10),
    name: str | None = None,
) -> dict[str, float]:
    """Score a rerank-format file (or records) with ``reranker`` and return the averaged metrics.

    ``reranker``: a :class:`Qwen3Reranker`, an :class:`APIReranker` or ``fn(query, docs) -> scores``.
    The dict has ``mrr``, ``map``, ``ndcg@k``, ... as :func:`rerankctl.eval.local.evaluate_local` computes them.
    """
    from rerankctl.eval.local import evaluate_local

    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    result = evaluate_local(
        reranker,
        data,
        batch_size=batch_size,
        instruction=instruction,
        max_samples=max_samples,
        ks=ks,
        name=name,
    )
    return dict(result.metrics)


def __getattr__(name: str) -> Any:
    if name in ("ContrastiveSFTTrainer", "RLTrainer"):
        from rerankctl.api import trainers

        return getattr(trainers, name)
    raise AttributeError(f"module 'rerankctl.api' has no attribute {name!r}")
