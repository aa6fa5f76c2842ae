"""Per-token KL estimators between the policy and a reference policy.

With ``log r = ref_logp − logp`` for an action sampled from the policy π:

* ``k1 = logp − ref_logp = −log r``: unbiased for KL(π ‖ π_ref), high variance, can be < 0.
* ``k2 = ½ (log r)²``: biased, low variance, ≥ 0.
* ``k3 = (r − 1) − log r``: unbiased *and* ≥ 0 (Schulman's estimator); the one GRPO uses.

All three are 0 exactly when ``logp == ref_logp``. The gradient of ``k3`` in ``logp`` is
``1 − r``, which pulls the policy toward the reference.

Reference: John Schulman, "Approximating KL Divergence" (2020),
http://joschu.net/blog/kl-approx.html; GRPO: Shao et al., DeepSeekMath, arXiv:2402.03300, eq. 4.

Example::

    >>> import torch
    >>> from rerankctl.losses import kl_penalty
    >>> lp = torch.log(torch.tensor([0.5, 0.25]))
    >>> kl_penalty(lp, lp).tolist()
    [0.0, 0.0]
    >>> round(kl_penalty(torch.log(torch.tensor(0.5)), torch.log(torch.tensor(0.25))).item(), 4)
    0.1931
"""

from __future__ import annotations

import torch
from torch import Tensor

KL_KINDS = ("k3", "k1", "k2")


def kl_penalty(logp: Tensor, ref_logp: Tensor, kind: str = "k3") -> Tensor:
    """Elementwise KL estimate (``k1``, ``k2`` or ``k3``) from log-probs of sampled actions."""
    log_r = ref_logp - logp
    if kind == "k3":
        return torch.expm1(log_r) - log_r
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r * log_r
    raise ValueError(f"kl kind must be one of {', '.join(KL_KINDS)}, got {kind!r}")
