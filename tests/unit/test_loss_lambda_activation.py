"""LambdaLoss score activations (--lambda-activation none|tanh|arctan): values and gradients by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rerankctl.losses import lambda_loss
from rerankctl.losses.lambda_loss import activate_scores


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


def tanh_c(s: float, c: float) -> float:
    return c * math.tanh(s / c)


def arctan_c(s: float, c: float) -> float:
    return (2 * c / math.pi) * math.atan(math.pi * s / (2 * c))


# Scores [0.5, 2.0, 1.0], labels [2, 0, 1]: sorted by score the labels are [0, 1, 2]; with
# weighting "none" the three ordered pairs (better label first) are (doc2, doc1), (doc0, doc1), (doc0, doc2).
S = [0.5, 2.0, 1.0]
Y = [2.0, 0.0, 1.0]
PAIRS = [(2, 1), (0, 1), (0, 2)]


@pytest.mark.parametrize(("name", "fn"), [("tanh", tanh_c), ("arctan", arctan_c)])
@pytest.mark.parametrize("c", [0.5, 3.0])
def test_activated_ranknet_value_by_hand(name, fn, c):
    scores = torch.tensor([S], dtype=torch.float64)
    labels = torch.tensor([Y], dtype=torch.float64)
    got = lambda_loss(scores, labels, weighting_scheme="none", score_activation=name, activation_scale=c)
    expected = sum(sp(-(fn(S[i], c) - fn(S[j], c))) for i, j in PAIRS) / len(PAIRS)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    plain = lambda_loss(scores, labels, weighting_scheme="none")
    assert plain.item() == pytest.approx(sum(sp(-(S[i] - S[j])) for i, j in PAIRS) / 3, rel=1e-12)
    assert got.item() != pytest.approx(plain.item(), rel=1e-3)  # the option changes the loss


def test_gradient_is_the_chain_rule_by_hand():
    c = 1.5
    scores = torch.tensor([[S[0], S[1]]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    lambda_loss(
        scores, labels, weighting_scheme="none", score_activation="tanh", activation_scale=c
    ).backward()
    d = tanh_c(S[0], c) - tanh_c(S[1], c)
    dloss_dd = -1.0 / (1.0 + math.exp(d))  # d/dd softplus(-d)
    expected = [dloss_dd * (1 - math.tanh(S[0] / c) ** 2), -dloss_dd * (1 - math.tanh(S[1] / c) ** 2)]
    assert scores.grad[0].tolist() == pytest.approx(expected, rel=1e-12)


def test_activation_bounds_keeps_order_and_is_identity_near_zero():
    s = torch.linspace(-8, 8, 201, dtype=torch.float64)  # tanh(s/2) is exactly 1 in float64 past ~19
    for name in ("tanh", "arctan"):
        out = activate_scores(s, name, 2.0)
        assert out.abs().max().item() < 2.0 and torch.all(out[1:] > out[:-1])
        tiny = torch.tensor([1e-6], dtype=torch.float64)
        assert activate_scores(tiny, name, 2.0).item() == pytest.approx(1e-6, rel=1e-9)  # slope 1 at 0
    assert activate_scores(s, "none", 2.0) is s


def test_ndcg_weights_unchanged_because_the_ranking_is_unchanged():
    """NDCGLoss2++ with a huge scale equals no activation (tanh(s/c)·c -> s)."""
    scores = torch.tensor([S], dtype=torch.float64)
    labels = torch.tensor([Y], dtype=torch.float64)
    wide = lambda_loss(scores, labels, score_activation="arctan", activation_scale=1e6)
    assert wide.item() == pytest.approx(lambda_loss(scores, labels).item(), rel=1e-9)


def test_bad_options_are_refused():
    scores, labels = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])
    with pytest.raises(ValueError, match="score_activation must be one of none, tanh, arctan"):
        lambda_loss(scores, labels, score_activation="relu")
    with pytest.raises(ValueError, match="activation_scale must be > 0"):
        lambda_loss(scores, labels, score_activation="tanh", activation_scale=0.0)


def test_config_flag_reaches_the_loss_and_is_refused_for_other_losses():
    from pydantic import ValidationError

    from rerankctl.config.sft import SFTConfig
    from rerankctl.losses.registry import build_loss

    cfg = SFTConfig(loss_type="lambda_loss", lambda_activation="tanh", lambda_activation_scale=0.5)
    fn = build_loss(cfg.loss_type, **cfg.loss_options())
    assert fn.options["score_activation"] == "tanh" and fn.options["activation_scale"] == 0.5
    with pytest.raises(ValidationError, match="applies to loss_type lambdaloss only"):
        SFTConfig(loss_type="infonce", lambda_activation="arctan")


def test_cli_flag(capsys):
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "train",
                "sft",
                "--preset",
                "tiny",
                "--loss-type",
                "lambdaloss",
                "--lambda-activation",
                "arctan",
                "--lambda-activation-scale",
                "2",
                "--print-config",
            ]
        )
    out = capsys.readouterr().out
    assert (
        exc.value.code in (0, None)
        and 'lambda_activation = "arctan"' in out
        and "lambda_activation_scale = 2.0" in out
    )
    with pytest.raises(SystemExit) as exc:
        main(["train", "sft", "--preset", "tiny", "--lambda-activation", "sigmoid"])
    assert exc.value.code == 2
