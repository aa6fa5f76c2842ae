"""The relations the loss docstrings state, checked numerically on random padded batches."""

from __future__ import annotations

import pytest
import torch

from rerankctl.losses import (
    bradley_terry_loss,
    ce_loss,
    dpo_loss,
    infonce_loss,
    kl_distill_loss,
    lambda_loss,
    list_mle,
    list_net,
    p_list_mle,
    ranknet_loss,
)


def batch(seed, b=5, n=9, graded=True, one_hot=False):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(b, n, generator=g, dtype=torch.float64) * 2
    if one_hot:
        y = torch.zeros(b, n, dtype=torch.float64)
        y[torch.arange(b), torch.randint(0, 3, (b,), generator=g)] = 1.0
    elif graded:
        y = torch.randint(0, 4, (b, n), generator=g).to(torch.float64)
    else:
        y = (torch.rand(b, n, generator=g) < 0.3).to(torch.float64)
        y[:, 0] = 1.0
    lengths = torch.randint(4, n + 1, (b,), generator=g)
    m = torch.arange(n)[None, :] < lengths[:, None]
    return s, y, m


def grads(fn, s, *args, **kw):
    x = s.clone().requires_grad_(True)
    loss = fn(x, *args, **kw)
    loss.backward()
    return loss.detach(), x.grad


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sigma", [1.0, 0.3])
def test_ranknet_equals_lambdaloss_without_weighting(seed, sigma):
    s, y, m = batch(seed)
    for metric in ("ndcg", "map", "mrr"):
        a, ga = grads(ranknet_loss, s, y, m, sigma=sigma)
        b, gb = grads(lambda_loss, s, y, m, weighting_scheme="none", metric=metric, sigma=sigma)
        assert a.item() == pytest.approx(b.item(), abs=1e-12)
        assert torch.allclose(ga, gb, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [1.0, 0.5, 2.0])
def test_listnet_with_one_hot_labels_equals_single_positive_infonce(seed, tau):
    s, y, m = batch(seed, one_hot=True)
    a, ga = grads(list_net, s, y, m, temperature=tau)
    b, gb = grads(infonce_loss, s, y, m, temperature=tau, mode="single")
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    assert torch.allclose(ga, gb, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_infonce_modes_agree_with_one_positive_and_order_otherwise(seed):
    s, y, m = batch(seed, one_hot=True)
    vals = [infonce_loss(s, y, m, mode=mode).item() for mode in ("single", "positive_set", "per_positive")]
    assert vals[0] == pytest.approx(vals[1], abs=1e-12) and vals[0] == pytest.approx(vals[2], abs=1e-12)
    s, y, m = batch(seed, graded=False)
    y[:, 1] = 1.0  # at least two positives per group
    per_group = [
        (
            infonce_loss(s[i : i + 1], y[i : i + 1], m[i : i + 1], mode="positive_set").item(),
            infonce_loss(s[i : i + 1], y[i : i + 1], m[i : i + 1], mode="per_positive").item(),
        )
        for i in range(s.shape[0])
    ]
    assert all(a <= b + 1e-12 for a, b in per_group)


@pytest.mark.parametrize("seed", range(3))
def test_ce_distribution_equals_listnet_normalize_at_temperature_one(seed):
    s, y, m = batch(seed)
    a, ga = grads(ce_loss, s, y, m)
    b, gb = grads(list_net, s, y, m, temperature=1.0, target="normalize")
    assert a.item() == pytest.approx(b.item(), abs=1e-12) and torch.allclose(ga, gb, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_ce_first_positive_equals_infonce_with_one_positive(seed):
    s, y, m = batch(seed, one_hot=True)
    assert ce_loss(s, y, m, target="first_positive").item() == pytest.approx(
        infonce_loss(s, y, m).item(), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ties", ["breslow", "index"])
def test_uniform_unnormalised_p_list_mle_equals_list_mle(seed, ties):
    s, y, m = batch(seed)
    a, ga = grads(p_list_mle, s, y, m, rank_weights="uniform", normalize=False, ties=ties, temperature=0.7)
    b, gb = grads(list_mle, s, y, m, ties=ties, temperature=0.7)
    assert a.item() == pytest.approx(b.item(), abs=1e-10) and torch.allclose(ga, gb, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_breslow_list_mle_with_binary_labels_is_positives_times_ce(seed):
    s, y, m = batch(seed, graded=False)
    for i in range(s.shape[0]):
        si, yi, mi = s[i : i + 1], y[i : i + 1], m[i : i + 1]
        n_pos = int(((yi > 0) & mi).sum())
        assert list_mle(si, yi, mi).item() == pytest.approx(n_pos * ce_loss(si, yi, mi).item(), abs=1e-10)
    s, y, m = batch(seed, one_hot=True)
    assert list_mle(s, y, m, temperature=0.5).item() == pytest.approx(
        infonce_loss(s, y, m, temperature=0.5).item(), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(3))
def test_kl_distill_gradient_equals_listnet_softmax_on_teacher_logits(seed):
    s, y, m = batch(seed)
    teacher = torch.randn_like(s)
    _, ga = grads(kl_distill_loss, s, y, m, teacher)
    _, gb = grads(list_net, s, teacher, m, target="softmax")
    assert torch.allclose(ga, gb, atol=1e-12)


def test_bradley_terry_equals_ranknet_on_two_document_groups():
    g = torch.Generator().manual_seed(0)
    c, r = (
        torch.randn(16, generator=g, dtype=torch.float64),
        torch.randn(16, generator=g, dtype=torch.float64),
    )
    scores = torch.stack([c, r], dim=1)
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(16, 2)
    assert bradley_terry_loss(c, r).item() == pytest.approx(ranknet_loss(scores, labels).item(), abs=1e-12)


def test_dpo_sigmoid_is_bradley_terry_on_implicit_rewards():
    g = torch.Generator().manual_seed(1)
    pc, pr, rc, rr = (torch.randn(8, generator=g, dtype=torch.float64) for _ in range(4))
    beta = 0.3
    loss, _ = dpo_loss(pc, pr, rc, rr, beta=beta)
    assert loss.item() == pytest.approx(
        bradley_terry_loss(beta * (pc - rc), beta * (pr - rr)).item(), abs=1e-12
    )
