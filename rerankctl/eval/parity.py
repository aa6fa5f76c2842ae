"""`rerankctl eval parity`: do the served scores equal the model's own?

One fixed set of (query, document) pairs, some far past ``max_length``, is scored by the local
model and by each endpoint. Per endpoint the report gives the largest |Δp|, Kendall's τ between
the two score lists, the queries whose top-k order flips, and what explains a difference where it
can tell: the prompt token counts (``/tokenize`` on rerankctl servers) differ on every pair by a
constant (another instruction or template), only on truncated pairs (another ``max_length``), or
the server's ``max_model_len`` differs. The figures go to the run store; past ``threshold`` the
check fails, so it can gate a deployment.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_WORDS = [
    "panda",
    "bear",
    "bamboo",
    "china",
    "forest",
    "rank",
    "search",
    "query",
    "passage",
    "answer",
    "model",
    "index",
    "vector",
    "neural",
    "sparse",
    "dense",
    "chair",
    "table",
    "red",
    "blue",
    "数字",
    "café",
    "{{x}}",
    "<Document>:",
    '"quoted"',
]


def parity_pairs(n_queries: int = 10, docs_per_query: int = 5, seed: int = 17) -> list[tuple[str, str]]:
    """The fixed pair set: ``n_queries`` x ``docs_per_query``; every fifth document is ~600 words
    long, so it is truncated at any usual ``max_length``."""
    rng = random.Random(seed)
    pairs = []
    for q in range(n_queries):
        query = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 6)))
        for d in range(docs_per_query):
            n = 600 if (q * docs_per_query + d) % 5 == 0 else rng.randint(3, 25)
            pairs.append((query, " ".join(rng.choice(_WORDS) for _ in range(n))))
    return pairs


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of two score lists (ties counted as neither concordant nor discordant)."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return 1.0 if denom == 0 else (concordant - discordant) / denom


def top_k_flips(pairs: Sequence[tuple[str, str]], a: Sequence[float], b: Sequence[float], k: int) -> int:
    """Queries whose top-k documents (in order) differ between the two score lists."""
    by_query: dict[str, list[int]] = {}
    for i, (query, _) in enumerate(pairs):
        by_query.setdefault(query, []).append(i)
    flips = 0
    for rows in by_query.values():
        top_a = sorted(rows, key=lambda i: (-a[i], i))[:k]
        top_b = sorted(rows, key=lambda i: (-b[i], i))[:k]
        flips += top_a != top_b
    return flips


@dataclass
class EndpointParity:
    endpoint: str
    max_abs_diff: float
    kendall_tau: float
    top_k_flips: int
    n_pairs: int
    n_queries: int
    causes: list[str] = field(default_factory=list)
    passed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def explain(
    local_tokens: Sequence[int] | None,
    remote_tokens: Sequence[int] | None,
    truncated: Sequence[bool],
    local_max: int,
    remote_max: int | None,
) -> list[str]:
    """What the token counts and limits say about a difference (empty when they say nothing)."""
    causes = []
    if remote_max and remote_max != local_max:
        causes.append(
            f"max length differs: server {remote_max}, local {local_max} (truncation cuts elsewhere)"
        )
    if local_tokens is None or remote_tokens is None:
        causes.append("the endpoint cannot count prompt tokens (no /tokenize): differences cannot be located")
        return causes
    deltas = [r - lo for lo, r in zip(local_tokens, remote_tokens, strict=True)]
    whole = [d for d, t in zip(deltas, truncated, strict=True) if not t]
    cut = [d for d, t in zip(deltas, truncated, strict=True) if t]
    if whole and any(whole) and len(set(whole)) == 1:
        causes.append(
            f"every prompt differs by {whole[0]:+d} tokens: a different instruction or prompt template"
        )
    elif any(whole):
        causes.append("untruncated prompts differ by varying token counts: a different template or tokenizer")
    if cut and any(cut) and not any(whole):
        causes.append("only truncated prompts differ in length: a different max_length or truncation rule")
    return causes


def check_parity(
    local: Any,
    endpoints: Sequence[Any],
    pairs: Sequence[tuple[str, str]] | None = None,
    instruction: str | None = None,
    threshold: float = 1e-5,
    k: int = 3,
) -> list[EndpointParity]:
    """Score ``pairs`` with ``local`` and each endpoint client (``APIReranker``-like)."""
    pairs = list(pairs or parity_pairs())
    queries, docs = [q for q, _ in pairs], [d for _, d in pairs]
    expected = local.score_pairs(queries, docs, instruction)
    local_tokens = list(local.count_tokens(queries, docs, instruction))
    local_max = int(local.max_length)
    truncated = [t >= local_max for t in local_tokens]
    results = []
    for client in endpoints:
        got = client.score_pairs(queries, docs, instruction)
        diff = max(abs(a - b) for a, b in zip(expected, got, strict=True))
        tau = kendall_tau(expected, got)
        flips = top_k_flips(pairs, expected, got, k)
        result = EndpointParity(client.endpoint, diff, tau, flips, len(pairs), len(set(queries)))
        result.passed = diff <= threshold
        if not result.passed:
            try:
                remote_tokens = list(client.count_tokens(queries, docs, instruction))
            except Exception:  # a non-rerankctl server: no /tokenize
                remote_tokens = None
            with contextlib.suppress(Exception):  # reads the server's max_model_len when it has one
                client.test_connection()
            result.causes = explain(
                local_tokens, remote_tokens, truncated, local_max, client.max_length or None
            )
            if not result.causes:
                result.causes = ["same prompt lengths: different weights, dtype or numerics"]
        results.append(result)
    return results


class CrossEncoderScorer:
    """An export scored through sentence-transformers' ``CrossEncoder.predict`` (its chat template,
    its truncation), as a parity "endpoint" named ``crossencoder:DIR``."""

    def __init__(self, path: str, max_length: int | None = None) -> None:
        from sentence_transformers import CrossEncoder

        self.endpoint = f"crossencoder:{path}"
        self.model = CrossEncoder(path, device="cpu", max_length=max_length)
        self.max_length = self.model.max_length

    def score_pairs(self, queries, docs, instruction=None):
        pairs = list(zip(queries, docs, strict=True))
        kwargs = {"prompt": instruction} if instruction else {}
        return [float(x) for x in self.model.predict(pairs, batch_size=16, **kwargs)]

    def count_tokens(self, queries, docs, instruction=None):
        raise NotImplementedError("CrossEncoder does not report prompt tokens")

    def test_connection(self) -> bool:
        return True


class TransformersScorer:
    """An export scored by transformers' ``AutoModelForSequenceClassification`` on rerankctl's prompt
    tokens (``transformers:DIR``)."""

    def __init__(self, path: str, max_length: int) -> None:
        from rerankctl.serve.backends import load_backend

        self.endpoint = f"transformers:{path}"
        self.backend = load_backend(path, max_length=max_length, dtype="fp32")
        self.max_length = self.backend.max_length

    def score_pairs(self, queries, docs, instruction=None):
        return self.backend.score_pairs(queries, docs, instruction)

    def count_tokens(self, queries, docs, instruction=None):
        return self.backend.count_tokens(queries, docs, instruction)

    def test_connection(self) -> bool:
        return True
