"""`ContrastiveSFTTrainer`: listwise fine-tuning of a yes/no reranker on the HF `Trainer`.

Each training example is a *group*: one query and ``n_docs`` documents with
relevance labels. The collator flattens a batch of groups into ``R`` prompt rows
plus a (B, N) ``mask``; the trainer scores every row with the two-row head
(:class:`rerankctl.models.yes_no_head.YesNoHead`, installed in place of the LM head, so
the score is the model's own forward and DDP/FSDP/DeepSpeed wrappers see every call), scatters the scores back into
(B, N) and applies a ranking loss from :mod:`rerankctl.losses`.

With ``chunk_size`` set, a step runs through :func:`rerankctl.train.chunked.chunked_backward`:
same gradients, activation memory bounded by the chunk.

With ``shared_prefix`` (the default) a group's documents are scored as one packed sequence
whose prompt head (system prompt, instruction, query) is encoded once
(:mod:`rerankctl.models.shared_prefix`): the same scores and gradients, fewer tokens.

Checkpoints are atomic (:mod:`rerankctl.train.checkpointing`). Everything else (optimiser,
schedule, accumulation, mixed precision, checkpoint contents,
resume, DDP/FSDP/DeepSpeed through accelerate, ``report_to``) is the stock Trainer: the
trainer only ever calls ``model(...)``, never the decoder or the head directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import Trainer

from rerankctl.models.shared_prefix import (
    enable_shared_prefix,
    group_ids_from_mask,
    is_enabled,
    shared_prefix_scores,
    supports_shared_prefix,
)
from rerankctl.models.yes_no_head import forward_scores, install_yes_no_head
from rerankctl.train.checkpointing import AtomicCheckpointMixin
from rerankctl.train.chunked import chunked_backward, scatter_scores

log = logging.getLogger(__name__)

LossFn = Callable[..., torch.Tensor]


def score_rows(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    group_ids: torch.Tensor | str | None = "auto",
    shared_prefix: bool = True,
) -> torch.Tensor:
    """The training forward of the SFT and RL trainers (and of ``--chunk-size auto``'s probe, so it
    measures the same path): packed behind shared heads, or one row per document."""
    if shared_prefix:
        return shared_prefix_scores(model, input_ids, attention_mask, group_ids)
    return forward_scores(model, input_ids, attention_mask)


class ContrastiveSFTTrainer(AtomicCheckpointMixin, Trainer):
    """A `Trainer` whose step is a listwise ranking loss over yes/no scores.

    Args:
        loss_fn: ``fn(scores[B, N], labels[B, N], mask[B, N], teacher_scores=None) -> loss``.
        yes_id, no_id: token ids of "yes" and "no".
        chunk_size: rows per autograd forward pass (0 = all rows at once).
        eval_groups: held-out groups ``{"query", "docs", "labels", "instruction"}`` scored with all
            their documents for NDCG@10 / MRR / MAP during evaluation.
        prompt_tokenizer: a :class:`rerankctl.data.prompt.PromptTokenizer` for the eval groups.
        eval_batch_size: rows per forward pass during evaluation.
        shared_prefix: encode each group's prompt head once (exact; off: one row per document).
        Remaining arguments go to :class:`transformers.Trainer`.
    """

    def __init__(
        self,
        *args: Any,
        loss_fn: LossFn,
        yes_id: int,
        no_id: int,
        chunk_size: int = 0,
        eval_groups: Sequence[dict] | None = None,
        prompt_tokenizer: Any = None,
        eval_batch_size: int = 32,
        shared_prefix: bool = True,
        **kwargs: Any,
    ) -> None:
        model = kwargs.get("model", args[0] if args else None)
        if model is not None:
            # Before the Trainer (and accelerate) wrap it: the score becomes the model's forward.
            install_yes_no_head(model, yes_id, no_id)
            if shared_prefix:
                reason = supports_shared_prefix(model)
                if reason is not None:
                    log.warning("shared-prefix scoring is off: %s", reason)
                shared_prefix = enable_shared_prefix(model)
        super().__init__(*args, **kwargs)
        # Our loss is a mean over groups, not a sum over tokens the model normalises itself: the
        # Trainer must divide it by the accumulation steps on the unchunked path, as the chunked path does.
        self.model_accepts_loss_kwargs = False
        self.loss_fn = loss_fn
        self.yes_id = yes_id
        self.no_id = no_id
        self.chunk_size = chunk_size
        self.eval_groups = list(eval_groups or [])
        self.prompt_tokenizer = prompt_tokenizer
        self.eval_batch_size = eval_batch_size
        self.shared_prefix = bool(shared_prefix and model is not None)
        self._encoded_eval: list[list[int]] | None = None
        self._tokens_since_log = 0
        self._docs_since_log = 0
        self._truncated_since_log = 0
        self._last_log_time = time.perf_counter()

    # ---------------------------------------------------------------- scoring
    def score_rows(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        group_ids: torch.Tensor | str | None = "auto",
    ) -> torch.Tensor:
        """Scores (rows,) through ``model``'s forward: the DDP/FSDP/DeepSpeed wrapper when there is one.

        With shared-prefix scoring, rows of one group (``group_ids``; ``"auto"``: found from the
        token ids) share one encoding of their common head. Exact either way.
        """
        return score_rows(model, input_ids, attention_mask, group_ids, self.shared_prefix)

    def _group_ids(self, inputs: dict[str, Any]) -> torch.Tensor | str:
        mask = inputs.get("mask")
        if mask is not None and int(mask.sum()) == inputs["input_ids"].shape[0]:
            return group_ids_from_mask(mask)
        return "auto"

    def group_loss(self, row_scores: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        mask = inputs["mask"]
        scores = scatter_scores(row_scores.float(), mask)
        teacher = inputs.get("teacher_scores")
        return self.loss_fn(scores, inputs["labels"].float(), mask, teacher_scores=teacher)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        row_scores = self.score_rows(
            model, inputs["input_ids"], inputs["attention_mask"], self._group_ids(inputs)
        )
        loss = self.group_loss(row_scores, inputs)
        return (loss, {"scores": row_scores}) if return_outputs else loss

    # ---------------------------------------------------------------- training
    def training_step(self, model, inputs, num_items_in_batch=None):
        self._count(inputs)
        rows = inputs["input_ids"].shape[0]
        if not self.chunk_size or rows <= self.chunk_size:
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        steps = self.current_gradient_accumulation_steps

        def score_fn(ids: torch.Tensor, attn: torch.Tensor, groups: Any = "auto") -> torch.Tensor:
            with self.compute_loss_context_manager():
                return self.score_rows(model, ids, attn, groups)

        loss, _ = chunked_backward(
            score_fn,
            inputs["input_ids"],
            inputs["attention_mask"],
            lambda scores: self.group_loss(scores, inputs),
            self.chunk_size,
            backward=self.accelerator.backward,
            no_sync=(lambda: self.accelerator.no_sync(model)) if self.accelerator.num_processes > 1 else None,
            loss_scale=1.0 / steps,
            group_ids=groups
            if self.shared_prefix and torch.is_tensor(groups := self._group_ids(inputs))
            else None,
        )
        return loss / steps

    def _count(self, inputs: dict[str, Any]) -> None:
        num_tokens = inputs.get("num_tokens")
        if num_tokens is None:
            num_tokens = int(inputs["attention_mask"].sum())
        self._tokens_since_log += int(num_tokens)
        self._docs_since_log += int(inputs["input_ids"].shape[0])
        self._truncated_since_log += int(inputs.get("num_truncated", 0) or 0)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            now = time.perf_counter()
            elapsed = max(now - self._last_log_time, 1e-9)
            world = self.accelerator.num_processes
            logs["tokens_per_sec"] = round(self._tokens_since_log * world / elapsed, 1)
            logs["docs_per_sec"] = round(self._docs_since_log * world / elapsed, 2)
            if self._truncated_since_log:
                logs["truncated_docs"] = self._truncated_since_log
            self._tokens_since_log = self._docs_since_log = self._truncated_since_log = 0
            self._last_log_time = now
        super().log(logs, start_time)

    # ---------------------------------------------------------------- evaluation
    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Rank every held-out group with all its documents; NDCG@1/5/10, MRR, MAP, P@k, R@k."""
        if not self.eval_groups:
            return {}
        start = time.perf_counter()
        metrics = rank_eval_groups(
            self.model,
            self.prompt_tokenizer,
            self.eval_groups,
            self.yes_id,
            self.no_id,
            batch_size=self.eval_batch_size,
            device=self.args.device,
            cache=self,
        )
        out = {f"{metric_key_prefix}_{k}": float(v) for k, v in metrics.items()}
        out[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 3)
        self.log(out)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, out)
        return out


