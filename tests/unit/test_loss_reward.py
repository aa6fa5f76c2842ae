"""Reward-model losses: Bradley-Terry (margin, centering) and the VL margin ranking loss."""

from __future__ import annotations

import math

import pytest
import torch

from rerankctl.losses import bradley_terry_loss, margin_ranking_loss


def test_bradley_terry_by_hand():
    c = torch.tensor([2.0, 0.5])
    r = torch.tensor([1.0, 1.5])
    base = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(1.0))) / 2
    assert bradley_terry_loss(c, r).item() == pytest.approx(base)
    margin = torch.tensor([0.5, -1.0])
    with_margin = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(0.0))) / 2
    assert bradley_terry_loss(c, r, margin=margin).item() == pytest.approx(with_margin)
    centred = base + 0.01 * ((2.0 + 1.0) ** 2 + (0.5 + 1.5) ** 2) / 2
    assert bradley_terry_loss(c, r, center_rewards_coef=0.01).item() == pytest.approx(centred)
    assert bradley_terry_loss(c, r, margin=0.5).item() == pytest.approx(
        (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.5))) / 2
    )


def test_bradley_terry_gradients_and_centering_pull_toward_zero():
    c = torch.tensor([5.0], requires_grad=True)
    r = torch.tensor([5.0], requires_grad=True)
    bradley_terry_loss(c, r).backward()
    assert c.grad.item() == pytest.approx(-0.5) and r.grad.item() == pytest.approx(0.5)
    c.grad = r.grad = None
    bradley_terry_loss(c, r, center_rewards_coef=0.1).backward()
    assert c.grad.item() == pytest.approx(-0.5 + 0.1 * 2 * 10) and r.grad.item() == pytest.approx(0.5 + 2.0)


def test_bradley_terry_bf16_and_shape_check():
    c = torch.tensor([1.0, 2.0], dtype=torch.bfloat16, requires_grad=True)
    loss = bradley_terry_loss(c, torch.zeros(2, dtype=torch.bfloat16))
    loss.backward()
    assert loss.dtype == torch.float32 and c.grad.dtype == torch.bfloat16
    with pytest.raises(ValueError):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))


def test_margin_ranking_by_hand_and_against_torch():
    c = torch.tensor([0.5, 3.0, -1.0])
    r = torch.tensor([0.0, 0.0, 0.0])
    assert margin_ranking_loss(c, r, 1.0).item() == pytest.approx((0.5 + 0.0 + 2.0) / 3)
    ref = torch.nn.functional.margin_ranking_loss(c, r, torch.ones(3), margin=0.7)
    assert margin_ranking_loss(c, r, 0.7).item() == pytest.approx(ref.item())
    per_pair = torch.tensor([1.0, 4.0, 0.0])
    assert margin_ranking_loss(c, r, per_pair).item() == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    x = c.clone().requires_grad_(True)
    margin_ranking_loss(x, r, 1.0).backward()
    assert x.grad.tolist() == pytest.approx([-1 / 3, 0.0, -1 / 3])
