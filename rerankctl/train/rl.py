"""`RLTrainer`: GRPO, DAPO, Dr.GRPO, REINFORCE and DPO for a yes/no reranker after SFT.

The policies (stated exactly)
-----------------------------
Two policies share the scores: ``--policy plackett-luce`` (below) and ``--policy pointwise``, the
original tool's Bernoulli yes/no judgement of every document (:mod:`rerankctl.train.rl_policy`).

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
(``model.disable_adapter()``; never a second copy).

Rollouts reused (``num_iterations`` μ, TRL's name)
--------------------------------------------------
A rollout is what one optimizer step's micro-batches hold (``steps_per_rollout`` optimizer steps'
worth with mini-batches of ``batch_size`` groups). Its sampled actions, their log-probabilities
under the rollout policy (``old_logp``), the reference log-probabilities and the advantages are
stored (:class:`rerankctl.train.rl_rollout.Rollout`, made by
:meth:`~rerankctl.train.rl_rollout.RolloutMixin.make_rollout`); the sampler
(:class:`rerankctl.train.rl_data.RolloutRepeatSampler`) serves the same groups μ times, and each
pass is ``steps_per_rollout`` optimizer steps on the stored rollout, so the ratio
``ρ = π_θ / π_old`` moves away from 1 after the first update and the clip does its work. On the
first pass ``old_logp`` is the detached log-probability of the very forward pass that is
differentiated (ratio exactly 1), so ``μ = 1`` is the plain on-policy update.

All scoring goes through :meth:`RLTrainer.score_rows` (policy, rollout and reference) and every
group's samples come from its own generator seeded by (seed, global step, record index), so a
group's rollout does not depend on its batch mates, on the world size or on a refill.

DAPO's dynamic sampling refills: groups whose ``G`` rewards are all equal are dropped and further
groups are drawn from the training data (a seeded pass of its own) and scored until the batch
holds ``batch_size`` groups with reward variance, or ``dynamic_sampling_max_draws`` extra batches
were scored (:mod:`rerankctl.train.rl_refill`).

DPO uses no rollouts: pairs (more relevant ``c``, less relevant ``r``) within a group, with
``log π(c ≻ r) = log σ((s_c − s_r)/τ)`` (two-document Plackett–Luce) against the reference
(or, with ``dpo_reference_free``, against nothing: reference log-probabilities 0).

At step 0 the RL adapter is zero (peft initialises ``lora_B = 0``), so policy = reference:
the KL is 0 and the DPO loss is ``log 2``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import torch

from rerankctl.losses.rl import (
    dapo_loss,
    dpo_loss,
    dr_grpo_loss,
    grpo_loss,
    kl_penalty,
    reinforce_loss,
)
from rerankctl.train.chunked import scatter_scores
from rerankctl.train.rl_policy import pair_logps, preference_pairs, ranking_logp
from rerankctl.train.rl_refill import DynamicSamplingMixin
from rerankctl.train.rl_rollout import Rollout, RolloutMixin
from rerankctl.train.sft import ContrastiveSFTTrainer

log = logging.getLogger(__name__)

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "reinforce", "dpo")
POLICIES = ("plackett-luce", "pointwise")

__all__ = ["LOSS_TYPES", "POLICIES", "RLTrainer", "Rollout"]


class RLTrainer(RolloutMixin, DynamicSamplingMixin, ContrastiveSFTTrainer):
    """A `Trainer` whose step is an RL policy loss over the yes/no scores (see module docstring).

    Args:
        loss_type: ``grpo``, ``dapo``, ``dr_grpo``, ``reinforce`` or ``dpo``.
        policy: ``plackett-luce`` (rankings) or ``pointwise`` (yes/no per document).
        reward_type: ``rank_based``, ``ndcg_based``, ``recall_based`` or ``score_based`` (pointwise).
        reward_k: cut-off of the NDCG / recall rewards (``None`` = whole list / R).
        scale_rewards: ``group``, ``batch`` or ``none`` (``None`` = the loss's own: none for dr_grpo).
        kl_coef, kl_kind: weight and estimator of the KL penalty to the reference.
        num_samples: samples per query (the group of group-normalised advantages).
        temperature: ``τ`` of the policy.
        clip_eps, clip_eps_high: PPO clip (DAPO uses ``[1 − clip_eps, 1 + clip_eps_high]``).
        num_iterations: μ, optimisation passes over every stored rollout.
        steps_per_rollout: optimizer steps one pass over a rollout takes.
        dapo_dynamic_sampling: DAPO: replace groups whose samples all tie in reward.
        dynamic_sampling_max_draws: extra batches a refill may score before it gives up.
        dpo_beta, dpo_loss_type, dpo_max_pairs, dpo_reference_free: DPO settings.
        log_reference_kl: score the reference every step to log the KL even at ``kl_coef`` 0.
        credit: Plackett-Luce credit, ``reward_to_go`` or ``ranking``.
        yes_id, no_id, chunk_size, eval_groups, prompt_tokenizer, eval_batch_size: as
            :class:`ContrastiveSFTTrainer`. The model must be a peft model (``disable_adapter``).
    """

    def __init__(
        self,
        *args: Any,
        loss_type: str = "dapo",
        policy: str = "plackett-luce",
        reward_type: str = "ndcg_based",
        reward_k: int | None = None,
        scale_rewards: str | None = None,
        kl_coef: float = 0.0,
        kl_kind: str = "k3",
        num_samples: int = 16,
        temperature: float = 1.0,
        clip_eps: float = 0.2,
        clip_eps_high: float = 0.28,
        num_iterations: int = 1,
        steps_per_rollout: int = 1,
        dapo_dynamic_sampling: bool = True,
        dynamic_sampling_max_draws: int = 4,
        dpo_beta: float = 0.1,
        dpo_loss_type: str = "sigmoid",
        dpo_max_pairs: int | None = None,
        dpo_reference_free: bool = False,
        log_reference_kl: bool = True,
        credit: str = "reward_to_go",
        **kwargs: Any,
    ) -> None:
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if credit not in ("ranking", "reward_to_go"):
            raise ValueError(f"credit must be 'ranking' or 'reward_to_go', got {credit!r}")
        if reward_type == "score_based" and policy != "pointwise":
            raise ValueError("reward_type score_based rewards yes/no judgements: use policy 'pointwise'")
        if loss_type == "reinforce" and num_iterations > 1:
            raise ValueError("reinforce has no importance ratio: it is only right with num_iterations 1")
        super().__init__(*args, loss_fn=None, **kwargs)
        if not hasattr(self.model, "disable_adapter"):
            raise TypeError(
                "RLTrainer needs a peft model: the reference is the model with its adapter disabled"
            )
        self.loss_type = loss_type
        self.policy = policy
        self.reward_type = reward_type
        self.reward_k = reward_k
        self.scale_rewards = scale_rewards or ("none" if loss_type == "dr_grpo" else "group")
        self.kl_coef = kl_coef
        self.kl_kind = kl_kind
        self.num_samples = num_samples
        self.temperature = temperature
        self.clip_eps = clip_eps
        self.clip_eps_high = clip_eps_high
        self.num_iterations = num_iterations
        self.steps_per_rollout = steps_per_rollout
        self.dapo_dynamic_sampling = dapo_dynamic_sampling
        self.dynamic_sampling_max_draws = dynamic_sampling_max_draws
        self.dpo_beta = dpo_beta
        self.dpo_loss_type = dpo_loss_type
        self.dpo_max_pairs = dpo_max_pairs
        self.dpo_reference_free = dpo_reference_free
        self.log_reference_kl = log_reference_kl
        self.credit = credit
        # The loss is a mean over this micro-batch: let the Trainer divide by the accumulation steps.
        self.model_accepts_loss_kwargs = False
        self._stat_sums: dict[str, float] = defaultdict(float)
        self._stat_counts: dict[str, int] = defaultdict(int)
        self.last_stats: dict[str, float] = {}
        self._rollout_key: tuple[int, int] = (-1, 0)
        self._micro_key: tuple[int, int] = (-1, -1)
        self._rollouts: dict[int, Rollout] = {}
        self._active: tuple[int, Rollout | None] | None = None
        self._refill_iter: Any = None

    # ---------------------------------------------------------------- randomness
    def rollout_generator(self, device: torch.device) -> torch.Generator:
        """A generator seeded by (seed, global step, micro-batch) (DPO's pair sub-sampling)."""
        step, micro = self._rollout_key
        micro = micro + 1 if step == self.state.global_step else 0
        self._rollout_key = (self.state.global_step, micro)
        seed = (self.args.seed * 1_000_003 + self.state.global_step) * 1009 + micro
        return torch.Generator(device=device).manual_seed(seed % (2**63))

    # ---------------------------------------------------------------- the reference policy
    @property
    def needs_reference(self) -> bool:
        if self.loss_type == "dpo":
            return not self.dpo_reference_free
        return self.kl_coef > 0 or self.log_reference_kl

    @torch.no_grad()
    def scores_no_grad(
        self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """``score_rows`` without autograd, ``chunk_size`` rows at a time."""
        step = self.chunk_size or input_ids.shape[0]
        pieces = []
        with self.compute_loss_context_manager():
            for start in range(0, input_ids.shape[0], step):
                ids = input_ids[start : start + step]
                attn = attention_mask[start : start + step]
                pieces.append(self.score_rows(model, ids, attn).float())
        return torch.cat(pieces) if pieces else torch.zeros(0, device=input_ids.device)

    @torch.no_grad()
    def reference_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores of the reference policy: the same weights with the RL adapter disabled."""
        model = self.accelerator.unwrap_model(self.model)
        with model.disable_adapter():
            return self.scores_no_grad(model, input_ids, attention_mask)

    # ---------------------------------------------------------------- rollout reuse
    @property
    def rollout_micro_batches(self) -> int:
        return self.args.gradient_accumulation_steps * self.steps_per_rollout

    def _get_train_sampler(self, train_dataset=None):
        """With μ > 1, serve every rollout's groups μ times in a row (:class:`RolloutRepeatSampler`)."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.num_iterations == 1 or self.loss_type == "dpo" or not hasattr(dataset, "__len__"):
            return super()._get_train_sampler(train_dataset)
        from rerankctl.train.rl_data import RolloutRepeatSampler

        chunk = self.args.per_device_train_batch_size * self.rollout_micro_batches * self.args.world_size
        if len(dataset) < chunk:
            raise ValueError(f"{len(dataset)} training groups cannot fill one rollout of {chunk} groups")
        return RolloutRepeatSampler(len(dataset), chunk, self.num_iterations, seed=self.args.seed)

    def _cycle_position(self) -> tuple[int, int]:
        """(slot of this micro-batch in its rollout, pass over the rollout 0..μ−1)."""
        step = self.state.global_step
        micro = self._micro_key[1] + 1 if self._micro_key[0] == step else 0
        self._micro_key = (step, micro)
        cycle = step % (self.num_iterations * self.steps_per_rollout)
        passes, step_in_pass = divmod(cycle, self.steps_per_rollout)
        return step_in_pass * self.args.gradient_accumulation_steps + micro, passes

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.loss_type == "dpo":
            self._active = None
            return super().training_step(model, inputs, num_items_in_batch)
        slot, passes = self._cycle_position()
        stored = self._rollouts.get(slot) if passes > 0 else None
        if stored is not None and stored.inputs is not None:
            served = inputs.get("record_index")
            refilled = self.loss_type == "dapo" and self.dapo_dynamic_sampling  # stored groups differ
            if served is not None and not refilled and not torch.equal(stored.record_index, served.cpu()):
                raise RuntimeError(
                    f"rollout slot {slot}: the sampler served other groups than the stored rollout"
                )
            inputs = stored.inputs
        else:
            if passes > 0:  # resumed in the middle of a rollout's passes: start a fresh rollout
                log.warning("no stored rollout for slot %d (resumed mid-rollout): sampling afresh", slot)
            stored = None
            if self.loss_type == "dapo" and self.dapo_dynamic_sampling:
                inputs = self._refill(model, inputs)
        self._active = (slot, stored)
        return super().training_step(model, inputs, num_items_in_batch)

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
        if self.loss_type == "dpo":
            ref = None
            if self.needs_reference:
                ref = scatter_scores(
                    self.reference_scores(inputs["input_ids"], inputs["attention_mask"]), mask
                )
            return self._dpo(scores, ref, labels, mask)
        slot, rollout = self._active if self._active is not None else (0, None)
        if rollout is None:
            ref = None
            if self.needs_reference:
                ref_rows = self.reference_scores(inputs["input_ids"], inputs["attention_mask"])
                ref = scatter_scores(ref_rows, mask)
            rollout = self.make_rollout(scores, ref, inputs)
            rollout.inputs = inputs
            if self.num_iterations > 1:
                self._rollouts[slot] = rollout
        return self.policy_update_loss(scores, mask, rollout)

    def policy_update_loss(
        self, scores: torch.Tensor, mask: torch.Tensor, rollout: Rollout
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The clipped (or REINFORCE) loss of the stored rollout under the current scores."""
        logp = self.action_logp(scores, mask, rollout.actions)
        common = dict(
            ref_logp=rollout.ref_logp if self.kl_coef else None, kl_coef=self.kl_coef, kl_kind=self.kl_kind
        )
        adv, tmask, old = rollout.advantages, rollout.token_mask, rollout.old_logp
        if self.loss_type == "grpo":
            loss, stats = grpo_loss(logp, old, adv, tmask, clip_eps=self.clip_eps, **common)
        elif self.loss_type == "dapo":
            loss, stats = dapo_loss(
                logp,
                old,
                adv,
                tmask,
                eps_low=self.clip_eps,
                eps_high=self.clip_eps_high,
                aggregation="token",
                **common,
            )
        elif self.loss_type == "dr_grpo":
            loss, stats = dr_grpo_loss(logp, old, adv, tmask, clip_eps=self.clip_eps, **common)
        else:
            loss, stats = reinforce_loss(logp, adv, tmask)
            if self.kl_coef:
                kl = kl_penalty(logp, rollout.ref_logp, kind=self.kl_kind)
                loss = loss + self.kl_coef * torch.where(
                    tmask, kl, torch.zeros_like(kl)
                ).sum() / tmask.sum().clamp(min=1)
            with torch.no_grad():
                ratio = torch.exp(logp.detach() - old)[tmask]
                stats.update(
                    clip_fraction=0.0,
                    ratio_mean=float(ratio.mean()) if ratio.numel() else 1.0,
                    ratio_min=float(ratio.min()) if ratio.numel() else 1.0,
                    ratio_max=float(ratio.max()) if ratio.numel() else 1.0,
                    approx_kl=float(kl_penalty(logp.detach(), old)[tmask].mean()) if ratio.numel() else 0.0,
                )
        out = dict(rollout.stats)
        for key in (
            "loss",
            "clip_fraction",
            "clip_low_fraction",
            "clip_high_fraction",
            "ratio_mean",
            "ratio_min",
            "ratio_max",
            "approx_kl",
        ):
            if key in stats:
                out[key] = stats[key]
        if rollout.ref_logp is not None:
            with torch.no_grad():
                kl = kl_penalty(logp.detach(), rollout.ref_logp, kind=self.kl_kind)
                valid = self._real_tokens(mask, rollout)
                out["kl"] = float(
                    torch.where(valid, kl, torch.zeros_like(kl)).sum() / valid.sum().clamp(min=1)
                )
        return loss, out

    def _real_tokens(self, mask: torch.Tensor, rollout: Rollout) -> torch.Tensor:
        """Every real action of the rollout (with or without dynamic sampling's mask)."""
        if self.policy == "pointwise":
            b, g, n = rollout.actions[0].shape
            return mask[:, None, :].expand(b, g, n).reshape(-1, 1)
        return ranking_logp(torch.zeros(mask.shape, device=mask.device), mask, rollout.actions[0])[1]

    def _dpo(self, scores, ref, labels, mask) -> tuple[torch.Tensor, dict[str, float]]:
        gen = self.rollout_generator(scores.device) if self.dpo_max_pairs else None
        pairs = preference_pairs(labels, mask, self.dpo_max_pairs, generator=gen)
        if pairs[0].numel() == 0:  # no group has two different labels: nothing to prefer
            return scores.sum() * 0.0, {"loss": 0.0, "pairs": 0.0}
        pc, pr = pair_logps(scores, pairs, self.temperature)
        if ref is None:  # reference-free DPO: log-ratios against a uniform reference (log-probs 0)
            rc, rr = torch.zeros_like(pc), torch.zeros_like(pr)
        else:
            rc, rr = pair_logps(ref, pairs, self.temperature)
        loss, stats = dpo_loss(pc, pr, rc, rr, beta=self.dpo_beta, loss_type=self.dpo_loss_type)
        with torch.no_grad():
            p = pc.detach().exp()
            stats.update({"pairs": float(pairs[0].numel()), "pair_accuracy": float((p > 0.5).float().mean())})
            if ref is not None:
                # Exact KL between the two-document policies (Bernoulli over the pair's order).
                q = rc.exp()
                kl = p * (pc.detach() - rc) + (1 - p) * (pr.detach() - rr)
                stats.update(
                    {"kl": float(kl.mean()), "reference_pair_accuracy": float((q > 0.5).float().mean())}
                )
        return loss, stats

    # ---------------------------------------------------------------- logging
    # Logged as the extreme over the logging window, not the mean of the micro-batches' extremes.
    _EXTREMES = {"ratio_min": min, "ratio_max": max}

    def _record(self, stats: dict[str, float]) -> None:
        self.last_stats = dict(stats)
        for key, value in stats.items():
            if key == "loss":
                continue
            if key in self._EXTREMES:
                old = self._stat_sums.get(key)
                self._stat_sums[key] = float(value) if old is None else self._EXTREMES[key](old, float(value))
                self._stat_counts[key] = 1
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
