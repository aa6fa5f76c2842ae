"""Retrieval metrics for one query (numpy), following the TREC definitions.

A query's result is a ``ranking``: document indices, best first (what a reranker returns).
Relevance comes as ``positive_indices`` (binary) and/or ``relevance`` (graded: a sequence
indexed by document, or a ``{doc: grade}`` dict; grade > 0 means relevant). Documents that
are relevant but absent from the ranking still count as relevant ("missing" documents).

Definitions (``rel_i`` = 1 if the document at rank ``i`` is relevant; ``R`` = number of
relevant documents, or ``num_relevant`` when the caller knows more exist than were judged
in the candidate list):

* ``P@k = (Σ_{i≤k} rel_i) / k``: divided by ``k`` even if fewer than ``k`` were ranked
  (trec_eval ``P_k``).
* ``R@k = (Σ_{i≤k} rel_i) / R``.
* ``hit@k = 1 if Σ_{i≤k} rel_i > 0``.
* ``RR = 1 / (rank of the first relevant document)``, 0 if none is ranked; ``mrr`` of one
  query is its RR (``k`` cuts the ranking first, as MRR@10).
* ``AP = (1/R) Σ_i rel_i · P@i``: relevant documents never retrieved contribute 0 but still
  count in ``R`` (trec_eval ``map``). 0 when ``R = 0``.
* ``NDCG@k = DCG@k / IDCG@k`` with ``DCG@k = Σ_{i≤k} gain(g_i) / log2(i + 1)``. The default
  gain is exponential, ``2^g − 1`` (Burges et al. 2005; what most learning-to-rank and MTEB
  code uses); ``gain="linear"`` uses ``g`` itself, which is trec_eval's ``ndcg_cut``. With
  binary relevance the two agree. IDCG sorts *all* judged grades (including missing
  documents). 0 when IDCG = 0.

Queries without any relevant document get 0 for every metric (trec_eval's convention);
:func:`rerankctl.eval.metrics_batch.compute_all_metrics_batch` leaves them out of its means.

Ties: these functions take a ranking, so ties were already broken. :func:`rank_by_scores`
breaks them deterministically by original index (stable sort on ``-score``), the rule the
batch metrics use too.

Example::

    >>> from rerankctl.eval.metrics import compute_all_metrics, rank_by_scores
    >>> ranking = rank_by_scores([0.2, 0.9, 0.4, 0.9])      # ties keep index order
    >>> ranking.tolist()
    [1, 3, 2, 0]
    >>> m = compute_all_metrics(ranking, positive_indices=[2, 0], ks=(1, 3))
    >>> m["mrr"], round(m["map"], 4), m["p@3"], m["r@3"], m["hit@1"]
    (0.3333333333333333, 0.4167, 0.3333333333333333, 0.5, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

GAINS = ("exponential", "linear")


def rank_by_scores(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Document indices ordered by descending score; equal scores keep index order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _ranking(ranking: Iterable[int], k: int | None = None) -> np.ndarray:
    arr = np.asarray(list(ranking) if not isinstance(ranking, np.ndarray) else ranking, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"ranking must be one-dimensional, got shape {arr.shape}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError("ranking lists a document more than once")
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        arr = arr[:k]
    return arr


def _grades(relevance: Mapping[int, float] | Sequence[float] | np.ndarray) -> dict[int, float]:
    if isinstance(relevance, Mapping):
        return {int(d): float(g) for d, g in relevance.items()}
    return {i: float(g) for i, g in enumerate(np.asarray(relevance, dtype=np.float64).tolist())}


def _positives(
    positive_indices: Iterable[int] | None, relevance: Mapping[int, float] | Sequence[float] | None
) -> set[int]:
    if positive_indices is not None:
        return {int(i) for i in positive_indices}
    if relevance is None:
        raise ValueError("give positive_indices or relevance")
    return {d for d, g in _grades(relevance).items() if g > 0}


def _hits(ranking: np.ndarray, positives: set[int]) -> np.ndarray:
    return np.fromiter((int(d) in positives for d in ranking), dtype=bool, count=len(ranking))


def mrr(ranking: Iterable[int], positive_indices: Iterable[int], k: int | None = None) -> float:
    """Reciprocal rank of the first relevant document within the top ``k`` (0 if none)."""
    hits = _hits(_ranking(ranking, k), _positives(positive_indices, None))
    return float(1.0 / (np.argmax(hits) + 1)) if hits.any() else 0.0


def average_precision(
    ranking: Iterable[int], positive_indices: Iterable[int], num_relevant: int | None = None
) -> float:
    """Average precision, divided by all relevant documents (``num_relevant`` if given)."""
    positives = _positives(positive_indices, None)
    hits = _hits(_ranking(ranking), positives)
    total = len(positives) if num_relevant is None else int(num_relevant)
    if total <= 0:
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / total)


def precision_at_k(ranking: Iterable[int], positive_indices: Iterable[int], k: int) -> float:
    """Relevant documents in the top ``k``, divided by ``k``."""
    hits = _hits(_ranking(ranking, k), _positives(positive_indices, None))
    return float(hits.sum() / k)


def recall_at_k(
    ranking: Iterable[int], positive_indices: Iterable[int], k: int, num_relevant: int | None = None
) -> float:
    """Relevant documents in the top ``k``, divided by all relevant ones (0 if none)."""
    positives = _positives(positive_indices, None)
    total = len(positives) if num_relevant is None else int(num_relevant)
    if total <= 0:
        return 0.0
    return float(_hits(_ranking(ranking, k), positives).sum() / total)


def hit_rate(ranking: Iterable[int], positive_indices: Iterable[int], k: int) -> float:
    """1.0 if any relevant document is in the top ``k``, else 0.0."""
    return float(_hits(_ranking(ranking, k), _positives(positive_indices, None)).any())


def _gain(grades: np.ndarray, gain: str) -> np.ndarray:
    g = np.clip(grades, 0.0, None)
    if gain == "exponential":
        return np.power(2.0, g) - 1.0
    if gain == "linear":
        return g
    raise ValueError(f"gain must be one of {', '.join(GAINS)}, got {gain!r}")


def ndcg_at_k(
    ranking: Iterable[int],
    positive_indices: Iterable[int] | None = None,
    k: int = 10,
    relevance: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
    gain: str = "exponential",
) -> float:
    """NDCG@k with graded gains (``relevance``) or binary ones (``positive_indices``)."""
    ranked = _ranking(ranking, k)
    if relevance is not None:
        grades = _grades(relevance)
    else:
        grades = {d: 1.0 for d in _positives(positive_indices, None)}
    got = _gain(np.array([grades.get(int(d), 0.0) for d in ranked], dtype=np.float64), gain)
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = float((got * discount[: len(got)]).sum())
    ideal = np.sort(_gain(np.array(list(grades.values()), dtype=np.float64), gain))[::-1][:k]
    idcg = float((ideal * discount[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def compute_all_metrics(
    ranking: Iterable[int],
    positive_indices: Iterable[int] | None,
    ks: Sequence[int] = (1, 5, 10),
    relevance: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
    num_relevant: int | None = None,
    gain: str = "exponential",
) -> dict[str, float]:
    """Every metric of one query: ``mrr``, ``map``, and ``ndcg@k``, ``p@k``, ``r@k``, ``hit@k``.

    Binary metrics use ``positive_indices`` (or ``relevance > 0`` when it is None); NDCG uses
    ``relevance`` when given.
    """
    ranked = _ranking(ranking)
    positives = _positives(positive_indices, relevance)
    out = {
        "mrr": mrr(ranked, positives),
        "map": average_precision(ranked, positives, num_relevant=num_relevant),
    }
    for k in ks:
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, positives, k, relevance=relevance, gain=gain)
        out[f"p@{k}"] = precision_at_k(ranked, positives, k)
        out[f"r@{k}"] = recall_at_k(ranked, positives, k, num_relevant=num_relevant)
        out[f"hit@{k}"] = hit_rate(ranked, positives, k)
    return out


def kendall_tau(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b between two paired samples (ties handled; NaN if undefined).

    ``τ_b = (n_c − n_d) / sqrt((n_0 − n_x)(n_0 − n_y))`` with ``n_0 = n(n−1)/2``, ``n_x``/``n_y``
    the pairs tied in ``x``/``y``. Equals ``scipy.stats.kendalltau`` (its default, tau-b).
    Exact O(n²) pair counting, done in row blocks of bounded memory (~4M pairs a block).
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"kendall_tau: x and y lengths differ ({a.size} vs {b.size})")
    n = a.size
    if n < 2:
        return math.nan
    block = max(1, 4_000_000 // n)
    signed = tied_x = tied_y = 0
    cols = np.arange(n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        upper = cols[None, :] > np.arange(start, stop)[:, None]  # each pair once (j > i)
        dx = np.sign(a[start:stop, None] - a[None, :])
        dy = np.sign(b[start:stop, None] - b[None, :])
        signed += int((dx * dy)[upper].sum())
        tied_x += int(((dx == 0) & upper).sum())
        tied_y += int(((dy == 0) & upper).sum())
    n0 = n * (n - 1) // 2
    denom = math.sqrt(float(n0 - tied_x) * float(n0 - tied_y))
    return signed / denom if denom > 0 else math.nan


def __getattr__(name: str):
    # The batch metrics live in metrics_batch (which imports this module); resolve them
    # lazily so ``from rerankctl.eval.metrics import compute_all_metrics_batch`` works too.
    if name in ("compute_all_metrics_batch", "compute_all_metrics_batch_per_query"):
        from rerankctl.eval import metrics_batch

        return getattr(metrics_batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
