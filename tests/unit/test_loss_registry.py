"""Loss registry: names, aliases, option filtering, teacher handling, errors; docstring examples run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import rerankctl.losses as losses_pkg
from rerankctl.errors import UsageError
from rerankctl.losses import LOSS_NAMES, LOSSES, build_loss, get_loss, get_spec, infonce_loss, list_net

EXPECTED = {
    "lambdaloss": "lambda_loss",
    "lambda": "lambda_loss",
    "listmle": "list_mle",
    "plistmle": "p_list_mle",
    "p_listmle": "p_list_mle",
    "listnet": "list_net",
    "infonce": "infonce_loss",
    "ranknet": "ranknet_loss",
    "bce": "bce_loss",
    "pointwise": "bce_loss",
    "ce": "ce_loss",
    "margin_mse": "margin_mse_loss",
    "kl": "kl_distill_loss",
    "kl_distill": "kl_distill_loss",
}


def test_every_name_and_alias_resolves():
    assert set(LOSSES) == set(EXPECTED)
    for name, fn_name in EXPECTED.items():
        assert get_loss(name).__name__ == fn_name
    assert get_spec("P-ListMLE".replace("-", "_")).name == "plistmle"
    assert {n for n in LOSS_NAMES if LOSSES[n].needs_teacher} == {"margin_mse", "kl"}


def test_unknown_name_raises_usage_error_listing_choices():
    with pytest.raises(UsageError) as info:
        get_loss("lambdamart")
    assert "lambdamart" in info.value.message
    assert "infonce" in info.value.hint and "kl_distill" in info.value.hint


def test_build_loss_keeps_only_accepted_options():
    options = dict(temperature=0.5, mode="positive_set", metric="map", sigma=2.0, max_pairs=3, seed=1)
    fn = build_loss("infonce", **options)
    assert fn.options == {"temperature": 0.5, "mode": "positive_set"}
    s = torch.randn(3, 5)
    y = torch.tensor([[1.0, 1, 0, 0, 0]] * 3)
    assert fn(s, y).item() == pytest.approx(infonce_loss(s, y, temperature=0.5, mode="positive_set").item())
    assert build_loss("lambda", **options).options == {"metric": "map", "sigma": 2.0}
    assert build_loss("listnet", **options)(s, y, None).item() == pytest.approx(
        list_net(s, y, temperature=0.5).item()
    )


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_registered_loss_runs_through_build_loss(name):
    s = torch.randn(4, 6, requires_grad=True)
    y = torch.zeros(4, 6)
    y[:, 0] = 1.0
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[1, 4:] = False
    fn = build_loss(name, temperature=1.0, k=None, pos_weight=2.0)
    loss = fn(s, y, mask, teacher_scores=torch.randn(4, 6))
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and torch.all(s.grad[1, 4:] == 0)


def test_distillation_without_teacher_is_a_usage_error():
    fn = build_loss("margin_mse")
    with pytest.raises(UsageError, match="teacher"):
        fn(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))


def _modules():
    names = [losses_pkg.__name__]
    for info in pkgutil.walk_packages(losses_pkg.__path__, prefix=losses_pkg.__name__ + "."):
        names.append(info.name)
    return sorted(names) + ["rerankctl.eval.metrics", "rerankctl.eval.metrics_batch"]


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_every_loss_module_documents_formula_paper_and_example():
    skip = {"__init__", "_common", "registry", "_policy", "lambda_weighting"}
    for name in _modules():
        short = name.rsplit(".", 1)[-1]
        if (
            short in skip
            or name in ("rerankctl.losses", "rerankctl.losses.rl")
            or not name.startswith("rerankctl.losses")
        ):
            continue
        doc = importlib.import_module(name).__doc__ or ""
        assert ">>>" in doc, name
        assert any(
            word in doc
            for word in ("arXiv", "ICML", "UAI", "CIKM", "Biometrika", "Williams", "Schulman", "Herbrich")
        ), name


def test_importing_losses_pulls_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys, rerankctl.losses, rerankctl.eval.metrics, rerankctl.eval.metrics_batch;"
        "heavy = [m for m in ('transformers', 'peft', 'datasets', 'mteb', 'scipy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
