"""RankNet: logistic loss on every pair of documents with different labels.

Formula, for one group, over the ordered pairs ``P = {(i, j): both real, y_i > y_j}``::

    loss = (1 / |P|) Σ_{(i,j) ∈ P} −log σ(σ_s · (s_i − s_j)) = mean softplus(−σ_s (s_i − s_j))

i.e. the cross-entropy between the target "i beats j" (probability 1) and the model's
``σ(σ_s (s_i − s_j))``. The scalar is the mean over groups that have at least one pair.

``max_pairs``: when set, each group uses a uniform sample (without replacement) of at most
``max_pairs`` of its pairs. The sample is drawn with a ``torch.Generator`` seeded with
``seed``, on the CPU, so it is the same on every device and every run for the same inputs
and seed. Pass a different seed per step (e.g. the global step) to vary the sample, or
``seed=None`` to draw from torch's global generator (reproducible under ``torch.manual_seed``,
different at every call).

Paper: Chris Burges, Tal Shaked, Erin Renshaw, Ari Lazier, Matt Deeds, Nicole Hamilton,
Greg Hullender, "Learning to Rank using Gradient Descent", ICML 2005 (no arXiv id).

Inputs: ``scores[B, N]`` logits, ``labels[B, N]`` binary or graded, ``mask[B, N]``.

Relations:

* Equals :func:`rerankctl.losses.lambda_loss` with ``weighting_scheme="none"`` (no
  ``max_pairs``, ``k=None``).
* With one positive and ``n`` negatives it is the mean over negatives of a two-way
  softmax cross-entropy, the pairwise cousin of single-positive InfoNCE.

Example::

    >>> import torch
    >>> from rerankctl.losses import ranknet_loss
    >>> scores = torch.tensor([[0.0, 1.0, 0.0]])
    >>> labels = torch.tensor([[1.0, 0.0, 0.0]])
    >>> round(ranknet_loss(scores, labels).item(), 4)   # (softplus(1) + softplus(0)) / 2
    1.0032
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rerankctl.losses._common import mean_over_groups, prepare


def sample_pairs(pairs: Tensor, max_pairs: int, seed: int | None) -> Tensor:
    """Keep at most ``max_pairs`` True entries per group of ``pairs[B, N, N]``, uniformly.

    Every candidate gets a random key from a CPU generator seeded with ``seed``; the
    ``max_pairs`` smallest keys among a group's pairs are kept (one ``topk``, no loop).
    """
    b, n, _ = pairs.shape
    flat = pairs.reshape(b, n * n)
    if max_pairs >= n * n:
        return pairs
    gen = None if seed is None else torch.Generator(device="cpu").manual_seed(int(seed))
    keys = torch.rand((b, n * n), generator=gen).to(pairs.device)
    keys = keys.masked_fill(~flat, 2.0)  # non-pairs sort after every real pair
    chosen = torch.topk(keys, k=max_pairs, dim=1, largest=False).indices
    keep = torch.zeros_like(flat)
    keep.scatter_(1, chosen, True)
    return (keep & flat).reshape(b, n, n)


def ranknet_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    sigma: float = 1.0,
    max_pairs: int | None = None,
    seed: int | None = 0,
) -> Tensor:
    """RankNet pairwise logistic loss (see module docstring).

    Args:
        scores: ``[B, N]`` logits.
        labels: ``[B, N]`` relevance; pairs are formed where labels differ.
        mask: ``[B, N]`` bool, True for real documents.
        sigma: slope σ_s of the logistic.
        max_pairs: sample at most this many pairs per group (None: all pairs).
        seed: seed of the pair sample (None: torch's global generator).
    """
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"ranknet_loss: max_pairs must be >= 1, got {max_pairs}")
    s, y, mask = prepare(scores, labels, mask, "ranknet_loss")
    pairs = mask[:, :, None] & mask[:, None, :] & (y[:, :, None] > y[:, None, :])
    if max_pairs is not None:
        pairs = sample_pairs(pairs, max_pairs, seed)
    pair_loss = F.softplus(-sigma * (s[:, :, None] - s[:, None, :]))
    pair_loss = torch.where(pairs, pair_loss, torch.zeros_like(pair_loss))
    n_pairs = pairs.sum(dim=(1, 2))
    per_group = pair_loss.sum(dim=(1, 2)) / n_pairs.clamp(min=1).to(s.dtype)
    return mean_over_groups(per_group, n_pairs > 0)
