"""InfoNCE: softmax cross-entropy of positives against the group's negatives.

Positives are real documents with ``label > 0``, negatives those with ``label <= 0``.
With ``z = s / τ`` and ``LSE_neg = log Σ_{n ∈ neg} exp(z_n)``::

    single:        loss = −log( e^{z_p} / (e^{z_p} + Σ_n e^{z_n}) ) = softplus(LSE_neg − z_p)
                   with p the first positive (lowest index); other positives are left out.
    positive_set:  loss = −log( Σ_{p ∈ pos} e^{z_p} / Σ_{j ∈ pos ∪ neg} e^{z_j} )
                   (one term per group; any positive may win; "multiple positives" InfoNCE)
    per_positive:  loss = mean_{p ∈ pos} softplus(LSE_neg − z_p)
                   (each positive against the negatives alone, averaged; SupCon-style)

The scalar is the mean over groups with at least one positive and one negative (a group
without both has nothing to contrast and is skipped).

Paper: Aaron van den Oord, Yazhe Li, Oriol Vinyals, "Representation Learning with
Contrastive Predictive Coding", arXiv:1807.03748. The positive-set form is the
"multiple positives" objective of Miech et al. (MIL-NCE, arXiv:1912.06430).

Default temperature 1.0: rerankctl scores are unbounded yes/no logit differences, whose
scale the model learns, so τ = 1 makes InfoNCE the plain group softmax cross-entropy used
to train cross-encoder rerankers (e.g. BGE/FlagEmbedding rerankers). τ = 0.05 is the usual
choice for *cosine similarities* of bi-encoders (SimCSE, E5), which live in [-1, 1]; on
logits it multiplies gradients by 20 and saturates quickly. Lower τ sharpens the focus on
the hardest negatives.

Inputs: ``scores[B, N]`` logits, ``labels[B, N]`` (binary or graded; > 0 is positive),
``mask[B, N]``.

Relations:

* One positive: all three modes are equal.
* ``single`` with one-hot labels equals :func:`rerankctl.losses.list_net` at the same τ.
* ``positive_set`` ≤ ``per_positive`` (log-sum-exp over positives is at least each term).
* Invariant to adding a constant to all scores of a group.

Example::

    >>> import torch
    >>> from rerankctl.losses import infonce_loss
    >>> scores = torch.tensor([[1.0, 0.0, 0.0]])
    >>> labels = torch.tensor([[1.0, 0.0, 0.0]])
    >>> round(infonce_loss(scores, labels).item(), 4)   # -log(e / (e + 2))
    0.5514
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rerankctl.losses._common import NEG_FILL, masked_mean, mean_over_groups, prepare

MODES = ("single", "positive_set", "per_positive")


def infonce_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    temperature: float = 1.0,
    mode: str = "single",
) -> Tensor:
    """InfoNCE over padded groups (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]``; ``> 0`` marks positives.
        mask: ``[B, N]`` bool, True for real documents.
        temperature: τ; scores are divided by it.
        mode: ``"single"``, ``"positive_set"`` or ``"per_positive"``.
    """
    if temperature <= 0:
        raise ValueError(f"infonce_loss: temperature must be > 0, got {temperature}")
    if mode not in MODES:
        raise ValueError(f"infonce_loss: mode must be one of {', '.join(MODES)}, got {mode!r}")
    s, y, mask = prepare(scores, labels, mask, "infonce_loss")
    z = s / temperature
    pos = mask & (y > 0)
    neg = mask & (y <= 0)
    valid = pos.any(1) & neg.any(1)
    lse_neg = torch.logsumexp(z.masked_fill(~neg, NEG_FILL), dim=1)

    if mode == "positive_set":
        lse_pos = torch.logsumexp(z.masked_fill(~pos, NEG_FILL), dim=1)
        lse_all = torch.logsumexp(z.masked_fill(~mask, NEG_FILL), dim=1)
        per_group = lse_all - lse_pos
    else:
        # softplus(LSE_neg - z_p) = -log(e^{z_p} / (e^{z_p} + Σ e^{z_n})) for every document
        per_doc = F.softplus(lse_neg[:, None] - z)
        if mode == "single":
            # argmax of a bool row returns its first True (index order); rows without one are invalid
            first = pos.to(torch.int8).argmax(1, keepdim=True)
            per_group = per_doc.gather(1, first).squeeze(1)
        else:
            per_group = masked_mean(per_doc, pos, dim=1)
    return mean_over_groups(per_group, valid)
