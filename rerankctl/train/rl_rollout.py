"""Rollouts of :class:`rerankctl.train.rl.RLTrainer`: sampling, rewards, advantages, stored actions.

A rollout samples ``num_samples`` actions per query group from the detached scores — Plackett-Luce
rankings or pointwise yes/no judgements (:mod:`rerankctl.train.rl_policy`) — rewards them,
turns the rewards into group-normalised advantages and stores what the ``num_iterations``
updates on it need (:class:`Rollout`). The policies, credit assignment and advantage scaling are
described in the docstring of :mod:`rerankctl.train.rl`; this module is the mixin that implements
them, split out of the trainer to keep each file about one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rerankctl.losses.rl import (
    compute_doc_level_advantages,
    compute_doc_level_rewards,
    dapo_dynamic_sampling_mask,
)
from rerankctl.train.rl_policy import (
    choice_entropy,
    greedy_rewards,
    judgement_doc_rewards,
    judgement_entropy,
    judgement_logp,
    judgement_ranking_rewards,
    ranking_logp,
    ranking_rewards,
    rewards_to_go,
    sample_judgements,
    sample_rankings,
)


@dataclass
@dataclass
class Rollout:
    """One micro-batch's stored rollout: what the μ updates on it need (no tensor carries grad)."""

    record_index: torch.Tensor  # [B] which groups; checked when the sampler serves them again
    actions: tuple  # (rankings,) for Plackett-Luce; (yes, tie_break) for pointwise
    old_logp: torch.Tensor  # [M, T] per-action log-probs under the rollout policy
    token_mask: torch.Tensor  # [M, T] real actions that enter the loss (dynamic sampling applied)
    advantages: torch.Tensor  # [M] or [M, T]
    ref_logp: torch.Tensor | None
    stats: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] | None = None  # the batch the rollout was made on (after any refill)


