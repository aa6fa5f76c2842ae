"""Choosing which documents of a query go into one training group.

A record may hold hundreds of mined documents; a training step sees a group of
``n_docs`` of them with ``n_pos`` positives. Negatives are picked by difficulty
when teacher scores exist (``hard``: the highest-scored negatives, the ones a
model confuses most), uniformly (``random``), or half and half (``mixed``).

Every choice comes from a ``random.Random`` seeded by (seed, epoch, index)
(:func:`rng_for`), so a group is the same in every worker and on every rank,
and changes from epoch to epoch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rerankctl.data.formats import RerankRecord
from rerankctl.errors import UsageError

STRATEGIES = ("hard", "random", "mixed")


def rng_for(seed: int, epoch: int = 0, index: int = 0) -> random.Random:
    """A generator that depends only on (seed, epoch, index), never on process or worker."""
    return random.Random((int(seed) * 1_000_003 + int(epoch)) * 2_147_483_647 + int(index))


def _hardest(candidates: list[int], scores: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """The ``k`` highest-scored candidates; ties are broken at random (not by file order)."""
    keyed = sorted(candidates, key=lambda i: (-scores[i], rng.random()))
    return keyed[:k]


def sample_documents(
    docs: Sequence[str],
    scores: Sequence[float] | None,
    num_pos: int,
    num_neg: int,
    strategy: str = "hard",
    rng: random.Random | None = None,
    labels: Sequence[float] | None = None,
) -> list[int]:
    """Indices into ``docs``: up to ``num_pos`` positives, then up to ``num_neg`` negatives.

    Args:
        docs: the documents (only their count is used; kept for a readable call site).
        scores: teacher scores per document, or None (then ``hard``/``mixed`` act like ``random``).
        num_pos: positives wanted (fewer when the record has fewer).
        num_neg: negatives wanted (fewer when the record has fewer).
        strategy: ``hard`` (highest-scored negatives), ``random`` or ``mixed`` (half hard, half random).
        rng: the random source (``rng_for(seed, epoch, index)``).
        labels: relevance per document (> 0 is positive). Without labels every document is a
            negative candidate (e.g. a record's ``neg`` list) and ``num_pos`` must be 0.
    """
    if strategy not in STRATEGIES:
        raise UsageError(
            f"unknown sampling strategy {strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}"
        )
    rng = rng or random.Random(0)
    if labels is None:
        if num_pos > 0:
            raise ValueError("num_pos > 0 needs labels= to tell positives from negatives")
        labels = [0.0] * len(docs)
    if len(labels) != len(docs) or (scores is not None and len(scores) != len(docs)):
        raise ValueError("docs, labels and scores must have the same length")
    pos = [i for i, label in enumerate(labels) if label > 0]
    neg = [i for i, label in enumerate(labels) if label <= 0]
    # Positives: the most relevant first when graded, random among equals.
    chosen_pos = sorted(pos, key=lambda i: (-labels[i], rng.random()))[: max(0, num_pos)]
    num_neg = min(max(0, num_neg), len(neg))
    if scores is None or strategy == "random":
        chosen_neg = rng.sample(neg, num_neg)
    elif strategy == "hard":
        chosen_neg = _hardest(neg, scores, num_neg, rng)
    else:
        n_hard = (num_neg + 1) // 2
        hard = _hardest(neg, scores, n_hard, rng)
        rest = [i for i in neg if i not in set(hard)]
        chosen_neg = hard + rng.sample(rest, num_neg - n_hard)
    return chosen_pos + chosen_neg


def group_sizes(n_total: int, n_positive: int, n_docs: int, n_pos: int, max_docs: int = 0) -> tuple[int, int]:
    """(positives, negatives) to draw for a record with ``n_total`` docs, ``n_positive`` relevant.

    ``n_docs 0`` takes every document, capped by ``max_docs`` (0 = no cap); ``n_pos 0``
    keeps the record's own positive ratio (at least one positive).
    """
    n_negative = n_total - n_positive
    target = n_total if n_docs <= 0 else min(n_docs, n_total)
    if max_docs > 0:
        target = min(target, max_docs)
    if n_pos <= 0:
        want_pos = round(target * n_positive / n_total) if n_total else 0
        want_pos = min(n_positive, max(1 if n_positive else 0, want_pos))
    else:
        want_pos = min(n_pos, n_positive, target)
    want_neg = min(n_negative, target - want_pos)
    # Too few negatives: fill the group with more positives rather than shrink it.
    want_pos = min(n_positive, max(want_pos, target - want_neg)) if n_pos <= 0 else want_pos
    return want_pos, want_neg


def build_group(
    record: RerankRecord,
    n_docs: int,
    n_pos: int,
    max_docs: int = 0,
    rng: random.Random | None = None,
    strategy: str = "hard",
) -> RerankRecord:
    """The training group for one record: sampled documents, positives first."""
    n_positive = sum(1 for label in record.labels if label > 0)
    want_pos, want_neg = group_sizes(len(record.docs), n_positive, n_docs, n_pos, max_docs)
    # Teacher scores rank negatives for hard/mixed sampling; without them, the seed tiers' hardness.
    difficulty = record.teacher_scores if record.teacher_scores is not None else record.hardness
    picked = sample_documents(
        record.docs, difficulty, want_pos, want_neg, strategy, rng, labels=record.labels
    )
    return RerankRecord(
        query=record.query,
        docs=[record.docs[i] for i in picked],
        labels=[record.labels[i] for i in picked],
        instruction=record.instruction,
        teacher_scores=None if record.teacher_scores is None else [record.teacher_scores[i] for i in picked],
    )
