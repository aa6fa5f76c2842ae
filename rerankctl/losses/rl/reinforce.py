"""REINFORCE policy-gradient loss (with whatever baseline the advantages carry).

Formula, for documents ``i`` with advantages ``A_i`` (rewards minus a baseline; no
gradient) and per-token log-probs ``logp_{i,t}`` under the current policy::

    loss = −mean_i [ A_i · Σ_t logp_{i,t} ]

Its gradient is the score-function estimator ``−E[A ∇ log π(o)]``. With advantages from
:func:`compute_doc_level_advantages` (group mean as baseline) this is the RLOO/GRPO-style
baseline REINFORCE without importance ratios or clipping, so it is only correct on fresh
(on-policy) rollouts.

Paper: Ronald J. Williams, "Simple Statistical Gradient-Following Algorithms for
Connectionist Reinforcement Learning", Machine Learning 8 (1992); for LLMs: Ahmadian et
al., "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
Feedback in LLMs", arXiv:2402.14740.

Inputs: ``logp[M]`` or ``[M, T]`` (with ``mask``), ``advantages[M]`` (or ``[M, T]``: then
``loss = −mean_i Σ_t A_{i,t} logp_{i,t}``, per-token credit such as reward-to-go).

Returns: ``(loss, stats)`` with ``loss``, ``logp_mean`` (per-document sequence log-prob),
``advantage_mean``.

Relations: at ``old_logp == logp`` the gradients of :func:`grpo_loss` and :func:`dr_grpo_loss`
(one token per document) equal this loss's gradient.

Example::

    >>> import torch
    >>> from rerankctl.losses import reinforce_loss
    >>> logp = torch.log(torch.tensor([0.5, 0.25]))
    >>> loss, _ = reinforce_loss(logp, torch.tensor([1.0, -1.0]))
    >>> round(loss.item(), 4)                # -(log 0.5 - log 0.25) / 2
    -0.3466
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses.rl._policy import as_tokens


def reinforce_loss(
    logp: Tensor, advantages: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE: ``−mean_i A_i Σ_t logp_{i,t}`` (see module docstring)."""
    lp, _, adv, m = as_tokens(logp, logp.detach(), advantages, mask, "reinforce_loss")
    seq_logp = torch.where(m, lp, torch.zeros_like(lp)).sum(1)
    has_tokens = m.any(1)
    # Σ_t A_{i,t} logp_{i,t}: equals A_i Σ_t logp_{i,t} when the advantage is per document.
    weighted = torch.where(m, adv.expand_as(lp) * lp, torch.zeros_like(lp)).sum(1)
    per_doc = torch.where(has_tokens, -weighted, torch.zeros_like(seq_logp))
    loss = per_doc.sum() / has_tokens.sum().clamp(min=1).to(lp.dtype)
    with torch.no_grad():
        n = max(int(has_tokens.sum().item()), 1)
        stats = {
            "loss": float(loss.item()),
            "logp_mean": float(seq_logp[has_tokens].sum().item()) / n,
            "advantage_mean": float(adv.expand_as(m)[m].mean().item()) if m.any() else 0.0,
        }
    return loss, stats
