"""Ranking losses: hand-computed values, padding, shift invariance, skipped groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rerankctl.losses import (
    bce_loss,
    ce_loss,
    infonce_loss,
    kl_distill_loss,
    lambda_loss,
    list_mle,
    list_net,
    margin_mse_loss,
    p_list_mle,
    ranknet_loss,
)
from rerankctl.losses.ranknet import sample_pairs


def sp(x: float) -> float:
    """softplus, by hand."""
    return math.log1p(math.exp(x))


def t(rows, **kw):
    return torch.tensor(rows, dtype=torch.float64, **kw)


# ----------------------------------------------------------------------------- hand values


def test_list_mle_hand_value():
    # label order: doc2 (y=2), doc0 (y=1), doc1 (y=0) -> scores 0.5, 1.0, 2.0
    s, y = t([[1.0, 2.0, 0.5]]), t([[1.0, 0.0, 2.0]])
    e = math.exp
    want = (math.log(e(0.5) + e(1.0) + e(2.0)) - 0.5) + (math.log(e(1.0) + e(2.0)) - 1.0) + 0.0
    assert list_mle(s, y).item() == pytest.approx(want, abs=1e-12)
    assert list_mle(s, y, ties="index").item() == pytest.approx(want, abs=1e-12)  # distinct labels
    assert list_mle(s, y, eps=1e-10).item() == pytest.approx(want, abs=1e-8)  # allRank's eps barely moves it
    # temperature divides the scores
    want_t = (math.log(e(1.0) + e(2.0) + e(4.0)) - 1.0) + (math.log(e(2.0) + e(4.0)) - 2.0)
    assert list_mle(s, y, temperature=0.5).item() == pytest.approx(want_t, abs=1e-12)


def test_list_mle_ties_hand_values():
    # binary labels, two positives (docs 0, 2) and two negatives
    s, y = t([[1.0, 2.0, 0.5, -1.0]]), t([[1.0, 0.0, 1.0, 0.0]])
    e = math.exp
    lse_all = math.log(e(1.0) + e(2.0) + e(0.5) + e(-1.0))
    # breslow: both positives share the risk set "everything"; negatives have no term
    assert list_mle(s, y).item() == pytest.approx((lse_all - 1.0) + (lse_all - 0.5), abs=1e-12)
    # index: order doc0, doc2, doc1, doc3 and every suffix
    want = (
        (lse_all - 1.0)
        + (math.log(e(0.5) + e(2.0) + e(-1.0)) - 0.5)
        + (math.log(e(2.0) + e(-1.0)) - 2.0)
        + 0.0
    )
    assert list_mle(s, y, ties="index").item() == pytest.approx(want, abs=1e-12)
    # graded with a tie in the middle class: y = [2, 1, 1, 0]
    s2, y2 = t([[0.0, 1.0, 2.0, 3.0]]), t([[2.0, 1.0, 1.0, 0.0]])
    lse = lambda *xs: math.log(sum(e(x) for x in xs))  # noqa: E731
    want_b = (lse(0, 1, 2, 3) - 0.0) + (lse(1, 2, 3) - 1.0) + (lse(1, 2, 3) - 2.0)
    assert list_mle(s2, y2).item() == pytest.approx(want_b, abs=1e-12)
    # p-ListMLE under breslow: tied docs share the weight of their class's first rank (2)
    alpha = [2.0**3 - 1, 2.0**2 - 1, 2.0**2 - 1]
    terms = [lse(0, 1, 2, 3) - 0.0, lse(1, 2, 3) - 1.0, lse(1, 2, 3) - 2.0]
    want_p = sum(a * v for a, v in zip(alpha, terms)) / sum(alpha)
    assert p_list_mle(s2, y2).item() == pytest.approx(want_p, abs=1e-12)


def test_p_list_mle_hand_value():
    s, y = t([[1.0, 2.0, 0.5]]), t([[1.0, 0.0, 2.0]])
    e = math.exp
    terms = [math.log(e(0.5) + e(1.0) + e(2.0)) - 0.5, math.log(e(1.0) + e(2.0)) - 1.0, 0.0]
    alpha = [2.0 ** (3 - i) - 1.0 for i in (1, 2, 3)]  # 3, 1, 0
    raw = sum(a * v for a, v in zip(alpha, terms))
    assert p_list_mle(s, y, normalize=False).item() == pytest.approx(raw, abs=1e-12)
    assert p_list_mle(s, y).item() == pytest.approx(raw / sum(alpha), abs=1e-12)
    lin = [3.0, 2.0, 1.0]
    # the lowest grade has no term under ties="breslow", so its weight leaves the normaliser too
    want_lin = sum(a * v for a, v in zip(lin, terms)) / 5.0
    assert p_list_mle(s, y, rank_weights="linear", ties="index").item() == pytest.approx(
        sum(a * v for a, v in zip(lin, terms)) / 6.0, abs=1e-12
    )
    assert p_list_mle(s, y, rank_weights="linear").item() == pytest.approx(want_lin, abs=1e-12)


def test_p_list_mle_large_group_does_not_overflow():
    s = torch.randn(2, 300, dtype=torch.float32, requires_grad=True)
    y = torch.zeros(2, 300)
    y[:, :5] = 1.0
    loss = p_list_mle(s, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_list_net_hand_values():
    s, y = t([[2.0, 0.0, 1.0]]), t([[2.0, 0.0, 1.0]])
    z = math.exp(2) + 1 + math.exp(1)
    logp = [2 - math.log(z), 0 - math.log(z), 1 - math.log(z)]
    want = -(2 / 3 * logp[0] + 1 / 3 * logp[2])
    assert list_net(s, y).item() == pytest.approx(want, abs=1e-12)
    zy = math.exp(2) + 1 + math.exp(1)
    q = [math.exp(2) / zy, 1 / zy, math.exp(1) / zy]
    want_soft = -sum(qi * li for qi, li in zip(q, logp))
    assert list_net(s, y, target="softmax").item() == pytest.approx(want_soft, abs=1e-12)


def test_infonce_hand_values():
    s, y = t([[3.0, 1.0, 2.0, 0.0]]), t([[1.0, 1.0, 0.0, 0.0]])
    e = math.exp
    single = -math.log(e(3) / (e(3) + e(2) + e(0)))
    pset = -math.log((e(3) + e(1)) / (e(3) + e(1) + e(2) + e(0)))
    per = (single - math.log(e(1) / (e(1) + e(2) + e(0)))) / 2
    assert infonce_loss(s, y, mode="single").item() == pytest.approx(single, abs=1e-12)
    assert infonce_loss(s, y, mode="positive_set").item() == pytest.approx(pset, abs=1e-12)
    assert infonce_loss(s, y, mode="per_positive").item() == pytest.approx(per, abs=1e-12)
    single_t = -math.log(e(6) / (e(6) + e(4) + e(0)))
    assert infonce_loss(s, y, temperature=0.5).item() == pytest.approx(single_t, abs=1e-12)


def test_ranknet_hand_value():
    # graded labels: pairs (0>1), (0>2), (2>1)
    s, y = t([[0.5, 2.0, 1.0]]), t([[2.0, 0.0, 1.0]])
    want = (sp(-(0.5 - 2.0)) + sp(-(0.5 - 1.0)) + sp(-(1.0 - 2.0))) / 3
    assert ranknet_loss(s, y).item() == pytest.approx(want, abs=1e-12)
    want_sigma = (sp(-2 * (0.5 - 2.0)) + sp(-2 * (0.5 - 1.0)) + sp(-2 * (1.0 - 2.0))) / 3
    assert ranknet_loss(s, y, sigma=2.0).item() == pytest.approx(want_sigma, abs=1e-12)


def test_bce_hand_values_and_pos_weight():
    s, y = t([[2.0, -1.0]]), t([[1.0, 0.0]])
    assert bce_loss(s, y).item() == pytest.approx((sp(-2.0) + sp(-1.0)) / 2, abs=1e-12)
    assert bce_loss(s, y, pos_weight=3.0).item() == pytest.approx((3 * sp(-2.0) + sp(-1.0)) / 2, abs=1e-12)
    # soft targets are allowed
    soft = bce_loss(t([[0.0]]), t([[0.3]])).item()
    assert soft == pytest.approx(math.log(2), abs=1e-12)


def test_bce_rejects_graded_labels():
    from rerankctl.errors import UsageError

    with pytest.raises(UsageError, match="labels in \\[0, 1\\]"):
        bce_loss(t([[0.0, 1.0]]), t([[3.0, 0.0]]))
    # a graded value at a padded position is ignored
    assert torch.isfinite(bce_loss(t([[0.0, 1.0]]), t([[1.0, 3.0]]), torch.tensor([[True, False]])))


def test_ce_hand_values():
    s, y = t([[1.0, 0.0, 2.0]]), t([[1.0, 1.0, 0.0]])
    z = math.log(math.e + 1 + math.exp(2))
    assert ce_loss(s, y).item() == pytest.approx(-0.5 * ((1 - z) + (0 - z)), abs=1e-12)
    assert ce_loss(s, y, target="first_positive").item() == pytest.approx(-(1 - z), abs=1e-12)


def test_margin_mse_hand_value():
    s, y, teacher = t([[1.0, 0.0, 2.0]]), t([[2.0, 1.0, 0.0]]), t([[2.0, 1.0, 0.0]])
    # pairs (0,1): (1-0)-(2-1)=0; (0,2): (1-2)-(2-0)=-3; (1,2): (0-2)-(1-0)=-3
    assert margin_mse_loss(s, y, None, teacher).item() == pytest.approx(6.0, abs=1e-12)


def test_kl_distill_hand_value():
    s, teacher = t([[0.0, 1.0]]), t([[1.0, 0.0]])
    pt = [1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(0.5))]
    ps = [pt[1], pt[0]]
    want = 4 * sum(a * math.log(a / b) for a, b in zip(pt, ps))
    got = kl_distill_loss(s, torch.zeros_like(s), None, teacher, temperature=2.0)
    assert got.item() == pytest.approx(want, abs=1e-12)


# ----------------------------------------------------------------------------- shared properties

LISTWISE = {
    "lambda_ndcg2pp": lambda s, y, m: lambda_loss(s, y, m),
    "lambda_ndcg1": lambda s, y, m: lambda_loss(s, y, m, weighting_scheme="ndcgloss1"),
    "lambda_ndcg2": lambda s, y, m: lambda_loss(s, y, m, weighting_scheme="ndcgloss2"),
    "lambda_lambdarank": lambda s, y, m: lambda_loss(s, y, m, weighting_scheme="lambdarank"),
    "lambda_map": lambda s, y, m: lambda_loss(s, y, m, metric="map"),
    "lambda_mrr": lambda s, y, m: lambda_loss(s, y, m, metric="mrr"),
    "lambda_k2": lambda s, y, m: lambda_loss(s, y, m, k=2),
    "list_mle": lambda s, y, m: list_mle(s, y, m),
    "list_mle_index": lambda s, y, m: list_mle(s, y, m, ties="index", temperature=2.0),
    "p_list_mle": lambda s, y, m: p_list_mle(s, y, m),
    "p_list_mle_index": lambda s, y, m: p_list_mle(s, y, m, ties="index", rank_weights="linear"),
    "list_net": lambda s, y, m: list_net(s, y, m, temperature=0.7),
    "list_net_softmax": lambda s, y, m: list_net(s, y, m, target="softmax"),
    "infonce_single": lambda s, y, m: infonce_loss(s, y, m, temperature=0.5),
    "infonce_set": lambda s, y, m: infonce_loss(s, y, m, mode="positive_set"),
    "infonce_per": lambda s, y, m: infonce_loss(s, y, m, mode="per_positive"),
    "ranknet": lambda s, y, m: ranknet_loss(s, y, m),
    "ranknet_sampled": lambda s, y, m: ranknet_loss(s, y, m, max_pairs=3, seed=7),
    "ce": lambda s, y, m: ce_loss(s, y, m),
    "ce_first": lambda s, y, m: ce_loss(s, y, m, target="first_positive"),
}
TEACHER = {
    "margin_mse": lambda s, y, m, tt: margin_mse_loss(s, y, m, tt),
    "kl": lambda s, y, m, tt: kl_distill_loss(s, y, m, tt, temperature=2.0),
}
ALL = {**LISTWISE, "bce": lambda s, y, m: bce_loss(s, y.clamp(max=1.0), m)}


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(3, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([[2, 0, 1, 0, 1, 0], [1, 0, 0, 1, 0, 0], [0, 3, 1, 2, 0, 0]], dtype=torch.float64)
    lengths = [6, 4, 5]
    m = torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]
    teacher = torch.randn(3, 6, generator=g, dtype=torch.float64)
    return s, y, m, teacher, lengths


@pytest.mark.parametrize("name", sorted(ALL))
def test_padding_gets_zero_gradient_and_does_not_change_the_loss(name):
    fn = ALL[name]
    s, y, m, _, lengths = _batch()
    garbage = s.clone()
    garbage[~m] = torch.tensor([float("nan"), float("inf"), -1e6, 1e6], dtype=torch.float64)[
        : int((~m).sum())
    ]
    garbage.requires_grad_(True)
    y_pad = y.clone()
    y_pad[~m] = 5.0 if name != "bce" else 1.0  # padded labels must be ignored too
    loss = fn(garbage, y_pad, m)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.all(garbage.grad[~m] == 0.0)
    assert torch.isfinite(garbage.grad).all()
    # the padded batch equals the mean of each group scored alone, unpadded
    singles = [fn(s[i : i + 1, :n], y[i : i + 1, :n], None) for i, n in enumerate(lengths)]
    if not name.startswith("ranknet_sampled"):
        assert loss.item() == pytest.approx(sum(v.item() for v in singles) / len(singles), abs=1e-10)


@pytest.mark.parametrize("name", sorted(TEACHER))
def test_distillation_padding_gets_zero_gradient(name):
    fn = TEACHER[name]
    s, y, m, teacher, lengths = _batch(1)
    s = s.masked_fill(~m, float("nan")).requires_grad_(True)
    teacher = teacher.masked_fill(~m, float("inf"))
    loss = fn(s, y, m, teacher)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(s.grad[~m] == 0.0) and torch.isfinite(s.grad).all()
    s0, _, _, t0, _ = _batch(1)
    singles = [
        fn(s0[i : i + 1, :n], y[i : i + 1, :n], None, t0[i : i + 1, :n]) for i, n in enumerate(lengths)
    ]
    assert loss.item() == pytest.approx(sum(v.item() for v in singles) / 3, abs=1e-10)


@pytest.mark.parametrize("name", sorted(LISTWISE))
def test_shifting_scores_leaves_listwise_losses_unchanged(name):
    s, y, m, _, _ = _batch(2)
    shift = torch.tensor([[3.0], [-7.5], [100.0]], dtype=torch.float64)
    base = LISTWISE[name](s, y, m)
    assert LISTWISE[name](s + shift, y, m).item() == pytest.approx(base.item(), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", sorted(TEACHER))
def test_shifting_student_or_teacher_leaves_distillation_unchanged(name):
    s, y, m, teacher, _ = _batch(3)
    base = TEACHER[name](s, y, m, teacher).item()
    assert TEACHER[name](s + 4.0, y, m, teacher).item() == pytest.approx(base, rel=1e-9, abs=1e-9)
    assert TEACHER[name](s, y, m, teacher - 2.0).item() == pytest.approx(base, rel=1e-9, abs=1e-9)
    assert TEACHER[name](teacher + 1.0, y, m, teacher).item() == pytest.approx(0.0, abs=1e-10)


# list_net(target="softmax") has a target without positives; sampled RankNet's sample depends on B.
NEEDS_POSITIVE = sorted(set(LISTWISE) - {"list_net_softmax", "ranknet_sampled"})


@pytest.mark.parametrize("name", NEEDS_POSITIVE)
def test_groups_without_positive_are_skipped_not_nan(name):
    s, y, m, _, _ = _batch(4)
    y = y.clone()
    y[1] = 0.0
    s = s.clone().requires_grad_(True)
    loss = LISTWISE[name](s, y, m)
    loss.backward()
    keep = [0, 2]
    alone = LISTWISE[name](s.detach()[keep], y[keep], m[keep])
    assert torch.isfinite(loss) and loss.item() == pytest.approx(alone.item(), abs=1e-10)
    assert torch.all(s.grad[1] == 0.0)


@pytest.mark.parametrize("name", sorted(ALL))
def test_batch_without_any_valid_group_is_zero_and_backpropagates(name):
    s = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(2, 4, dtype=torch.float64)
    m = torch.zeros(2, 4, dtype=torch.bool)
    loss = ALL[name](s, y, m)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(s.grad == 0.0)


@pytest.mark.parametrize("name", sorted(set(ALL) - {"lambda_k2"}))  # k=2 may see no pair here
def test_bf16_scores_work_and_gradients_flow(name):
    s = torch.randn(4, 8).to(torch.bfloat16).requires_grad_(True)
    y = torch.zeros(4, 8)
    y[:, 0] = 1.0
    y[:, 3] = 1.0 if name == "bce" else 2.0
    loss = ALL[name](s, y, None)
    loss.backward()
    assert loss.dtype == torch.float32 and s.grad.dtype == torch.bfloat16
    assert torch.isfinite(s.grad.float()).all() and s.grad.float().abs().sum() > 0


def test_extreme_scores_stay_finite():
    s = torch.tensor([[1e4, -1e4, 0.0, 50.0]], requires_grad=True)
    y = torch.tensor([[0.0, 1.0, 0.0, 2.0]])
    for name, fn in LISTWISE.items():
        s.grad = None
        loss = fn(s, y, None)
        loss.backward()
        assert torch.isfinite(loss), name
        assert torch.isfinite(s.grad).all(), name


def test_gradient_pushes_positives_up():
    s = torch.zeros(1, 4, requires_grad=True)
    y = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    for name, fn in ALL.items():
        s.grad = None
        fn(s, y, None).backward()
        assert s.grad[0, 1] < 0, name
        if "index" not in name:  # ties="index" also orders the negatives among themselves
            assert torch.all(s.grad[0, [0, 2, 3]] >= 0), name


# ----------------------------------------------------------------------------- ranknet sampling


def test_ranknet_pair_sampling_is_deterministic_and_bounded():
    s, y, m, _, _ = _batch(5)
    a = ranknet_loss(s, y, m, max_pairs=2, seed=3)
    b = ranknet_loss(s, y, m, max_pairs=2, seed=3)
    assert a.item() == b.item()
    draws = {round(ranknet_loss(s, y, m, max_pairs=2, seed=k).item(), 12) for k in range(8)}
    assert len(draws) > 1  # different seeds, different samples
    assert ranknet_loss(s, y, m, max_pairs=10_000).item() == pytest.approx(ranknet_loss(s, y, m).item())
    torch.manual_seed(5)
    c = ranknet_loss(s, y, m, max_pairs=2, seed=None)
    torch.manual_seed(5)
    assert ranknet_loss(s, y, m, max_pairs=2, seed=None).item() == c.item()
    pairs = m[:, :, None] & m[:, None, :] & (y[:, :, None] > y[:, None, :])
    kept = sample_pairs(pairs, 2, seed=0)
    assert torch.all(kept <= pairs)
    assert kept.sum(dim=(1, 2)).tolist() == torch.clamp(pairs.sum(dim=(1, 2)), max=2).tolist()


def test_ranknet_sampling_is_uniform_over_pairs():
    pairs = torch.zeros(1, 3, 3, dtype=torch.bool)
    pairs[0, 0, 1] = pairs[0, 0, 2] = pairs[0, 1, 2] = True
    counts = torch.zeros(3, 3)
    for seed in range(600):
        counts += sample_pairs(pairs, 1, seed)[0].float()
    chosen = counts[pairs[0]]
    assert chosen.sum() == 600 and torch.all((chosen > 150) & (chosen < 250))


def test_sigma_scales_ranknet_like_softplus():
    s, y = t([[1.0, 0.0]]), t([[1.0, 0.0]])
    assert ranknet_loss(s, y, sigma=3.0).item() == pytest.approx(F.softplus(torch.tensor(-3.0)).item())


@pytest.mark.parametrize("name", sorted(ALL))
def test_autograd_gradients_match_finite_differences(name):
    g = torch.Generator().manual_seed(11)
    s = (torch.randn(3, 6, generator=g, dtype=torch.float64) * 1.5).requires_grad_(True)
    y = torch.tensor([[2, 0, 1, 0, 1, 0], [1, 0, 0, 1, 0, 0], [0, 3, 1, 2, 0, 0]], dtype=torch.float64)
    m = torch.arange(6)[None, :] < torch.tensor([6, 4, 5])[:, None]
    assert torch.autograd.gradcheck(lambda x: ALL[name](x, y, m), (s,), eps=1e-6, atol=1e-6)


@st.composite
def padded_groups(draw):
    b = draw(st.integers(1, 4))
    n = draw(st.integers(1, 7))
    scores = draw(hnp.arrays(np.float32, (b, n), elements=st.floats(-1e4, 1e4, width=32)))
    labels = draw(hnp.arrays(np.float32, (b, n), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0])))
    mask = draw(hnp.arrays(np.bool_, (b, n), elements=st.booleans()))
    return torch.from_numpy(scores), torch.from_numpy(labels), torch.from_numpy(mask)


@pytest.mark.parametrize("name", sorted(ALL) + sorted(TEACHER))
@settings(max_examples=30, deadline=None)
@given(batch=padded_groups())
def test_any_padding_pattern_gives_finite_loss_and_zero_padding_gradient(name, batch):
    scores, labels, mask = batch
    s = scores.masked_fill(~mask, float("nan")).requires_grad_(True)
    if name in TEACHER:
        loss = TEACHER[name](s, labels, mask, scores.flip(1))
    else:
        loss = ALL[name](s, labels, mask)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(s.grad).all()
    assert torch.all(s.grad[~mask] == 0.0)
