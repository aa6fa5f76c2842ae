"""The RL policies of a yes/no reranker: Plackett–Luce rankings, or pointwise yes/no judgements.

**Plackett–Luce** (``--policy plackett-luce``, the default) is described first; **pointwise**
(``--policy pointwise``) at :func:`sample_judgements`.

For a query group with documents ``d_1..d_n`` the reranker gives scores
``s_i = logit_yes − logit_no`` (one scoring pass, no text generation). The policy is the
Plackett–Luce distribution with logits ``z_i = s_i / τ``: a ranking ``σ`` is drawn by picking
the first document with probability ``softmax(z)``, the next from the remaining ones, and so
on::

    log π(σ) = Σ_{k=1}^{n−1} [ z_{σ_k} − log Σ_{j ≥ k} exp z_{σ_j} ]

Sampling is the Gumbel-max trick (sort ``z + Gumbel noise``), which gives exact
Plackett–Luce samples. The last position is forced (probability 1), so the ``n − 1``
*choices* are the "tokens" of the sampled ranking; :func:`ranking_logp` returns them as
``[M, n_max − 1]`` with a mask, the layout GRPO/DAPO/Dr.GRPO losses take. The same sampled
ranking scored with the reference model's scores gives ``ref_logp``; with the rollout scores,
``old_logp``.

For DPO the "responses" are the two orders of a (more relevant, less relevant) pair under the
two-document Plackett–Luce model: ``log π(d_c ≻ d_r) = log σ((s_c − s_r)/τ)`` and
``log π(d_r ≻ d_c) = log σ((s_r − s_c)/τ)`` (:func:`preference_pairs`, :func:`pair_logps`).
"""

from __future__ import annotations

import torch
from torch import Tensor

NEG = -1e30  # "minus infinity" that keeps logcumsumexp and gradients finite


