"""Margin ranking (hinge) loss of the vision-language reward model.

Formula, over ``M`` pairs with scores ``r_c`` (preferred) and ``r_r`` (less preferred)::

    loss = mean_m max(0, margin − (r_c − r_r))

It is zero once every preferred response out-scores the other by at least ``margin``, so,
unlike Bradley-Terry, it stops pushing scores apart; with scores clamped to a range
``[score_min, score_max]`` (the VL reward model's head) this keeps scores spread inside
that range. Same as ``torch.nn.functional.margin_ranking_loss(r_c, r_r, ones, margin)``.

Reference: the pairwise hinge loss of Herbrich, Graepel, Obermayer, "Large Margin Rank
Boundaries for Ordinal Regression" (2000), and of RankSVM (Joachims, KDD 2002).

Inputs: ``chosen[M]``, ``rejected[M]`` scores (any shape, matched elementwise); ``margin``
a float or a ``[M]`` tensor.

Relations: the hinge counterpart of :func:`rerankctl.losses.bradley_terry_loss`
(``softplus(−x)`` there, ``max(0, margin − x)`` here).

Example::

    >>> import torch
    >>> from rerankctl.losses import margin_ranking_loss
    >>> margin_ranking_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), margin=1.0).item()
    0.25
"""

from __future__ import annotations

import torch
from torch import Tensor


def margin_ranking_loss(chosen: Tensor, rejected: Tensor, margin: Tensor | float) -> Tensor:
    """Mean hinge ``max(0, margin − (chosen − rejected))`` (see module docstring)."""
    if chosen.shape != rejected.shape:
        raise ValueError(
            f"margin_ranking_loss: chosen {tuple(chosen.shape)} and rejected {tuple(rejected.shape)} differ"
        )
    c = chosen.float() if chosen.dtype in (torch.float16, torch.bfloat16) else chosen
    m = torch.as_tensor(margin, dtype=c.dtype, device=c.device)
    return torch.clamp(m - (c - rejected.to(c.dtype)), min=0.0).mean()
