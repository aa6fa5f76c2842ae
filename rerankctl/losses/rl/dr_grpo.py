"""Dr. GRPO policy loss: GRPO without the length and std normalisations.

Formula, per real token ``t`` of document ``i``, advantages centred but *not* divided by
the group std (:func:`compute_doc_level_advantages` with ``scale="none"``)::

    ℓ_{i,t} = −min(ρ A_i, clip(ρ, 1 − ε, 1 + ε) A_i)
    loss    = mean_i [ Σ_t ℓ_{i,t} / L ]          L = max_len (a constant; default T)

GRPO's ``1/|o_i|`` favours long wrong answers and short right ones, and dividing by the
group std up-weights groups that are nearly all right or all wrong; Dr. GRPO removes both
biases. With one action per document (``T = 1``) the loss equals GRPO's on the same
advantages; the difference is then only in how the advantages were scaled.

Paper: Zichen Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective",
arXiv:2503.20783.

Inputs and returned stats: as :func:`rerankctl.losses.grpo_loss`, plus ``max_len``.

Example::

    >>> import torch
    >>> from rerankctl.losses import dr_grpo_loss
    >>> logp = torch.zeros(2, 4, requires_grad=True)
    >>> mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    >>> loss, _ = dr_grpo_loss(logp, logp.detach(), torch.tensor([1.0, 1.0]), mask)
    >>> loss.item()                          # -(2/4 + 4/4) / 2
    -0.75
"""

from __future__ import annotations

from torch import Tensor

from rerankctl.losses.rl._policy import policy_loss


def dr_grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    clip_eps: float = 0.2,
    max_len: int | None = None,
    ref_logp: Tensor | None = None,
    kl_coef: float = 0.0,
    kl_kind: str = "k3",
) -> tuple[Tensor, dict[str, float]]:
    """Dr. GRPO clipped surrogate with a constant length normaliser (see module docstring)."""
    return policy_loss(
        "dr_grpo_loss",
        logp,
        old_logp,
        advantages,
        mask,
        eps_low=clip_eps,
        eps_high=clip_eps,
        aggregation="constant",
        ref_logp=ref_logp,
        kl_coef=kl_coef,
        kl_kind=kl_kind,
        max_len=max_len,
    )
