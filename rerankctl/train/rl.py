"""`RLTrainer`: GRPO, DAPO, Dr.GRPO and DPO for a pointwise yes/no reranker after SFT.

The policy (stated exactly)
---------------------------
For a query ``q`` with documents ``d_1..d_n`` the reranker's scores are
``s_i = logit_yes(q, d_i) − logit_no(q, d_i)`` (one scoring pass; no text is generated). The
policy is **Plackett–Luce over the scores** at temperature ``τ``::

    π_θ(σ | q) = Π_{k=1}^{n−1}  exp(s_{σ_k}/τ) / Σ_{j ≥ k} exp(s_{σ_j}/τ)

A rollout samples ``G = num_samples`` rankings per query (Gumbel-max on ``s/τ``); the reward of
a ranking is a ranking metric of it (``reward_type``: ``ndcg_based`` = NDCG, ``recall_based`` =
recall@R, ``rank_based`` = ROC-AUC, from :func:`rerankctl.losses.rl.compute_doc_level_rewards`).
The ``n − 1`` successive choices of a ranking are its "tokens": ``logp``, ``old_logp`` and
``ref_logp`` are the per-choice log-probabilities of the *same sampled ranking* under the
current scores, the rollout scores and the reference scores (:mod:`rerankctl.train.rl_policy`).

Why Plackett–Luce and not per-document Bernoulli yes/no: the rewards are ranking metrics, and
under Plackett–Luce the sampled action *is* a ranking, so the reward is exactly the reward of
the action (a Bernoulli judgement per document does not determine a ranking, so a ranking
reward would not be a function of the sampled action). It is parameterised by nothing but the
scores the deployed reranker sorts by (its mode is the deployed ranking, and ``τ → 0`` gives it),
sampling ``G`` rankings costs no extra forward pass, and — since the loss depends on the model
only through the ``n`` scores — the exact chunked backward of SFT
(:func:`rerankctl.train.chunked.chunked_backward`) bounds activation memory for any group size.

Advantages are group-normalised over the ``G`` rankings of a query
(:func:`compute_doc_level_advantages`; ``scale="group"`` for GRPO/DAPO, ``"none"`` for Dr.GRPO),
so they sum to zero within every query. With ``credit="ranking"`` every choice of a ranking
gets the ranking's advantage (GRPO's sequence-level credit); with ``credit="reward_to_go"``
(default) the choice at position ``k`` is credited with the reward of the documents placed at
``k`` and after (:func:`rerankctl.train.rl_policy.rewards_to_go`; earlier placements are fixed
by then), normalised over the ``G`` rankings of the query at the same position (the causality trick of
REINFORCE: lower variance, with the same group-mean baseline caveat as GRPO), still summing to
zero within every query. The KL penalty is Schulman's k3 per choice between
the policy and the reference, the same model with the RL adapter disabled
(``model.disable_adapter()``; never a second copy). Each rollout is used for one update
(on-policy, TRL's default), so ``old_logp = logp.detach()``: the ratio is 1 and the clip is
inactive at the update itself; the clip statistics are still logged.

DPO uses no rollouts: pairs (more relevant ``c``, less relevant ``r``) within a group, with
``log π(c ≻ r) = log σ((s_c − s_r)/τ)`` (two-document Plackett–Luce) against the reference.

At step 0 the RL adapter is zero (peft initialises ``lora_B = 0``), so policy = reference:
the KL is 0 and the DPO loss is ``log 2``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from rerankctl.losses.rl import (
    compute_doc_level_advantages,
    dapo_dynamic_sampling_mask,
    dapo_loss,
    dpo_loss,
    dr_grpo_loss,
    grpo_loss,
    kl_penalty,
)
from rerankctl.train.chunked import scatter_scores
from rerankctl.train.rl_policy import (
    choice_entropy,
    greedy_rewards,
    pair_logps,
    preference_pairs,
    ranking_logp,
    ranking_rewards,
    rewards_to_go,
    sample_rankings,
)
from rerankctl.train.sft import ContrastiveSFTTrainer

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "dpo")


class RLTrainer(ContrastiveSFTTrainer):
    """A `Trainer` whose step is an RL policy loss over Plackett–Luce rankings of yes/no scores.

    Args:
        loss_type: ``grpo``, ``dapo``, ``dr_grpo`` or ``dpo``.
        reward_type: ``rank_based``, ``ndcg_based`` or ``recall_based``.
        kl_coef: weight of the k3 KL penalty to the reference policy (grpo/dapo/dr_grpo).
        kl_kind: KL estimator (``k3``, ``k1``, ``k2``).
        num_samples: rankings sampled per query (the group of group-normalised advantages).
        temperature: ``τ`` of the policy.
        clip_eps, clip_eps_high: PPO clip (DAPO uses ``[1 − clip_eps, 1 + clip_eps_high]``).
        dapo_dynamic_sampling: DAPO: leave out queries whose sampled rankings all tie in reward.
        dpo_beta, dpo_loss_type, dpo_max_pairs: DPO settings.
        log_reference_kl: compute the reference scores (one no-grad pass) every step even when
            ``kl_coef`` is 0, so the KL to the SFT model is logged.
        yes_id, no_id, chunk_size, eval_groups, prompt_tokenizer, eval_batch_size: as
            :class:`ContrastiveSFTTrainer`. The model must be a peft model (``disable_adapter``).
    """

    def __init__(
        self,
        *args: Any,
        loss_type: str = "dapo",
        reward_type: str = "ndcg_based",
        kl_coef: float = 0.0,
        kl_kind: str = "k3",
        num_samples: int = 16,
        temperature: float = 1.0,
        clip_eps: float = 0.2,
        clip_eps_high: float = 0.28,
        dapo_dynamic_sampling: bool = True,
        dpo_beta: float = 0.1,
        dpo_loss_type: str = "sigmoid",
        dpo_max_pairs: int | None = None,
        log_reference_kl: bool = True,
        credit: str = "reward_to_go",
        **kwargs: Any,
    ) -> None:
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
        super().__init__(*args, loss_fn=None, **kwargs)
        if not hasattr(self.model, "disable_adapter"):
            raise TypeError(
                "RLTrainer needs a peft model: the reference is the model with its adapter disabled"
            )
        self.loss_type = loss_type
        self.reward_type = reward_type
        self.kl_coef = kl_coef
        self.kl_kind = kl_kind
        self.num_samples = num_samples
        self.temperature = temperature
        self.clip_eps = clip_eps
        self.clip_eps_high = clip_eps_high
        self.dapo_dynamic_sampling = dapo_dynamic_sampling
        self.dpo_beta = dpo_beta
        self.dpo_loss_type = dpo_loss_type
        self.dpo_max_pairs = dpo_max_pairs
        self.log_reference_kl = log_reference_kl
        if credit not in ("ranking", "reward_to_go"):
            raise ValueError(f"credit must be 'ranking' or 'reward_to_go', got {credit!r}")
        self.credit = credit
        # The loss is a mean over this micro-batch: let the Trainer divide by the accumulation steps.
        self.model_accepts_loss_kwargs = False
        self._stat_sums: dict[str, float] = defaultdict(float)
        self._stat_counts: dict[str, int] = defaultdict(int)
        self.last_stats: dict[str, float] = {}
        self._rollout_key: tuple[int, int] = (-1, 0)

    def rollout_generator(self, device: torch.device) -> torch.Generator:
        """A generator seeded by (seed, global step, micro-batch, rank) for the rollouts.

        Rollouts then do not depend on dropout's use of the global RNG, on chunking, or on
        whether the run was resumed: the same step samples the same rankings.
        """
        step, micro = self._rollout_key
        micro = micro + 1 if step == self.state.global_step else 0
        self._rollout_key = (self.state.global_step, micro)
        seed = (
            (self.args.seed * 1_000_003 + self.state.global_step) * 1009 + micro
        ) * 131 + self.args.process_index
        return torch.Generator(device=device).manual_seed(seed % (2**63))

    # ---------------------------------------------------------------- the reference policy
    @property
    def needs_reference(self) -> bool:
        return self.loss_type == "dpo" or self.kl_coef > 0 or self.log_reference_kl

    @torch.no_grad()
    def reference_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores of the reference policy: the same weights with the RL adapter disabled."""
        model = self.accelerator.unwrap_model(self.model)
        step = self.chunk_size or input_ids.shape[0]
        pieces = []
        with model.disable_adapter(), self.compute_loss_context_manager():
            for start in range(0, input_ids.shape[0], step):
                ids = input_ids[start : start + step]
                attn = attention_mask[start : start + step]
                pieces.append(self.score_rows(model, ids, attn).float())
        return torch.cat(pieces)

    # ---------------------------------------------------------------- the loss
    def group_loss(self, row_scores: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        """RL loss of one micro-batch from its row scores (called once per step, chunked or not)."""
        loss, stats = self.rl_loss(row_scores, inputs)
        self._record(stats)
        return loss

    def rl_loss(
        self, row_scores: torch.Tensor, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        mask = inputs["mask"]
        labels = inputs["labels"].float()
        scores = scatter_scores(row_scores.float(), mask)
        ref = None
        if self.needs_reference:
            ref_rows = self.reference_scores(inputs["input_ids"], inputs["attention_mask"])
            ref = scatter_scores(ref_rows, mask)
        if self.loss_type == "dpo":
            return self._dpo(scores, ref, labels, mask)
        return self._policy_gradient(scores, ref, labels, mask)

    def _policy_gradient(self, scores, ref, labels, mask) -> tuple[torch.Tensor, dict[str, float]]:
        b, g, tau = scores.shape[0], self.num_samples, self.temperature
        rankings = sample_rankings(scores, mask, g, tau, generator=self.rollout_generator(scores.device))
        logp, choice = ranking_logp(scores, mask, rankings, tau)
        rewards = ranking_rewards(rankings, labels, mask, self.reward_type)
        group_ids = torch.arange(b, device=scores.device).repeat_interleave(g)
        scale = "none" if self.loss_type == "dr_grpo" else "group"
        ref_logp = ranking_logp(ref, mask, rankings, tau)[0].detach() if ref is not None else None
        kept = torch.ones_like(rewards, dtype=torch.bool)
        if self.loss_type == "dapo" and self.dapo_dynamic_sampling:
            kept = dapo_dynamic_sampling_mask(rewards, group_ids)
        loss_mask = choice & kept[:, None]
        if self.credit == "reward_to_go":
            # One entry per (ranking, position): advantages normalised over the G rankings of a query
            # at the same position, so they still sum to zero within every query.
            width = choice.shape[1]
            togo = rewards_to_go(rankings, labels, mask, self.reward_type).float()
            slots = group_ids[:, None] * width + torch.arange(width, device=scores.device)[None, :]
            advantages = compute_doc_level_advantages(togo, slots, scale=scale, mask=choice)
            logp, loss_mask, advantages = logp.reshape(-1), loss_mask.reshape(-1), advantages.reshape(-1)
            ref_logp = ref_logp.reshape(-1) if ref_logp is not None else None
            adv_groups = group_ids[:, None].expand(-1, width).reshape(-1)
        else:
            advantages = compute_doc_level_advantages(rewards.float(), group_ids, scale=scale)
            adv_groups = group_ids
        old_logp = logp.detach()  # on-policy: the rollout policy is the current one
        common = dict(ref_logp=ref_logp if self.kl_coef else None, kl_coef=self.kl_coef, kl_kind=self.kl_kind)
        if self.loss_type == "grpo":
            loss, stats = grpo_loss(logp, old_logp, advantages, loss_mask, clip_eps=self.clip_eps, **common)
        elif self.loss_type == "dapo":
            loss, stats = dapo_loss(
                logp,
                old_logp,
                advantages,
                loss_mask,
                eps_low=self.clip_eps,
                eps_high=self.clip_eps_high,
                aggregation="token",
                **common,
            )
        else:
            loss, stats = dr_grpo_loss(
                logp, old_logp, advantages, loss_mask, clip_eps=self.clip_eps, **common
            )
        choice = choice.reshape(logp.shape)
        with torch.no_grad():
            group_sums = torch.zeros(b, dtype=torch.float64, device=scores.device)
            group_sums.index_add_(0, adv_groups, advantages.double())
            out = {
                "loss": stats["loss"],
                "reward_mean": float(rewards.mean()),
                "reward_std": float(rewards.float().std(unbiased=False)),
                "reward_greedy": float(greedy_rewards(scores, labels, mask, self.reward_type).mean()),
                "advantage_mean": float(advantages[loss_mask].mean()) if loss_mask.any() else 0.0,
                "advantage_std": float(advantages[loss_mask].float().std(unbiased=False))
                if loss_mask.any()
                else 0.0,
                "advantage_abs_mean": float(advantages[loss_mask].abs().mean()) if loss_mask.any() else 0.0,
                "advantage_group_sum_max": float(group_sums.abs().max()),
                "entropy": float(choice_entropy(scores, mask, rankings, tau).mean()),
                "clip_fraction": stats["clip_fraction"],
                "ratio_mean": stats["ratio_mean"],
                "approx_kl": stats["approx_kl"],
                "kept_fraction": float(kept.float().mean()),
            }
            if ref_logp is not None:
                kl = kl_penalty(logp.detach(), ref_logp, kind=self.kl_kind)
                out["kl"] = float(
                    torch.where(choice, kl, torch.zeros_like(kl)).sum() / choice.sum().clamp(min=1)
                )
        return loss, out

    def _dpo(self, scores, ref, labels, mask) -> tuple[torch.Tensor, dict[str, float]]:
        gen = self.rollout_generator(scores.device) if self.dpo_max_pairs else None
        pairs = preference_pairs(labels, mask, self.dpo_max_pairs, generator=gen)
        if pairs[0].numel() == 0:  # no group has two different labels: nothing to prefer
            return scores.sum() * 0.0, {"loss": 0.0, "pairs": 0.0}
        pc, pr = pair_logps(scores, pairs, self.temperature)
        rc, rr = pair_logps(ref, pairs, self.temperature)
        loss, stats = dpo_loss(pc, pr, rc, rr, beta=self.dpo_beta, loss_type=self.dpo_loss_type)
        with torch.no_grad():
            # Exact KL between the two-document policies (Bernoulli over the pair's order).
            p, q = pc.detach().exp(), rc.exp()
            kl = p * (pc.detach() - rc) + (1 - p) * (pr.detach() - rr)
            stats.update(
                {
                    "kl": float(kl.mean()),
                    "pairs": float(pairs[0].numel()),
                    "pair_accuracy": float((p > 0.5).float().mean()),
                    "reference_pair_accuracy": float((q > 0.5).float().mean()),
                }
            )
        return loss, stats

    # ---------------------------------------------------------------- logging
    def _record(self, stats: dict[str, float]) -> None:
        self.last_stats = dict(stats)
        for key, value in stats.items():
            if key == "loss":
                continue
            self._stat_sums[key] += float(value)
            self._stat_counts[key] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._stat_counts:
            for key, total in self._stat_sums.items():
                logs[key] = round(total / max(self._stat_counts[key], 1), 6)
            self._stat_sums.clear()
            self._stat_counts.clear()
        super().log(logs, start_time)