class RolloutMixin:
    """Sampling, rewards and :meth:`make_rollout` of :class:`rerankctl.train.rl.RLTrainer`.

    Reads the trainer's ``policy``, ``num_samples``, ``temperature``, ``reward_type``,
    ``reward_k``, ``scale_rewards``, ``credit``, ``loss_type``, ``dapo_dynamic_sampling``,
    ``args.seed`` and ``state.global_step``.
    """

    def group_generators(self, record_index: torch.Tensor, device: torch.device) -> list[torch.Generator]:
        """One generator per group, seeded by (seed, global step, record index).

        A group's samples then depend on nothing else: not on its batch mates, the rank, the
        world size, chunking, dropout's use of the global RNG, resuming or a refill.
        """
        step = self.state.global_step
        gens = []
        for pos, rec in enumerate(record_index.tolist()):
            rec = int(rec) if rec >= 0 else 10**9 + pos  # groups without an index (hand-built batches)
            seed = ((self.args.seed * 1_000_003 + step) * 1_000_033 + rec) % (2**63)
            gens.append(torch.Generator(device=device).manual_seed(seed))
        return gens

    def _sample(self, scores: torch.Tensor, inputs: dict[str, Any]) -> tuple:
        mask = inputs["mask"]
        record = inputs.get("record_index")
        if record is None:
            record = torch.full((mask.shape[0],), -1, dtype=torch.long)
        gens = self.group_generators(record, scores.device)
        if self.policy == "pointwise":
            return sample_judgements(scores, mask, self.num_samples, self.temperature, generators=gens)
        return (sample_rankings(scores, mask, self.num_samples, self.temperature, generators=gens),)

    def _sample_rewards(
        self, scores: torch.Tensor, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards, group ids) of a fresh sample, in the layout dynamic sampling checks."""
        actions = self._sample(scores, inputs)
        labels, mask = inputs["labels"].float(), inputs["mask"]
        b = scores.shape[0]
        if self.policy == "pointwise":
            r = judgement_doc_rewards(*actions, labels, mask, self.reward_type, self.reward_k)
            return r, torch.arange(b, device=r.device)[:, None, None].expand_as(r)
        r = ranking_rewards(actions[0], labels, mask, self.reward_type, self.reward_k)
        return r, torch.arange(b, device=r.device).repeat_interleave(self.num_samples)

    def action_logp(self, scores: torch.Tensor, mask: torch.Tensor, actions: tuple) -> torch.Tensor:
        """Per-action log-probabilities ``[M, T]`` of stored actions under ``scores`` (differentiable)."""
        if self.policy == "pointwise":
            return judgement_logp(scores, mask, actions[0], self.temperature)[0][:, None]
        return ranking_logp(scores, mask, actions[0], self.temperature)[0]

    @torch.no_grad()
    def make_rollout(self, scores: torch.Tensor, ref: torch.Tensor | None, inputs: dict[str, Any]) -> Rollout:
        """Sample actions from ``scores`` (detached) and store everything the updates need."""
        scores = scores.detach()
        mask, labels = inputs["mask"], inputs["labels"].float()
        b, g, dev = scores.shape[0], self.num_samples, scores.device
        actions = self._sample(scores, inputs)
        stats: dict[str, float] = {}
        if self.policy == "pointwise":
            yes, tie = actions
            logp, real = judgement_logp(scores, mask, yes, self.temperature)
            doc_rewards = judgement_doc_rewards(yes, tie, labels, mask, self.reward_type, self.reward_k)
            # Baseline per (query, document) over its G judgements: it ignores the document's own action.
            doc_groups = torch.arange(b * mask.shape[1], device=dev).reshape(b, 1, -1).expand_as(yes)
            advantages = compute_doc_level_advantages(
                doc_rewards.reshape(-1).float(), doc_groups.reshape(-1), scale=self.scale_rewards, mask=real
            )
            kept = real.clone()
            if self.loss_type == "dapo" and self.dapo_dynamic_sampling:
                kept &= dapo_dynamic_sampling_mask(
                    doc_rewards.reshape(-1).float(),
                    torch.arange(b, device=dev)[:, None, None].expand_as(yes).reshape(-1),
                )
            old_logp, token_mask = logp[:, None], kept[:, None]
            seq_rewards = judgement_ranking_rewards(yes, tie, labels, mask, self.reward_type, self.reward_k)
            adv_groups = torch.arange(b, device=dev)[:, None, None].expand_as(yes).reshape(-1)
            entropy = judgement_entropy(scores, mask, self.temperature).sum() / mask.sum().clamp(min=1)
            stats["yes_fraction"] = float(yes[mask[:, None, :].expand_as(yes)].float().mean())
        else:
            (rankings,) = actions
            old_logp, choice = ranking_logp(scores, mask, rankings, self.temperature)
            seq_rewards = ranking_rewards(rankings, labels, mask, self.reward_type, self.reward_k)
            group_ids = torch.arange(b, device=dev).repeat_interleave(g)
            kept_seq = torch.ones_like(seq_rewards, dtype=torch.bool)
            if self.loss_type == "dapo" and self.dapo_dynamic_sampling:
                kept_seq = dapo_dynamic_sampling_mask(seq_rewards, group_ids)
            token_mask = choice & kept_seq[:, None]
            if self.credit == "reward_to_go":
                # Advantages normalised over the G rankings of a query at the same position.
                width = choice.shape[1]
                togo = rewards_to_go(rankings, labels, mask, self.reward_type, self.reward_k).float()
                slots = group_ids[:, None] * width + torch.arange(width, device=dev)[None, :]
                advantages = compute_doc_level_advantages(togo, slots, scale=self.scale_rewards, mask=choice)
                adv_groups = group_ids[:, None].expand(-1, width).reshape(-1)
            else:
                advantages = compute_doc_level_advantages(
                    seq_rewards.float(), group_ids, scale=self.scale_rewards
                )
                adv_groups = group_ids
            entropy = choice_entropy(scores, mask, rankings, self.temperature).mean()
        ref_logp = self.action_logp(ref, mask, actions) if ref is not None else None
        flat_adv = advantages.reshape(-1)
        flat_mask = (
            token_mask.reshape(-1)
            if advantages.dim() > 1 or self.policy == "pointwise"
            else token_mask.any(1)
        )
        group_sums = torch.zeros(b, dtype=torch.float64, device=dev)
        group_sums.index_add_(0, adv_groups, flat_adv.double())
        if self.reward_type == "score_based":
            greedy = compute_doc_level_rewards(scores, labels, "score_based", mask).sum(1) / mask.sum(1)
        else:
            greedy = greedy_rewards(scores, labels, mask, self.reward_type, self.reward_k)
        sel = flat_adv[flat_mask] if flat_mask.any() else flat_adv.new_zeros(1)
        stats.update(
            {
                "reward_mean": float(seq_rewards.float().mean()),
                "reward_std": float(seq_rewards.float().std(unbiased=False)),
                "reward_greedy": float(greedy.mean()),
                "advantage_mean": float(sel.mean()),
                "advantage_std": float(sel.float().std(unbiased=False)),
                "advantage_abs_mean": float(sel.abs().mean()),
                "advantage_group_sum_max": float(group_sums.abs().max()),
                "entropy": float(entropy),
                "kept_fraction": float(token_mask.any(1).float().mean())
                if self.policy != "pointwise"
                else float(token_mask.sum() / max(int(real.sum()), 1)),
            }
        )
        stats.update(getattr(self, "_refill_stats", {}) or {})
        self._refill_stats = {}
        return Rollout(
            record_index=inputs.get("record_index", torch.full((b,), -1)).detach().cpu(),
            actions=actions,
            old_logp=old_logp,
            token_mask=token_mask,
            advantages=advantages,
            ref_logp=ref_logp,
            stats=stats,
        )