def group_uniforms(
    shape: tuple[int, int, int],
    device: torch.device,
    generator: torch.Generator | None = None,
    generators: list[torch.Generator] | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Uniform noise ``[B, G, N]``: from one ``generator``, or group ``b`` from ``generators[b]``.

    Per-group generators make a group's samples independent of which other groups share its
    batch (and so of the world size and of dynamic-sampling refills). With ``mask [B, N]`` a
    group draws noise for its real documents only, so the padding its batch-mates impose does
    not shift its numbers either (a group padded to 9 or to 12 documents samples alike).
    """
    if generators is None:
        return torch.rand(shape, generator=generator, device=device)
    if len(generators) != shape[0]:
        raise ValueError(f"{len(generators)} generators for {shape[0]} groups")
    if mask is None:
        return torch.stack([torch.rand(shape[1:], generator=g, device=device) for g in generators])
    out = torch.ones(shape, device=device)  # padding: masked out by every caller
    for b, g in enumerate(generators):
        real = mask[b].to(device)
        out[b][:, real] = torch.rand((shape[1], int(real.sum())), generator=g, device=device)
    return out


def sample_rankings(
    scores: Tensor,
    mask: Tensor,
    num_samples: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    generators: list[torch.Generator] | None = None,
) -> Tensor:
    """``num_samples`` Plackett–Luce rankings per group: indices ``[B, G, N]`` (padding last)."""
    z = scores.detach().float() / temperature
    u = group_uniforms((z.shape[0], num_samples, z.shape[1]), z.device, generator, generators, mask)
    gumbel = -torch.log(-torch.log(u.clamp(min=1e-20, max=1.0 - 1e-7)))
    keys = (z[:, None, :] + gumbel).masked_fill(~mask[:, None, :], float("-inf"))
    return torch.sort(keys, dim=-1, descending=True, stable=True).indices


def ranking_logp(
    scores: Tensor, mask: Tensor, rankings: Tensor, temperature: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Per-choice log-probabilities of ``rankings`` ``[B, G, N]`` under Plackett–Luce(scores/τ).

    Returns ``(logp[B*G, N-1], choice_mask[B*G, N-1])``; position ``k`` of a group with
    ``n`` real documents is a real choice iff ``k < n − 1``. Differentiable in ``scores``.
    """
    b, g, n = rankings.shape
    z = (scores.float() / temperature).masked_fill(~mask, NEG)
    ordered = torch.gather(z[:, None, :].expand(b, g, n), 2, rankings)
    # tail[k] = log Σ_{j ≥ k} exp(ordered[j]): a reversed cumulative log-sum-exp.
    tail = torch.logcumsumexp(ordered.flip(-1), dim=-1).flip(-1)
    logp = (ordered - tail)[..., : n - 1]
    n_real = mask.sum(1)
    choice = torch.arange(n - 1, device=scores.device)[None, :] < (n_real[:, None] - 1)
    choice = choice[:, None, :].expand(b, g, n - 1)
    return logp.reshape(b * g, n - 1), choice.reshape(b * g, n - 1)


def choice_entropy(scores: Tensor, mask: Tensor, rankings: Tensor, temperature: float = 1.0) -> Tensor:
    """Entropy of each sampled ranking's successive choices, summed over positions: ``[B*G]``.

    By the chain rule ``H(σ) = Σ_k E[H(σ_k | σ_<k)]``, so the mean over samples is an
    unbiased, low-variance estimate of the Plackett–Luce entropy (nats per ranking).
    """
    b, g, n = rankings.shape
    z = (scores.detach().float() / temperature).masked_fill(~mask, NEG)
    ordered = torch.gather(z[:, None, :].expand(b, g, n), 2, rankings)
    real = torch.gather(mask[:, None, :].expand(b, g, n), 2, rankings)
    # Remaining set at step k: positions k..n-1 of the ranking. Build [B, G, N(k), N(j)].
    j_after_k = torch.arange(n, device=z.device)[None, :] >= torch.arange(n, device=z.device)[:, None]
    remaining = j_after_k[None, None] & real[:, :, None, :]
    logits = ordered[:, :, None, :].masked_fill(~remaining, float("-inf"))
    logq = torch.log_softmax(logits.masked_fill(~remaining.any(-1, keepdim=True), 0.0), dim=-1)
    q = logq.exp()
    h = -(q * torch.where(remaining, logq, torch.zeros_like(logq))).sum(-1)
    h = torch.where(real, h, torch.zeros_like(h))
    return h.sum(-1).reshape(b * g)


def ranks_of(rankings: Tensor) -> Tensor:
    """0-based position of every document in each ranking: ``rank[b, g, rankings[b, g, k]] = k``."""
    pos = torch.arange(rankings.shape[-1], device=rankings.device).expand_as(rankings)
    return torch.empty_like(rankings).scatter_(-1, rankings, pos)


def ranking_rewards(
    rankings: Tensor, labels: Tensor, mask: Tensor, reward_type: str, k: int | None = None
) -> Tensor:
    """Reward of each sampled ranking ``[B*G]`` from the per-document rewards of the loss library.

    ``ndcg_based`` and ``recall_based`` sum the per-document shares (= NDCG, = recall@R);
    ``rank_based`` averages the per-document pair accuracies (= ROC-AUC for binary labels).
    """
    from rerankctl.losses.rl import compute_doc_level_rewards

    b, g, n = rankings.shape
    pseudo_scores = -ranks_of(rankings).float().reshape(b * g, n)  # higher = earlier
    lab = labels[:, None, :].expand(b, g, n).reshape(b * g, n).float()
    msk = mask[:, None, :].expand(b, g, n).reshape(b * g, n)
    per_doc = compute_doc_level_rewards(pseudo_scores, lab, reward_type, msk, k=k)
    if reward_type == "rank_based":
        return per_doc.sum(1) / msk.sum(1).clamp(min=1).to(per_doc.dtype)
    return per_doc.sum(1)


def rewards_to_go(
    rankings: Tensor, labels: Tensor, mask: Tensor, reward_type: str, k: int | None = None
) -> Tensor:
    """Reward still to be earned from each choice on: ``[B*G, N-1]``, position ``k`` = Σ of the
    per-document rewards of the documents placed at positions ``≥ k``.

    A document placed before position ``k`` has its reward fixed by then (for all three reward
    types its rank, and whom it is ranked above, no longer change), so crediting the choice at ``k``
    only with what comes after is the usual causality (reward-to-go) variance reduction. Position 0
    carries the whole ranking's reward (:func:`ranking_rewards`).
    """
    from rerankctl.losses.rl import compute_doc_level_rewards

    b, g, n = rankings.shape
    pseudo_scores = -ranks_of(rankings).float().reshape(b * g, n)
    lab = labels[:, None, :].expand(b, g, n).reshape(b * g, n).float()
    msk = mask[:, None, :].expand(b, g, n).reshape(b * g, n)
    per_doc = compute_doc_level_rewards(pseudo_scores, lab, reward_type, msk, k=k)
    if reward_type == "rank_based":
        per_doc = per_doc / msk.sum(1, keepdim=True).clamp(min=1).to(per_doc.dtype)
    in_order = torch.gather(per_doc, 1, rankings.reshape(b * g, n))
    return in_order.flip(-1).cumsum(-1).flip(-1)[:, : n - 1]


def greedy_rewards(
    scores: Tensor, labels: Tensor, mask: Tensor, reward_type: str, k: int | None = None
) -> Tensor:
    """Reward of the deterministic ranking (sort by score) per group ``[B]``: what inference gets."""
    order = torch.sort(
        scores.detach().float().masked_fill(~mask, float("-inf")), dim=1, descending=True, stable=True
    ).indices
    return ranking_rewards(order[:, None, :], labels, mask, reward_type, k)


def preference_pairs(
    labels: Tensor, mask: Tensor, max_pairs: int | None = None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(group, chosen, rejected) index triples: every pair of real documents with ``y_c > y_r``.

    With ``max_pairs``, at most that many pairs per group, drawn uniformly without replacement.
    """
    both = mask[:, :, None] & mask[:, None, :]
    better = both & (labels[:, :, None] > labels[:, None, :])
    group, chosen, rejected = better.nonzero(as_tuple=True)
    if max_pairs is not None and group.numel():
        keys = torch.rand(group.shape, generator=generator, device=group.device)
        order = torch.argsort(group.float() + keys * 0.5)  # random order within each group
        group, chosen, rejected = group[order], chosen[order], rejected[order]
        first = torch.ones_like(group, dtype=torch.bool)
        first[1:] = group[1:] != group[:-1]
        start = torch.cummax(
            torch.where(first, torch.arange(group.numel(), device=group.device), 0), 0
        ).values
        keep = (torch.arange(group.numel(), device=group.device) - start) < max_pairs
        group, chosen, rejected = group[keep], chosen[keep], rejected[keep]
    return group, chosen, rejected


def pair_logps(
    scores: Tensor, pairs: tuple[Tensor, Tensor, Tensor], temperature: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Log-probabilities of "chosen first" and "rejected first" under two-document Plackett–Luce."""
    group, chosen, rejected = pairs
    diff = (scores[group, chosen].float() - scores[group, rejected].float()) / temperature
    return torch.nn.functional.logsigmoid(diff), torch.nn.functional.logsigmoid(-diff)


# ------------------------------------------------------------------------------------ pointwise
# The original tool's policy: every document's yes/no judgement is an action of its own,
#
#     a_i ~ Bernoulli(p_i),   p_i = σ(s_i / τ),   log π(a_i) = log σ(±s_i / τ)
#
# (``+`` for "yes"). ``s_i`` is the yes − no logit, so ``log σ(s_i)`` is exactly the log-probability
# of "yes" under the two-token softmax. A rollout samples ``G`` judgements of every document; the
# ranking a rollout stands for puts its "yes" documents first, ties broken by independent uniform
# noise (so the document order of the data cannot leak into the reward). Each document's reward is a
# document-level reward of that ranking (``rank_based``, ``ndcg_based``, ``recall_based``) or of the
# judgement itself (``score_based``); its advantage is normalised over the ``G`` judgements of the
# same (query, document): a baseline that does not depend on the document's own action.


def sample_judgements(
    scores: Tensor,
    mask: Tensor,
    num_samples: int,
    temperature: float = 1.0,
    generators: list[torch.Generator] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``G`` yes/no judgements per document: ``(yes[B, G, N] bool, tie_break[B, G, N])``.

    One uniform decides each judgement (``u < p``), a second breaks ties within the "yes" and the
    "no" block of the ranking the rollout stands for. Padding is always "no".
    """
    b, n = scores.shape
    p = torch.sigmoid(scores.detach().float() / temperature)
    u = group_uniforms((b, 2 * num_samples, n), scores.device, generator, generators, mask)
    yes = (u[:, :num_samples] < p[:, None, :]) & mask[:, None, :]
    return yes, u[:, num_samples:]


def judgement_logp(
    scores: Tensor, mask: Tensor, yes: Tensor, temperature: float = 1.0
) -> tuple[Tensor, Tensor]:
    """``(logp[B*G*N], mask[B*G*N])``: log-probability of each sampled judgement, differentiable."""
    b, g, n = yes.shape
    z = scores.float()[:, None, :] / temperature
    logp = torch.nn.functional.logsigmoid(torch.where(yes, z, -z))
    real = mask[:, None, :].expand(b, g, n)
    return logp.reshape(-1), real.reshape(-1)


def judgement_entropy(scores: Tensor, mask: Tensor, temperature: float = 1.0) -> Tensor:
    """Bernoulli entropy of every real document's judgement ``[B, N]`` (0 at padding), nats."""
    z = scores.detach().float() / temperature
    p = torch.sigmoid(z)
    h = -(p * torch.nn.functional.logsigmoid(z) + (1 - p) * torch.nn.functional.logsigmoid(-z))
    return torch.where(mask, h, torch.zeros_like(h))


def judgement_rankings(yes: Tensor, tie_break: Tensor, mask: Tensor) -> Tensor:
    """The ranking each rollout stands for ``[B, G, N]``: "yes" documents first, random ties."""
    keys = (yes.float() + 0.5 * tie_break).masked_fill(~mask[:, None, :], float("-inf"))
    return torch.sort(keys, dim=-1, descending=True, stable=True).indices


def judgement_doc_rewards(
    yes: Tensor, tie_break: Tensor, labels: Tensor, mask: Tensor, reward_type: str, k: int | None = None
) -> Tensor:
    """Per-document reward of every sampled judgement ``[B, G, N]`` (0 at padding)."""
    from rerankctl.losses.rl import compute_doc_level_rewards, judgement_rewards

    if reward_type == "score_based":
        return judgement_rewards(yes, labels, mask)
    b, g, n = yes.shape
    rankings = judgement_rankings(yes, tie_break, mask)
    pseudo = -ranks_of(rankings).float().reshape(b * g, n)
    lab = labels[:, None, :].expand(b, g, n).reshape(b * g, n).float()
    msk = mask[:, None, :].expand(b, g, n).reshape(b * g, n)
    return compute_doc_level_rewards(pseudo, lab, reward_type, msk, k=k).reshape(b, g, n)


def judgement_ranking_rewards(
    yes: Tensor, tie_break: Tensor, labels: Tensor, mask: Tensor, reward_type: str, k: int | None = None
) -> Tensor:
    """Reward of the ranking each rollout stands for ``[B*G]`` (for logging beside Plackett–Luce's)."""
    if reward_type == "score_based":
        per_doc = judgement_doc_rewards(yes, tie_break, labels, mask, reward_type, k)
        return (per_doc.sum(-1) / mask.sum(-1, keepdim=True).clamp(min=1)).reshape(-1)
    return ranking_rewards(judgement_rankings(yes, tie_break, mask), labels, mask, reward_type, k)
