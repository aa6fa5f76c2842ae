"""Document sampling and group building: worked examples and determinism."""

from __future__ import annotations

import pytest

from rerankctl.data.batching import LengthGroupedBatchSampler, padding_waste
from rerankctl.data.formats import RerankRecord
from rerankctl.data.sampling import build_group, group_sizes, rng_for, sample_documents
from rerankctl.errors import UsageError

DOCS = [f"d{i}" for i in range(10)]
LABELS = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
SCORES = [0.9, 0.8, 0.1, 0.7, 0.2, 0.95, 0.3, 0.6, 0.05, 0.4]  # negatives by score: 5, 3, 7, 9, 6, 4, 2, 8


def test_hard_takes_the_highest_scored_negatives():
    picked = sample_documents(DOCS, SCORES, 1, 3, "hard", rng_for(0), labels=LABELS)
    assert picked[0] in (0, 1)
    assert picked[1:] == [5, 3, 7]


def test_random_ignores_scores_and_stays_within_negatives():
    seen = set()
    for seed in range(30):
        picked = sample_documents(DOCS, SCORES, 2, 3, "random", rng_for(seed), labels=LABELS)
        assert sorted(picked[:2]) == [0, 1] and len(set(picked[2:])) == 3
        assert set(picked[2:]) <= {2, 3, 4, 5, 6, 7, 8, 9}
        seen.update(picked[2:])
    assert seen == {2, 3, 4, 5, 6, 7, 8, 9}  # every negative gets drawn sometimes


def test_mixed_is_half_hardest_half_random():
    for seed in range(10):
        picked = sample_documents(DOCS, SCORES, 1, 4, "mixed", rng_for(seed), labels=LABELS)
        negs = picked[1:]
        assert negs[:2] == [5, 3]
        assert len(set(negs)) == 4 and not {5, 3} & set(negs[2:])


def test_no_scores_falls_back_to_random_and_graded_positives_come_first():
    picked = sample_documents(DOCS, None, 1, 2, "hard", rng_for(1), labels=LABELS)
    assert len(picked) == 3
    graded = sample_documents(["a", "b", "c"], None, 2, 0, "hard", rng_for(0), labels=[1, 3, 0])
    assert graded == [1, 0]
    with pytest.raises(UsageError):
        sample_documents(DOCS, None, 1, 1, "greedy", rng_for(0), labels=LABELS)


@pytest.mark.parametrize(
    ("n_total", "n_positive", "n_docs", "n_pos", "max_docs", "expected"),
    [
        (10, 2, 4, 1, 0, (1, 3)),
        (10, 2, 0, 1, 0, (1, 8)),  # n_docs 0 = all documents; n_pos 1 caps positives, 8 negatives exist
        (10, 2, 0, 0, 0, (2, 8)),  # all, original ratio
        (10, 2, 0, 0, 5, (1, 4)),  # capped by max_docs, ratio kept: round(5 * 0.2) = 1
        (10, 4, 5, 0, 0, (2, 3)),  # ratio 0.4 of 5 = 2
        (10, 1, 8, 0, 0, (1, 7)),
        (3, 1, 8, 1, 0, (1, 2)),  # fewer docs than asked: take what exists
        (5, 4, 4, 0, 0, (3, 1)),  # round(4 * 0.8) = 3
        (4, 3, 4, 1, 0, (1, 1)),  # only 1 negative; n_pos fixed at 1
    ],
)
def test_group_sizes_worked_examples(n_total, n_positive, n_docs, n_pos, max_docs, expected):
    assert group_sizes(n_total, n_positive, n_docs, n_pos, max_docs) == expected


def test_build_group_is_deterministic_per_seed_epoch_index_and_keeps_alignment():
    rec = RerankRecord("q", DOCS, [float(x) for x in LABELS], "inst", SCORES)
    a = build_group(rec, 4, 1, rng=rng_for(3, 0, 7), strategy="random")
    b = build_group(rec, 4, 1, rng=rng_for(3, 0, 7), strategy="random")
    assert a == b
    assert a.labels[0] == 1.0 and a.labels[1:] == [0.0, 0.0, 0.0] and a.instruction == "inst"
    for doc, score in zip(a.docs, a.teacher_scores):
        assert SCORES[DOCS.index(doc)] == score
    groups = {tuple(build_group(rec, 4, 1, rng=rng_for(3, e, 7), strategy="random").docs) for e in range(8)}
    assert len(groups) > 1  # epochs re-sample


def test_length_grouped_sampler_covers_everything_once_and_groups_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    sampler = LengthGroupedBatchSampler(lengths, batch_size=8, mega_batch_mult=16, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # longest batch first
    grouped = padding_waste([[lengths[i] for i in b] for b in batches])
    shuffled = padding_waste([lengths[i : i + 8] for i in range(0, 1000, 8)])
    assert grouped < 0.1 < shuffled
    sampler.set_epoch(1)
    assert list(sampler) != batches


@pytest.mark.parametrize("drop_last", [False, True])
def test_length_grouped_sampler_shards_across_ranks(drop_last):
    lengths = list(range(203))
    shards = [
        list(
            LengthGroupedBatchSampler(
                lengths, 4, mega_batch_mult=5, seed=0, drop_last=drop_last, rank=r, world_size=3
            )
        )
        for r in range(3)
    ]
    flat = [i for shard in shards for b in shard for i in b]
    assert len(flat) == len(set(flat))
    assert len(flat) == (200 if drop_last else 203)
    for r in range(3):
        sampler = LengthGroupedBatchSampler(lengths, 4, 5, 0, drop_last, rank=r, world_size=3)
        assert len(sampler) == len(shards[r])


def test_padding_waste_worked_example():
    # rows 2 and 4 padded to 4: 8 slots, 6 real -> waste 0.25
    assert padding_waste([[2, 4]]) == pytest.approx(0.25)


def test_unlabelled_documents_are_a_negative_pool():
    negs = ["n0", "n1", "n2", "n3"]
    assert sample_documents(negs, [0.1, 0.9, 0.5, 0.3], 0, 2, "hard", rng_for(0)) == [1, 2]
    with pytest.raises(ValueError, match="needs labels"):
        sample_documents(negs, None, 1, 2, "hard", rng_for(0))
