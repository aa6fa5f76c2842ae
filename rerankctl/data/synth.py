"""Built-in synthetic data sets: deterministic, bilingual, learnable but not trivial.

* **rerank**: a query asks for four attributes ("a red wooden chair for outdoor use");
  positives repeat all four, hard negatives miss exactly one, medium negatives miss two,
  easy negatives are another object. Ranking by "how many asked attributes does the
  document repeat" is the rule a model has to learn, from token overlap alone.
  With ``graded=True`` the same records come as ``docs``/``labels`` with graded relevance: 3 for
  a positive (all four attributes), 2 for a hard negative (three), 1 for a medium one (two), 0
  for another object. The binary view (``graded=False``, same seed) holds the same documents with
  only the grade-3 ones relevant. :func:`coarse_view` is the other binary view: every document about
  the asked object (grades 1-3) relevant, as coarse topical or click labels would mark them; a
  model trained on it is never told that more matching attributes rank higher, which graded
  NDCG rewards and a graded RL reward can teach.
* **preference**: a question about one attribute of an item; the chosen answer gives that
  attribute's value, the rejected one gives another attribute, or a wrong value.
* **vl**: see :mod:`rerankctl.data.synth_vl`.

Train and held-out data are disjoint by construction: an attribute combination
(colour, material, object, use) belongs to the held-out split iff
``(colour + 2*material + 3*object + 4*use) % 5 == 0`` (indices into the word lists),
so no held-out query is ever seen in training, while every single word is.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from rerankctl.data.synth_vl import synth_vl
from rerankctl.data.synth_vocab import (
    ATTRIBUTES,
    DOC_TEMPLATES,
    FILLERS,
    ITEM_TEMPLATES,
    PREF_ANSWERS,
    PREF_PROMPTS,
    QUERY_TEMPLATES,
    SLOTS,
)
from rerankctl.errors import UsageError

LANGS = ("en", "zh")
SPLITS = ("all", "train", "eval")
__all__ = ["synth_rerank", "synth_preference", "synth_vl", "builtin_rerank_split", "is_held_out", "combos"]

Combo = tuple[int, int, int, int]


def _check(lang: str, split: str) -> None:
    if lang not in LANGS:
        raise UsageError(f"unknown language {lang!r}", hint=f"use one of: {', '.join(LANGS)}")
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}", hint=f"use one of: {', '.join(SPLITS)}")


def is_held_out(combo: Combo) -> bool:
    """Whether an attribute combination belongs to the held-out (eval) split."""
    c, m, o, u = combo
    return (c + 2 * m + 3 * o + 4 * u) % 5 == 0


def combos(split: str = "all") -> list[Combo]:
    """Every attribute combination of a split, in a fixed order."""
    sizes = [len(ATTRIBUTES["en"][slot]) for slot in SLOTS]
    every = list(itertools.product(*(range(n) for n in sizes)))
    if split == "all":
        return every
    return [c for c in every if is_held_out(c) == (split == "eval")]


def _words(lang: str, combo: Combo) -> dict[str, str]:
    return {slot: ATTRIBUTES[lang][slot][i] for slot, i in zip(SLOTS, combo, strict=False)}


def _rng(kind: str, lang: str, split: str, seed: int) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`: stable across runs and platforms.
    return random.Random(f"rerankctl-synth/{kind}/{lang}/{split}/{seed}")


def _combo_stream(rng: random.Random, split: str):
    """Combinations of a split in shuffled order, reshuffled after each full pass."""
    pool = combos(split)
    while True:
        rng.shuffle(pool)
        yield from pool


def _mutate(rng: random.Random, combo: Combo, slots: list[int]) -> Combo:
    out = list(combo)
    for slot in slots:
        n = len(ATTRIBUTES["en"][SLOTS[slot]])
        out[slot] = (combo[slot] + rng.randrange(1, n)) % n
    return tuple(out)  # type: ignore[return-value]


def _doc(rng: random.Random, lang: str, combo: Combo, template: int | None = None) -> str:
    templates = DOC_TEMPLATES[lang]
    text = templates[rng.randrange(len(templates)) if template is None else template]
    return text.format(**_words(lang, combo), filler=rng.choice(FILLERS[lang])).strip()


def _teacher(rng: random.Random, query: Combo, doc: Combo) -> float:
    """A noisy teacher: the fraction of attributes matched, plus a little noise, in [0, 1]."""
    matched = sum(a == b for a, b in zip(query, doc, strict=False)) / len(SLOTS)
    return round(min(1.0, max(0.0, matched + rng.gauss(0.0, 0.05))), 4)


def _rerank_record(rng: random.Random, lang: str, combo: Combo, graded: bool = False) -> dict[str, Any]:
    query = rng.choice(QUERY_TEMPLATES[lang]).format(**_words(lang, combo))
    n_pos = 2 if rng.random() < 0.3 else 1
    pos_templates = rng.sample(range(len(DOC_TEMPLATES[lang])), n_pos)
    pos = [_doc(rng, lang, combo, t) for t in pos_templates]
    negatives: list[Combo] = []
    plan = [1, 1, 2, 2, None, None, None]  # attributes changed: 1 = hard, 2 = medium, None = other object
    while len(negatives) < len(plan):
        changes = plan[len(negatives)]
        if changes is None:
            neg = _mutate(rng, combo, [2] + [s for s in (0, 1, 3) if rng.random() < 0.5])
        else:
            neg = _mutate(rng, combo, rng.sample([0, 1, 3], changes))
        if neg not in negatives:
            negatives.append(neg)
    record = {
        "query": query,
        "pos": pos,
        "neg": [_doc(rng, lang, neg) for neg in negatives],
        "pos_scores": [_teacher(rng, combo, combo) for _ in pos],
        "neg_scores": [_teacher(rng, combo, neg) for neg in negatives],
    }
    if not graded:
        return record
    # Grade = attributes shared with the query minus one; another object is 0 whatever else it shares.
    grades = [
        0.0 if neg[2] != combo[2] else float(sum(a == b for a, b in zip(combo, neg, strict=True)) - 1)
        for neg in negatives
    ]
    docs = record["pos"] + record["neg"]
    labels = [3.0] * len(pos) + grades
    # Shuffled (positives first would let a position bias pass for relevance) by a generator of
    # its own, so the main stream, and with it every later record, is the binary view's.
    order = list(range(len(docs)))
    random.Random(f"rerankctl-synth/graded/{query}/{len(docs)}").shuffle(order)
    return {"query": query, "docs": [docs[i] for i in order], "labels": [labels[i] for i in order]}


def synth_rerank(
    n: int, seed: int = 0, lang: str = "en", split: str = "all", graded: bool = False
) -> list[dict[str, Any]]:
    """``n`` rerank records (``query/pos/neg/pos_scores/neg_scores``), 1-2 positives and 7 negatives each.

    ``split="train"`` and ``split="eval"`` draw from disjoint attribute combinations. ``graded``:
    ``query/docs/labels`` records with grades 0-3 (module docstring); the queries and documents
    are those of ``graded=False`` with the same arguments.
    """
    _check(lang, split)
    rng = _rng("rerank", lang, split, seed)
    stream = _combo_stream(rng, split)
    return [_rerank_record(rng, lang, next(stream), graded) for _ in range(n)]


def coarse_view(records: list[dict[str, Any]], min_grade: float = 1.0) -> list[dict[str, Any]]:
    """Binary labels from graded ``docs``/``labels`` records: 1.0 where the grade is >= ``min_grade``.

    >>> coarse_view([{"query": "q", "docs": ["a", "b", "c"], "labels": [3.0, 0.0, 1.0]}])[0]["labels"]
    [1.0, 0.0, 1.0]
    """
    return [{**r, "labels": [1.0 if g >= min_grade else 0.0 for g in r["labels"]]} for r in records]


def builtin_rerank_split(
    seed: int = 0, lang: str = "en", n_train: int = 2000, n_eval: int = 200
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The default data of the ``tiny`` SFT preset: (train records, held-out eval records).

    No eval query's attribute combination occurs in the training records.
    """
    return synth_rerank(n_train, seed, lang, "train"), synth_rerank(n_eval, seed, lang, "eval")


def synth_preference(n: int, seed: int = 0, lang: str = "en", split: str = "all") -> list[dict[str, Any]]:
    """``n`` preference records ``{"prompt", "chosen", "rejected"}``.

    The prompt asks about one attribute of an item; ``chosen`` states that attribute's value;
    ``rejected`` states another attribute (half the time) or a wrong value of the asked one.
    """
    _check(lang, split)
    rng = _rng("preference", lang, split, seed)
    stream = _combo_stream(rng, split)
    asked_slots = list(PREF_PROMPTS[lang])
    out = []
    for _ in range(n):
        combo = next(stream)
        words = _words(lang, combo)
        asked = rng.choice(asked_slots)
        prompt = PREF_PROMPTS[lang][asked].format(item=ITEM_TEMPLATES[lang].format(**words))
        chosen = PREF_ANSWERS[lang][asked].format(value=words[asked])
        if rng.random() < 0.5:
            other = rng.choice([s for s in asked_slots if s != asked])
            rejected = PREF_ANSWERS[lang][other].format(value=words[other])
        else:
            wrong = _words(lang, _mutate(rng, combo, [SLOTS.index(asked)]))
            rejected = PREF_ANSWERS[lang][asked].format(value=wrong[asked])
        out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return out
