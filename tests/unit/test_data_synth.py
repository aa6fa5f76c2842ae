"""Built-in synthetic data: deterministic, valid, disjoint splits, learnable from overlap, not trivial."""

from __future__ import annotations

import math
import random

import pytest

from rerankctl.data.formats import parse_preference, parse_rerank, parse_vl
from rerankctl.data.synth import (
    builtin_rerank_split,
    coarse_view,
    combos,
    is_held_out,
    synth_preference,
    synth_rerank,
    synth_vl,
)
from rerankctl.data.synth_vocab import ATTRIBUTES, SLOTS, VL_COLOURS, VL_RGB, VL_SHAPES


def ndcg_at_10(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:10]
    dcg = sum(labels[i] / math.log2(r + 2) for r, i in enumerate(order))
    ideal = sum(v / math.log2(r + 2) for r, v in enumerate(sorted(labels, reverse=True)[:10]))
    return dcg / ideal


def query_words(lang, query):
    return [
        w
        for slot in SLOTS
        for w in ATTRIBUTES[lang][slot]
        if w in query.split() or (lang == "zh" and w in query)
    ]


def overlap(lang, query, doc):
    words = query_words(lang, query)
    if lang == "en":
        return sum(w in doc.replace(".", " ").replace(",", " ").split() for w in words)
    return sum(w in doc for w in words)


def mean_ndcg(records, scorer):
    total = 0.0
    for rec in records:
        parsed = parse_rerank(rec)
        total += ndcg_at_10([scorer(rec["query"], d) for d in parsed.docs], parsed.labels)
    return total / len(records)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rerank_is_deterministic_valid_and_shaped(lang):
    a = synth_rerank(50, seed=3, lang=lang)
    assert a == synth_rerank(50, seed=3, lang=lang)
    assert a != synth_rerank(50, seed=4, lang=lang)
    for rec in a:
        parsed = parse_rerank(rec)
        assert 1 <= len(rec["pos"]) <= 2 and len(rec["neg"]) == 7
        assert len(set(parsed.docs)) == len(parsed.docs)
        assert len(query_words(lang, rec["query"])) == 4
        assert all(overlap(lang, rec["query"], d) == 4 for d in rec["pos"])
        neg_overlap = sorted(overlap(lang, rec["query"], d) for d in rec["neg"])
        assert (
            max(neg_overlap) == 3 and neg_overlap.count(3) >= 2
        )  # at least two negatives miss one attribute
        assert all(n < 4 for n in neg_overlap)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rerank_is_learnable_from_overlap_but_not_trivial(lang):
    records = synth_rerank(300, seed=0, lang=lang)
    perfect = mean_ndcg(records, lambda q, d: overlap(lang, q, d))
    rng = random.Random(0)
    chance = mean_ndcg(records, lambda q, d: rng.random())
    # Matching only the object word (the easiest signal) is far from enough.
    objects = ATTRIBUTES[lang]["object"]
    object_only = mean_ndcg(
        records, lambda q, d: sum(o in q and o in d for o in objects) + rng.random() * 0.1
    )
    assert perfect == pytest.approx(1.0)
    assert chance < 0.6
    assert chance < object_only < 0.8


def test_docs_are_short_and_vocabulary_small(qwen3_tokenizer):
    records = synth_rerank(200, seed=1)
    docs = [d for r in records for d in r["pos"] + r["neg"]]
    lengths = [len(qwen3_tokenizer.encode(d, add_special_tokens=False)) for d in docs]
    assert 10 <= min(lengths) and max(lengths) <= 30
    vocab = {
        w.strip(".,").lower()
        for r in records
        for text in [r["query"], *r["pos"], *r["neg"]]
        for w in text.split()
    }
    assert len(vocab) < 120


def test_train_and_eval_splits_are_disjoint_by_construction():
    train, held = builtin_rerank_split(seed=0, n_train=2000, n_eval=200)
    assert len(train) == 2000 and len(held) == 200
    assert not {r["query"] for r in train} & {r["query"] for r in held}

    def combo_of(query):
        return tuple(next(i for i, w in enumerate(ATTRIBUTES["en"][s]) if w in query.split()) for s in SLOTS)

    assert all(not is_held_out(combo_of(r["query"])) for r in train)
    assert all(is_held_out(combo_of(r["query"])) for r in held)
    assert len(combos("train")) + len(combos("eval")) == len(combos()) == 1200
    # Every attribute word occurs in both splits.
    for slot in SLOTS:
        for word in ATTRIBUTES["en"][slot]:
            assert any(word in r["query"].split() for r in held) or slot == "object"
    assert builtin_rerank_split(seed=0, n_train=20, n_eval=5) == (
        synth_rerank(20, 0, split="train"),
        synth_rerank(5, 0, split="eval"),
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_preference_chosen_answers_the_asked_attribute(lang):
    records = synth_preference(200, seed=0, lang=lang)
    assert records == synth_preference(200, seed=0, lang=lang)
    wrong_category = 0
    for rec in records:
        parse_preference(rec)
        assert rec["chosen"] != rec["rejected"]
        item_words = [
            w for slot in ("colour", "material", "use") for w in ATTRIBUTES[lang][slot] if w in rec["prompt"]
        ]
        assert any(
            w in rec["chosen"] for w in item_words
        )  # the chosen answer states one of the item's values
        wrong_category += any(w in rec["rejected"] for w in item_words)
    assert 60 < wrong_category < 140  # about half: right item but wrong attribute; the rest: wrong value


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_vl_images_show_what_the_right_response_says(tmp_path, lang):
    from PIL import Image

    records = synth_vl(12, seed=0, image_dir=tmp_path / "img", lang=lang, relative_to=tmp_path)
    for rec in records:
        parsed = parse_vl(rec)
        right = parsed.responses[parsed.chosen_index]
        wrong = parsed.responses[1 - parsed.chosen_index]
        image = Image.open(tmp_path / rec["image"]).convert("RGB")
        assert image.size == (64, 64)
        counts = image.getcolors(64 * 64)
        # The most frequent non-grey colour is the shape's colour.
        shape_rgb = max((c for c in counts if len(set(c[1])) > 1), key=lambda c: c[0])[1]
        colour = VL_COLOURS[lang][VL_RGB.index(shape_rgb)]
        assert colour in right
        assert any(s in right for s in VL_SHAPES[lang])
        assert right != wrong
    assert [r["image"] for r in records] == [f"img/synth-vl-{i:06d}.png" for i in range(12)]


def test_coarse_view_marks_every_document_about_the_object_relevant_and_keeps_the_rest():
    graded = synth_rerank(30, seed=3, split="train", graded=True)
    coarse = coarse_view(graded)
    for g, c in zip(graded, coarse, strict=True):
        assert c["query"] == g["query"] and c["docs"] == g["docs"]
        assert c["labels"] == [1.0 if x > 0 else 0.0 for x in g["labels"]]
        # grades 1-3 collapse to one label: the order among them is what the view hides
        assert {x for x, y in zip(g["labels"], c["labels"], strict=True) if y == 1.0} >= {3.0}
        assert parse_rerank(c).labels == c["labels"]
    assert sum(len({x for x in g["labels"] if x > 0}) > 1 for g in graded) > 20  # several grades merged