def rank_eval_groups(
    model: Any,
    prompt_tokenizer: Any,
    groups: Sequence[dict],
    yes_id: int,
    no_id: int,
    batch_size: int = 32,
    device: Any = None,
    cache: Any = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Score each group's documents (no grad, length-sorted batches) and average ranking metrics."""
    import numpy as np

    from rerankctl.eval.metrics_batch import compute_all_metrics_batch

    encoded = getattr(cache, "_encoded_eval", None)
    if encoded is None:
        queries = [g["query"] for g in groups for _ in g["docs"]]
        docs = [d for g in groups for d in g["docs"]]
        instructions = [g.get("instruction") for g in groups for _ in g["docs"]]
        encoded, _ = prompt_tokenizer.encode_pairs(queries, docs, instructions)
        if cache is not None:
            cache._encoded_eval = encoded
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    flat = torch.empty(len(encoded))
    shared = is_enabled(model)
    if shared:  # groups stay together: each batch encodes a group's head once
        order = list(range(len(encoded)))
        row_group = [q for q, g in enumerate(groups) for _ in g["docs"]]
    else:
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    with torch.no_grad():
        for begin in range(0, len(order), batch_size):
            rows = order[begin : begin + batch_size]
            batch = prompt_tokenizer.pad([encoded[i] for i in rows])
            if shared:
                ids, attn = batch["input_ids"].to(device), batch["attention_mask"].to(device)
                gids = row_group[begin : begin + batch_size]
                scores = shared_prefix_scores(model, ids, attn, gids, yes_no=(yes_id, no_id))
            else:
                scores = _eval_scores(model, batch, device, yes_id, no_id)
            flat[rows] = scores.float().cpu()
    if was_training:
        model.train()
    width = max(len(g["docs"]) for g in groups)
    score_mat = np.full((len(groups), width), -np.inf, dtype=np.float64)
    rel = np.zeros((len(groups), width), dtype=np.float64)
    mask = np.zeros((len(groups), width), dtype=bool)
    offset = 0
    values = flat.numpy()
    for q, group in enumerate(groups):
        n = len(group["docs"])
        score_mat[q, :n] = values[offset : offset + n]
        rel[q, :n] = group["labels"]
        mask[q, :n] = True
        offset += n
    return compute_all_metrics_batch(score_mat, rel, mask=mask, ks=ks)


def _eval_scores(model: Any, batch: dict, device: Any, yes_id: int, no_id: int) -> torch.Tensor:
    from rerankctl.models.scoring import yes_no_scores
    from rerankctl.models.yes_no_head import has_yes_no_head

    ids, attn = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    if has_yes_no_head(model):
        return forward_scores(model, ids, attn)
    return yes_no_scores(model, ids, attn, yes_id, no_id)
