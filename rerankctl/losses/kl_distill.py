"""Soft-label distillation: KL divergence from the teacher's to the student's softmax.

Formula, for one group over its real documents, with temperature ``T``::

    p^t = softmax(t / T),   p^s = softmax(s / T)
    loss = T² · KL(p^t ‖ p^s) = T² · Σ_j p^t_j (log p^t_j − log p^s_j)

The ``T²`` factor keeps gradient magnitudes comparable across temperatures (Hinton et al.).
The scalar is the mean over groups with at least two real documents (a single document's
distribution is always 1, so it carries no signal). ``labels`` are not used; the argument
exists so every ranking loss has the same signature.

Paper: Geoffrey Hinton, Oriol Vinyals, Jeff Dean, "Distilling the Knowledge in a Neural
Network", arXiv:1503.02531. For rerankers: the listwise KL of RankGPT distillation
(Sun et al., arXiv:2304.09542) and of the FlagEmbedding/BGE reranker recipes.

Inputs: ``scores[B, N]`` student logits, ``labels[B, N]`` (ignored), ``mask[B, N]``,
``teacher_scores[B, N]`` teacher logits (no gradient flows into them).

Relations:

* Its gradient in ``s`` equals that of ``list_net(target="softmax")`` with the teacher's
  logits as labels (KL = cross-entropy − the teacher's entropy, a constant), at T = 1.
* Zero exactly when ``s = t + c`` per group; invariant to shifting either side.

Example::

    >>> import torch
    >>> from rerankctl.losses import kl_distill_loss
    >>> s = torch.tensor([[0.0, 0.0]])
    >>> t = torch.tensor([[0.0, 0.0]])
    >>> kl_distill_loss(s, torch.zeros(1, 2), None, t).item()
    0.0
"""

from __future__ import annotations

import torch
from torch import Tensor

from rerankctl.losses._common import mean_over_groups, prepare, prepare_teacher
from rerankctl.losses.list_net import masked_log_softmax


def kl_distill_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    teacher_scores: Tensor | None = None,
    *,
    temperature: float = 1.0,
) -> Tensor:
    """T²-scaled KL(teacher ‖ student) over each group (see module docstring)."""
    if temperature <= 0:
        raise ValueError(f"kl_distill_loss: temperature must be > 0, got {temperature}")
    s, _, mask = prepare(scores, labels, mask, "kl_distill_loss")
    t = prepare_teacher(teacher_scores, s, mask, "kl_distill_loss")
    log_ps = masked_log_softmax(s / temperature, mask)
    log_pt = masked_log_softmax(t / temperature, mask)
    p_t = torch.where(mask, log_pt.exp(), torch.zeros_like(log_pt))  # exp(0) = 1 at padding otherwise
    kl = (p_t * (log_pt - log_ps)).sum(1) * temperature**2
    return mean_over_groups(kl, mask.sum(1) >= 2)
