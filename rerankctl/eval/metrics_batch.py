"""Vectorised retrieval metrics over many queries at once (numpy, no Python loop).

Input is a padded score matrix ``scores[Q, N]`` with graded ``relevance[Q, N]`` (> 0 is
relevant) and an optional ``mask[Q, N]`` (True for real candidates). Each row is ranked by
a stable sort on ``-score``, so equal scores keep their original index order, exactly as
:func:`rerankctl.eval.metrics.rank_by_scores`; padding is ranked last and never counts.
Definitions are those of :mod:`rerankctl.eval.metrics` (TREC), and per query the results
equal :func:`rerankctl.eval.metrics.compute_all_metrics` on that query's ranking.

``num_relevant[Q]`` (optional) gives the true number of relevant documents per query when
some are missing from the candidate lists; it changes MAP and recall (not NDCG, whose ideal
ranking only sees the grades given).

The means of :func:`compute_all_metrics_batch` leave out queries without any relevant
document (their metrics are all 0 by definition and would only dilute the mean); pass
``skip_no_relevant=False`` to average over every query.

Cost: one ``argsort`` and one ``sort`` of ``[Q, N]`` plus a few cumulative sums; 10,000
queries × 100 documents take well under a second (see ``bench/losses.py``).

Example::

    >>> import numpy as np
    >>> from rerankctl.eval.metrics_batch import compute_all_metrics_batch
    >>> scores = np.array([[0.2, 0.9, 0.4], [1.0, 0.0, 0.0]])
    >>> relevance = np.array([[1, 0, 0], [0, 0, 2]])
    >>> out = compute_all_metrics_batch(scores, relevance, ks=(1,))
    >>> out["mrr"], out["hit@1"]   # both RR = 1/3: the tie at 0.0 keeps doc 1 before doc 2
    (0.3333333333333333, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rerankctl.eval.metrics import GAINS


def _prepare(scores, relevance, mask):
    s = np.asarray(scores, dtype=np.float64)
    rel = np.asarray(relevance, dtype=np.float64)
    if s.ndim != 2 or rel.shape != s.shape:
        raise ValueError(f"scores and relevance must both be [Q, N]; got {s.shape} and {rel.shape}")
    m = np.ones(s.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != s.shape:
        raise ValueError(f"mask must be [Q, N] = {s.shape}, got {m.shape}")
    return s, np.where(m, rel, 0.0), m


def compute_all_metrics_batch_per_query(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None = None,
    ks: Sequence[int] = (1, 5, 10),
    *,
    num_relevant: np.ndarray | None = None,
    gain: str = "exponential",
) -> dict[str, np.ndarray]:
    """Per-query metrics: ``{"mrr": [Q], "map": [Q], "ndcg@k": [Q], ..., "num_relevant": [Q]}``."""
    if gain not in GAINS:
        raise ValueError(f"gain must be one of {', '.join(GAINS)}, got {gain!r}")
    s, rel, m = _prepare(scores, relevance, mask)
    q, n = s.shape
    order = np.argsort(-np.where(m, s, -np.inf), axis=1, kind="stable")
    rel_sorted = np.take_along_axis(rel, order, axis=1)
    hits = rel_sorted > 0
    cum = np.cumsum(hits, axis=1)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    judged = hits.sum(1)
    total = judged if num_relevant is None else np.asarray(num_relevant, dtype=np.float64)
    denom = np.maximum(total, 1)

    out: dict[str, np.ndarray] = {}
    first = np.argmax(hits, axis=1)
    out["mrr"] = np.where(hits.any(1), 1.0 / (first + 1.0), 0.0)
    out["map"] = np.where(total > 0, (hits * (cum / ranks)).sum(1) / denom, 0.0)

    grades = np.clip(rel_sorted, 0.0, None)
    gains = np.power(2.0, grades) - 1.0 if gain == "exponential" else grades
    ideal = -np.sort(
        -(np.power(2.0, np.clip(rel, 0.0, None)) - 1.0 if gain == "exponential" else np.clip(rel, 0.0, None)),
        axis=1,
    )
    discount = 1.0 / np.log2(ranks + 1.0)
    dcg_cum = np.cumsum(gains * discount, axis=1)
    idcg_cum = np.cumsum(ideal * discount, axis=1)
    for k in ks:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        col = min(k, n) - 1
        found = cum[:, col] if n else np.zeros(q)
        idcg = idcg_cum[:, col]
        out[f"ndcg@{k}"] = np.where(idcg > 0, dcg_cum[:, col] / np.where(idcg > 0, idcg, 1.0), 0.0)
        out[f"p@{k}"] = found / float(k)
        out[f"r@{k}"] = np.where(total > 0, found / denom, 0.0)
        out[f"hit@{k}"] = (found > 0).astype(np.float64)
    out["num_relevant"] = total.astype(np.float64)
    return out


def compute_all_metrics_batch(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None = None,
    ks: Sequence[int] = (1, 5, 10),
    *,
    num_relevant: np.ndarray | None = None,
    gain: str = "exponential",
    skip_no_relevant: bool = True,
) -> dict[str, float]:
    """Mean of every metric over the queries (see module docstring for which queries)."""
    per_query = compute_all_metrics_batch_per_query(
        scores, relevance, mask, ks, num_relevant=num_relevant, gain=gain
    )
    has_relevant = per_query.pop("num_relevant") > 0
    keep = has_relevant if skip_no_relevant else None
    result = {}
    for key, values in per_query.items():
        chosen = values if keep is None else values[keep]
        result[key] = float(chosen.mean()) if chosen.size else 0.0
    return result
