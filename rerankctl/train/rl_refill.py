"""DAPO's dynamic sampling refill for :class:`rerankctl.train.rl.RLTrainer`.

DAPO (Yu et al., 2025, arXiv:2503.14476) over-samples and keeps only prompts whose group of
samples does not all earn the same reward, so every kept group has a non-zero advantage. Here a
micro-batch's groups with all-equal rewards are dropped and further groups are drawn from the
training data (a seeded pass of its own, so the main data order is untouched) and scored with a
no-grad rollout, until the batch holds ``batch_size`` groups with reward variance or
``dynamic_sampling_max_draws`` extra batches were scored. Split out of the trainer module: the
mixin needs only ``_sample_rewards`` (:class:`rerankctl.train.rl_rollout.RolloutMixin`) and
``scores_no_grad``.
"""

from __future__ import annotations

from typing import Any

import torch

from rerankctl.losses.rl import dapo_dynamic_sampling_mask
from rerankctl.train.chunked import scatter_scores


class DynamicSamplingMixin:
    """:meth:`_refill` and its helpers (the trainer's ``train_dataset``, ``data_collator``, ``args``)."""

    def _refill_batches(self):
        """Further collated batches from the training data, for dynamic sampling's refill.

        A pass of its own over the data (a permutation seeded by the seed, this rank's share), so
        the main data order is untouched; it continues across steps and restarts when exhausted.
        """
        ds = self.train_dataset
        bs = self.args.per_device_train_batch_size
        epoch = 0
        while True:
            if hasattr(ds, "__len__") and hasattr(ds, "__getitem__"):
                g = torch.Generator().manual_seed(self.args.seed * 7919 + 17 + epoch)
                order = torch.randperm(len(ds), generator=g).tolist()
                order = order[self.args.process_index :: self.args.world_size]
                items = (ds[i] for i in order)
            else:
                items = iter(ds)
            chunk = []
            for item in items:
                chunk.append(item)
                if len(chunk) == bs:
                    yield self.data_collator(chunk)
                    chunk = []
            epoch += 1
            if epoch > 1000:
                return

    def _varied_groups(self, model: Any, batch: dict[str, Any]) -> list[int]:
        """Groups of ``batch`` whose sampled rewards are not all equal (a no-grad rollout)."""
        batch = self._prepare_inputs(batch)
        rows = self.scores_no_grad(model, batch["input_ids"], batch["attention_mask"])
        scores = scatter_scores(rows, batch["mask"])
        rewards, group_ids = self._sample_rewards(scores, batch)
        varied = dapo_dynamic_sampling_mask(rewards.reshape(-1).float(), group_ids.reshape(-1))
        per_group = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
        per_group[group_ids.reshape(-1)[varied]] = True
        return [int(i) for i in per_group.nonzero().flatten()]

    def _refill(self, model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """DAPO dynamic sampling: keep groups with reward variance; refill the batch from the data."""
        from rerankctl.train.rl_data import select_groups

        want = int(inputs["mask"].shape[0])
        was_training = model.training
        model.eval()
        try:
            keep = [(inputs, self._varied_groups(model, inputs))]
            have, draws = len(keep[0][1]), 0
            while have < want and draws < self.dynamic_sampling_max_draws:
                if self._refill_iter is None:
                    self._refill_iter = self._refill_batches()
                extra = next(self._refill_iter, None)
                if extra is None:
                    break
                draws += 1
                chosen = self._varied_groups(model, extra)[: want - have]
                keep.append((extra, chosen))
                have += len(chosen)
        finally:
            model.train(was_training)
        self._refill_stats = {"refill_draws": float(draws), "kept_groups": float(have)}
        if have == 0 or (draws == 0 and have == want):
            return inputs  # nothing to train on, or nothing replaced
        return select_groups(keep, self.data_collator.prompt.pad)
