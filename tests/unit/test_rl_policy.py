"""The Plackett–Luce ranking policy: exact log-probabilities, sampling, entropy, rewards, DPO pairs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rerankctl.train.rl_policy import (
    choice_entropy,
    pair_logps,
    preference_pairs,
    ranking_logp,
    ranking_rewards,
    sample_rankings,
)


def test_ranking_logp_matches_the_hand_computed_plackett_luce_probability():
    scores = torch.tensor([[2.0, 1.0, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    logp, choice = ranking_logp(scores, mask, torch.tensor([[[0, 1, 2]]]), temperature=1.0)
    e = math.e
    expected = [2 - math.log(e**2 + e + 1), 1 - math.log(e + 1)]  # the last choice is forced
    assert logp.shape == (1, 2) and choice.tolist() == [[True, True]]
    assert logp[0].tolist() == pytest.approx(expected, abs=1e-6)
    # Temperature divides the scores: tau=2 on [2, 1, 0] is tau=1 on [1, 0.5, 0].
    half, _ = ranking_logp(torch.tensor([[1.0, 0.5, 0.0]]), mask, torch.tensor([[[2, 0, 1]]]))
    tau2, _ = ranking_logp(scores, mask, torch.tensor([[[2, 0, 1]]]), temperature=2.0)
    assert torch.allclose(half, tau2)


def test_rankings_of_a_padded_group_form_a_probability_distribution():
    scores = torch.tensor([[0.3, -1.2, 2.0, 99.0]])  # the 99 is padding and must not matter
    mask = torch.tensor([[True, True, True, False]])
    perms = torch.tensor([list(p) + [3] for p in itertools.permutations(range(3))])[None]
    logp, choice = ranking_logp(scores, mask, perms)
    assert choice.sum(1).tolist() == [2] * 6  # n - 1 = 2 real choices per ranking
    total = torch.where(choice, logp, torch.zeros_like(logp)).sum(1).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-6)


def test_sampled_first_positions_follow_the_softmax_of_the_scores():
    gen = torch.Generator().manual_seed(0)
    scores = torch.tensor([[1.0, 0.0, -1.0, 5.0]])
    mask = torch.tensor([[True, True, True, False]])
    rankings = sample_rankings(scores, mask, 20000, temperature=1.0, generator=gen)
    assert (rankings[0, :, 3] == 3).all()  # padding is always last
    freq = torch.bincount(rankings[0, :, 0], minlength=4).float() / 20000
    expected = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0)
    assert torch.allclose(freq[:3], expected, atol=0.015) and freq[3] == 0


def test_entropy_of_equal_scores_is_log_n_factorial_and_of_two_docs_is_binary():
    mask = torch.ones(1, 3, dtype=torch.bool)
    rankings = sample_rankings(torch.zeros(1, 3), mask, 5)
    assert choice_entropy(torch.zeros(1, 3), mask, rankings).tolist() == pytest.approx([math.log(6)] * 5)
    two = torch.tensor([[1.0, 0.0]])
    p = torch.sigmoid(torch.tensor(1.0)).item()
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    ent = choice_entropy(two, torch.ones(1, 2, dtype=torch.bool), torch.tensor([[[0, 1]]]))
    assert ent.item() == pytest.approx(h, abs=1e-6)


def test_ranking_rewards_are_the_metrics_of_the_sampled_ranking():
    labels = torch.tensor([[0.0, 1.0, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    rankings = torch.tensor([[[1, 0, 2], [0, 1, 2], [0, 2, 1]]])  # positive at rank 1, 2, 3
    ndcg = ranking_rewards(rankings, labels, mask, "ndcg_based")
    assert ndcg.tolist() == pytest.approx([1.0, 1 / math.log2(3), 0.5])
    auc = ranking_rewards(rankings, labels, mask, "rank_based")
    assert auc.tolist() == pytest.approx([1.0, 0.5, 0.0])
    recall = ranking_rewards(rankings, labels, mask, "recall_based")
    assert recall.tolist() == [1.0, 0.0, 0.0]


def test_preference_pairs_cover_every_better_worse_pair_and_max_pairs_caps_them():
    labels = torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    g, c, r = preference_pairs(labels, mask)
    pairs = sorted(zip(g.tolist(), c.tolist(), r.tolist()))
    assert pairs == [(0, 0, 1), (0, 0, 2), (1, 0, 1), (1, 0, 2), (1, 0, 3), (1, 1, 2), (1, 1, 3)]
    g, _, _ = preference_pairs(labels, mask, max_pairs=2, generator=torch.Generator().manual_seed(1))
    assert torch.bincount(g).tolist() == [2, 2]


def test_pair_logps_are_the_two_orders_of_a_two_document_plackett_luce():
    scores = torch.tensor([[2.0, 0.5]])
    pairs = (torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    chosen, rejected = pair_logps(scores, pairs)
    assert chosen.exp().item() + rejected.exp().item() == pytest.approx(1.0)
    assert chosen.exp().item() == pytest.approx(torch.sigmoid(torch.tensor(1.5)).item())


def test_rewards_to_go_credit_each_choice_with_what_comes_after_it():
    from rerankctl.train.rl_policy import rewards_to_go

    labels = torch.tensor([[0.0, 1.0, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    rankings = torch.tensor([[[0, 1, 2], [1, 0, 2]]])
    togo = rewards_to_go(rankings, labels, mask, "ndcg_based")
    third = 1 / math.log2(3)
    assert togo.flatten().tolist() == pytest.approx([third, third, 1.0, 0.0])
    # position 0 carries the whole ranking's reward
    assert togo[:, 0].tolist() == pytest.approx(
        ranking_rewards(rankings, labels, mask, "ndcg_based").tolist()
    )
    auc = rewards_to_go(rankings, labels, mask, "rank_based")
    assert auc[:, 0].tolist() == pytest.approx(ranking_rewards(rankings, labels, mask, "rank_based").tolist())
