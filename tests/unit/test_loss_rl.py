"""RL pieces: advantages, rewards, policy losses, DPO, KL estimators (hand values and properties)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rerankctl.eval.metrics import ndcg_at_k, rank_by_scores, recall_at_k
from rerankctl.losses import (
    compute_doc_level_advantages,
    compute_doc_level_rewards,
    dapo_dynamic_sampling_mask,
    dapo_loss,
    dpo_loss,
    dr_grpo_loss,
    grpo_loss,
    kl_penalty,
    reinforce_loss,
)

# ----------------------------------------------------------------------------- advantages


def test_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.5, 3.0, 3.0, 0.0])
    g = torch.tensor([7, 7, 7, 2, 2, 9])
    mean0 = 0.5
    std0 = math.sqrt(((0.5) ** 2 + (0.5) ** 2 + 0.0) / 2)  # unbiased
    got = compute_doc_level_advantages(r, g, scale="group", eps=1e-6)
    want = [0.5 / (std0 + 1e-6), -0.5 / (std0 + 1e-6), 0.0, 0.0, 0.0, 0.0]
    assert got.tolist() == pytest.approx(want, abs=1e-6)
    assert compute_doc_level_advantages(r, g, scale="none").tolist() == pytest.approx(
        [1.0 - mean0, -mean0, 0.0, 0.0, 0.0, 0.0]
    )
    batch_std = torch.tensor([1.0, 0.0, 0.5, 3.0, 3.0, 0.0], dtype=torch.float64).std().item()
    got_b = compute_doc_level_advantages(r, g, scale="batch", eps=0.0)
    assert got_b.tolist() == pytest.approx([0.5 / batch_std, -0.5 / batch_std, 0, 0, 0, 0], abs=1e-6)


def test_advantages_respect_mask_and_shape():
    r = torch.tensor([[1.0, 0.0, float("nan")], [2.0, 4.0, 0.0]])
    g = torch.tensor([[0, 0, 0], [1, 1, 1]])
    m = torch.tensor([[True, True, False], [True, True, True]])
    got = compute_doc_level_advantages(r, g, scale="none", mask=m)
    assert got.shape == (2, 3)
    assert got.flatten().tolist() == pytest.approx([0.5, -0.5, 0.0, 0.0, 2.0, -2.0])


@settings(max_examples=60, deadline=None)
@given(
    rewards=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40),
    n_groups=st.integers(1, 6),
    scale=st.sampled_from(["group", "batch", "none"]),
    seed=st.integers(0, 1000),
)
def test_advantages_sum_to_zero_within_each_group(rewards, n_groups, scale, seed):
    r = torch.tensor(rewards, dtype=torch.float64)
    g = torch.randint(0, n_groups, (len(rewards),), generator=torch.Generator().manual_seed(seed)) * 3 + 11
    adv = compute_doc_level_advantages(r, g, scale=scale)
    for gid in g.unique():
        assert adv[g == gid].sum().item() == pytest.approx(0.0, abs=1e-6)


def test_dynamic_sampling_mask_drops_constant_groups():
    r = torch.tensor([1.0, 1.0, 0.2, 0.3, 0.0, 5.0])
    g = torch.tensor([4, 4, 1, 1, 8, 9])  # group 8 and 9 are singletons (constant)
    assert dapo_dynamic_sampling_mask(r, g).tolist() == [False, False, True, True, False, False]
    assert dapo_dynamic_sampling_mask(r, g, atol=0.5).tolist() == [False] * 6


# ----------------------------------------------------------------------------- rewards


def test_rank_based_rewards_are_per_document_auc():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]])
    r = compute_doc_level_rewards(scores, labels, "rank_based")
    # pos0 beats all 3 negatives; pos2 beats 2 of 3; neg1 is above pos2 (1 of 2 right), ...
    assert r.tolist()[0] == pytest.approx([1.0, 0.5, 2 / 3, 1.0, 1.0])
    auc = 5 / 6  # 5 of the 6 (pos, neg) pairs are ordered right
    assert r[0, [0, 2]].mean().item() == pytest.approx(auc)
    assert r[0, [1, 3, 4]].mean().item() == pytest.approx(auc)


def test_ndcg_and_recall_rewards_sum_to_the_metric():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 8, generator=g)
    labels = torch.randint(0, 3, (6, 8), generator=g).float()
    labels[:, 0] = 2.0
    nd = compute_doc_level_rewards(scores, labels, "ndcg_based")
    rc = compute_doc_level_rewards(scores, labels, "recall_based")
    rc3 = compute_doc_level_rewards(scores, labels, "recall_based", k=3)
    for q in range(6):
        ranking = rank_by_scores(scores[q].numpy())
        grades = labels[q].tolist()
        positives = [i for i, v in enumerate(grades) if v > 0]
        assert nd[q].sum().item() == pytest.approx(ndcg_at_k(ranking, None, 8, relevance=grades), abs=1e-5)
        assert rc[q].sum().item() == pytest.approx(recall_at_k(ranking, positives, len(positives)), abs=1e-6)
        assert rc3[q].sum().item() == pytest.approx(recall_at_k(ranking, positives, 3), abs=1e-6)
        assert torch.all(nd[q][labels[q] == 0] == 0)


def test_rewards_are_zero_at_padding_and_without_relevant_documents():
    scores = torch.tensor([[0.1, 0.5, 9.0], [1.0, 2.0, 3.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    for kind in ("rank_based", "ndcg_based", "recall_based"):
        r = compute_doc_level_rewards(scores, labels, kind, mask=mask)
        assert r[0, 2] == 0 and torch.all(r[1] == 0), kind
    assert compute_doc_level_rewards(scores, labels, "rank_based", mask=mask)[0, :2].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="reward_type"):
        compute_doc_level_rewards(scores, labels, "bogus")


# ----------------------------------------------------------------------------- policy losses


def test_grpo_on_policy_is_minus_mean_advantage_and_gives_reinforce_gradient():
    logp = torch.log(torch.tensor([0.3, 0.6, 0.9])).requires_grad_(True)
    adv = torch.tensor([1.0, -0.5, 2.0])
    loss, stats = grpo_loss(logp, logp.detach(), adv)
    loss.backward()
    assert loss.item() == pytest.approx(-adv.mean().item())
    assert logp.grad.tolist() == pytest.approx((-adv / 3).tolist())
    lp2 = logp.detach().clone().requires_grad_(True)
    reinforce_loss(lp2, adv)[0].backward()
    assert torch.allclose(lp2.grad, logp.grad)
    assert stats["clip_fraction"] == 0.0 and stats["ratio_mean"] == pytest.approx(1.0)


def test_grpo_clipping_by_hand():
    old = torch.zeros(4)
    ratio = torch.tensor([1.5, 0.5, 1.5, 0.5])
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    logp = torch.log(ratio).requires_grad_(True)
    loss, stats = grpo_loss(logp, old, adv, clip_eps=0.2)
    # doc0: min(1.5, 1.2) = 1.2 (clipped); doc1: min(-0.5, -0.8) = -0.8 (clipped);
    # doc2: min(-1.5, -1.2) = -1.5; doc3: min(0.5, 0.8) = 0.5
    assert loss.item() == pytest.approx(-(1.2 - 0.8 - 1.5 + 0.5) / 4)
    loss.backward()
    assert logp.grad[0] == 0 and logp.grad[1] == 0  # clipped: no gradient
    assert logp.grad[2].item() == pytest.approx(1.5 / 4) and logp.grad[3].item() == pytest.approx(-0.5 / 4)
    assert stats["clip_fraction"] == 0.5
    assert stats["clip_high_fraction"] == 0.25 and stats["clip_low_fraction"] == 0.25


def test_dapo_clip_higher_and_token_mean():
    ratio = torch.tensor([1.25, 1.25])
    adv = torch.tensor([1.0, 1.0])
    logp = torch.log(ratio)
    g_loss, g_stats = grpo_loss(logp, torch.zeros(2), adv)
    d_loss, d_stats = dapo_loss(logp, torch.zeros(2), adv)
    assert g_loss.item() == pytest.approx(-1.2) and g_stats["clip_fraction"] == 1.0
    assert d_loss.item() == pytest.approx(-1.25) and d_stats["clip_fraction"] == 0.0
    # token-level vs sequence-level mean over documents of 1 and 3 tokens, advantages 1 and 3
    lp = torch.zeros(2, 3)
    mask = torch.tensor([[True, False, False], [True, True, True]])
    a = torch.tensor([1.0, 3.0])
    tok, _ = dapo_loss(lp, lp, a, mask)
    seq, _ = dapo_loss(lp, lp, a, mask, aggregation="sequence")
    assert tok.item() == pytest.approx(-(1 + 3 * 3) / 4)
    assert seq.item() == pytest.approx(-(1 + 3) / 2)
    grpo, _ = grpo_loss(lp, lp, a, mask)
    assert grpo.item() == pytest.approx(seq.item())


def test_dr_grpo_uses_a_constant_length_normaliser():
    lp = torch.zeros(2, 3)
    mask = torch.tensor([[True, False, False], [True, True, True]])
    a = torch.tensor([1.0, 3.0])
    loss, _ = dr_grpo_loss(lp, lp, a, mask)
    assert loss.item() == pytest.approx(-(1 / 3 + 9 / 3) / 2)
    loss10, _ = dr_grpo_loss(lp, lp, a, mask, max_len=10)
    assert loss10.item() == pytest.approx(-(1 / 10 + 9 / 10) / 2)


def test_padded_tokens_get_zero_gradient_in_policy_losses():
    lp = torch.tensor([[-0.5, float("nan")], [-1.0, -2.0]], requires_grad=True)
    old = torch.tensor([[-0.4, float("inf")], [-1.1, -1.9]])
    mask = torch.tensor([[True, False], [True, True]])
    adv = torch.tensor([1.0, -1.0])
    for fn in (grpo_loss, dapo_loss, dr_grpo_loss):
        lp.grad = None
        loss, stats = fn(lp, old, adv, mask)
        loss.backward()
        assert torch.isfinite(loss) and lp.grad[0, 1] == 0 and torch.isfinite(lp.grad).all(), fn.__name__
    lp.grad = None
    reinforce_loss(lp, adv, mask)[0].backward()
    assert lp.grad[0, 1] == 0


def test_kl_penalty_in_grpo():
    logp = torch.log(torch.tensor([0.5, 0.5]))
    ref = torch.log(torch.tensor([0.25, 0.5]))
    adv = torch.zeros(2)
    loss, stats = grpo_loss(logp, logp, adv, ref_logp=ref, kl_coef=0.1)
    k3 = (0.5 - 1) - math.log(0.5)
    assert loss.item() == pytest.approx(0.1 * k3 / 2)
    assert stats["kl"] == pytest.approx(k3 / 2)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, logp, adv, kl_coef=0.1)


def test_reinforce_by_hand_with_tokens():
    lp = torch.log(torch.tensor([[0.5, 0.5], [0.25, 1.0]]))
    loss, stats = reinforce_loss(lp, torch.tensor([2.0, -1.0]))
    assert loss.item() == pytest.approx(-(2 * math.log(0.25) - math.log(0.25)) / 2)
    assert stats["logp_mean"] == pytest.approx(math.log(0.25))


# ----------------------------------------------------------------------------- KL and DPO


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-8, 0, allow_nan=False), min_size=1, max_size=20))
def test_kl_estimators_vanish_at_the_reference_and_k3_is_nonnegative(values):
    lp = torch.tensor(values, dtype=torch.float64)
    for kind in ("k1", "k2", "k3"):
        assert torch.all(kl_penalty(lp, lp, kind) == 0)
    ref = lp.flip(0)
    assert torch.all(kl_penalty(lp, ref, "k3") >= 0)
    assert torch.all(kl_penalty(lp, ref, "k2") >= 0)


def test_k3_is_an_unbiased_estimate_of_kl():
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    q = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)
    exact = (p * (p / q).log()).sum()
    expected_k3 = (p * kl_penalty(p.log(), q.log(), "k3")).sum()
    expected_k1 = (p * kl_penalty(p.log(), q.log(), "k1")).sum()
    assert expected_k3.item() == pytest.approx(exact.item()) and expected_k1.item() == pytest.approx(
        exact.item()
    )


def test_dpo_at_reference_and_by_hand():
    lp = torch.tensor([-3.0, -7.0, -1.5])
    loss, stats = dpo_loss(lp, lp - 2.0, lp, lp - 2.0, beta=0.5)
    assert loss.item() == pytest.approx(math.log(2))
    ipo, _ = dpo_loss(lp, lp - 2.0, lp, lp - 2.0, beta=0.5, loss_type="ipo")
    assert ipo.item() == pytest.approx(1.0)  # (0 - 1/(2*0.5))^2
    pc, pr = torch.tensor([-1.0]), torch.tensor([-3.0])
    rc, rr = torch.tensor([-2.0]), torch.tensor([-2.5])
    h = (-1.0 + 2.0) - (-3.0 + 2.5)  # 1.5
    loss, stats = dpo_loss(pc, pr, rc, rr, beta=0.1)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.15)))
    assert stats["reward_chosen"] == pytest.approx(0.1) and stats["reward_rejected"] == pytest.approx(-0.05)
    assert stats["reward_accuracy"] == 1.0 and stats["reward_margin"] == pytest.approx(0.15)
    ipo, _ = dpo_loss(pc, pr, rc, rr, beta=0.1, loss_type="ipo")
    assert ipo.item() == pytest.approx((h - 5.0) ** 2)
    smooth, _ = dpo_loss(pc, pr, rc, rr, beta=0.1, label_smoothing=0.2)
    want = 0.8 * math.log1p(math.exp(-0.15)) + 0.2 * math.log1p(math.exp(0.15))
    assert smooth.item() == pytest.approx(want)


def test_dpo_gradient_only_reaches_the_policy():
    pc = torch.tensor([-1.0], requires_grad=True)
    rc = torch.tensor([-2.0], requires_grad=True)
    loss, _ = dpo_loss(pc, torch.tensor([-3.0]), rc, torch.tensor([-2.5]))
    loss.backward()
    assert pc.grad.item() < 0 and rc.grad is None
