"""The reranker's score as the LM head's forward, so a wrapped model (DDP, FSDP, DeepSpeed) sees it.

A Qwen3-Reranker scores a prompt by ``logit_yes - logit_no`` at the last position::

    score = h_last · W[yes] - h_last · W[no] (+ b[yes] - b[no]) = h_last · (W[yes] - W[no]) (+ ...)

:class:`YesNoHead` replaces the causal LM's output embedding with a module that computes
exactly that, one number per position, and :func:`install_yes_no_head` puts it in place.
Trainers then call only ``model(input_ids=..., attention_mask=..., logits_to_keep=1)``:
the call goes through whatever accelerate wrapped around the model (the DDP reducer hooks,
FSDP's all-gathers, a DeepSpeed engine), full-vocabulary logits are never formed, and the
gradient reaches the decoder and the two head rows as through full logits.

The head keeps the original ``weight`` (and ``bias``) parameter objects under the same names,
so ``state_dict()`` keys, weight tying and ``save_pretrained`` are unchanged: a saved model
is a plain causal LM that loads anywhere.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class _TwoRows(torch.autograd.Function):
    """``weight[[yes, no]]`` whose backward is a 2-row *sparse* gradient of ``weight``.

    Indexing's own backward writes into a dense ``zeros_like(weight)``: with Qwen3's 151,936-row
    tied embedding that is a vocabulary-sized tensor filled and added every step. When the weight
    is tied to the input embedding, the autograd engine sums this sparse gradient into the
    embedding lookup's dense one *before* it reaches ``.grad``, so ``.grad`` stays dense (what
    every optimizer expects) and nothing vocabulary-sized is made for the head.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.shape = weight.shape
        return weight[index]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (index,) = ctx.saved_tensors
        sparse = torch.sparse_coo_tensor(index[None], grad, ctx.shape)
        return sparse, None


def _plain_parameter(weight: torch.Tensor) -> bool:
    """A parameter no sharding wrapper (FSDP flat params, DTensor, DeepSpeed ZeRO-3) manages."""
    sharded = ("_fsdp_flattened", "ds_id", "_sharded_size", "_local_shard")
    return type(weight.data) is torch.Tensor and not any(hasattr(weight, a) for a in sharded)


def _densify_grad(param: torch.Tensor) -> None:
    if param.grad is not None and param.grad.is_sparse:
        param.grad = param.grad.to_dense()


class YesNoHead(nn.Module):
    """``hidden (…, H) -> score (…, 1)``: the yes-minus-no logit, computed in float32.

    Args:
        head: the causal LM's output embedding (``nn.Linear``) whose parameters are reused.
        yes_id, no_id: token ids of "yes" and "no".
        input_embedding: the model's input embedding; when it shares ``weight`` (tied, as in
            Qwen3 0.6B-4B) the head's gradient is sparse (see :class:`_TwoRows`).
    """

    def __init__(
        self, head: nn.Module, yes_id: int, no_id: int, input_embedding: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.weight = head.weight  # the same Parameter (tied to the input embedding in small Qwen3)
        self.bias = getattr(head, "bias", None)
        self.yes_id = int(yes_id)
        self.no_id = int(no_id)
        self.in_features = getattr(head, "in_features", self.weight.shape[1])
        self.out_features = getattr(head, "out_features", self.weight.shape[0])
        # Not a submodule (that would duplicate state_dict keys): only to see whether the weight is tied.
        self.__dict__["_input_embedding"] = input_embedding
        self._dense_hook = False
        tied = input_embedding is not None and getattr(input_embedding, "weight", None) is self.weight
        if tied and self.weight.requires_grad:
            # Insurance: should the embedding lookup ever be off the graph (inputs_embeds given),
            # the sparse head gradient alone would land in .grad; optimizers need it dense.
            self.weight.register_post_accumulate_grad_hook(_densify_grad)
            self._dense_hook = True

    def _rows(self) -> torch.Tensor:
        index = torch.tensor([self.yes_id, self.no_id], device=self.weight.device)
        emb = self.__dict__.get("_input_embedding")
        tied = emb is not None and getattr(emb, "weight", None) is self.weight
        sparse_ok = self._dense_hook and tied and _plain_parameter(self.weight)
        if torch.is_grad_enabled() and self.weight.requires_grad and sparse_ok:
            return _TwoRows.apply(self.weight, index)
        return self.weight[index]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        rows = self._rows().to(torch.float32)  # (2, H): two rows only
        score = hidden.to(torch.float32) @ (rows[0] - rows[1])
        if self.bias is not None:
            score = score + (self.bias[self.yes_id] - self.bias[self.no_id]).to(torch.float32)
        return score.unsqueeze(-1)

    def as_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` over the same parameters (to put the LM head back)."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        linear.weight = self.weight
        if self.bias is not None:
            linear.bias = self.bias
        return linear

    def extra_repr(self) -> str:
        return f"yes_id={self.yes_id}, no_id={self.no_id}, in_features={self.in_features}"


def causal_lm_of(model: Any) -> Any:
    """The ``*ForCausalLM`` inside a PEFT wrapper or accelerate/DDP wrapper (or ``model`` itself)."""
    from rerankctl.models.scoring import unwrap_causal_lm

    while hasattr(model, "module") and isinstance(model.module, nn.Module):  # DDP / DeepSpeed engine
        model = model.module
    return unwrap_causal_lm(model)


def has_yes_no_head(model: Any) -> bool:
    lm = causal_lm_of(model)
    return hasattr(lm, "get_output_embeddings") and isinstance(lm.get_output_embeddings(), YesNoHead)


def install_yes_no_head(model: Any, yes_id: int, no_id: int) -> YesNoHead:
    """Replace the LM head of ``model`` (plain or PEFT) with a :class:`YesNoHead`; idempotent."""
    lm = causal_lm_of(model)
    head = lm.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(lm).__name__} has no output embeddings (LM head)")
    if isinstance(head, YesNoHead):
        if (head.yes_id, head.no_id) != (int(yes_id), int(no_id)):
            raise ValueError(f"the model already scores yes={head.yes_id}/no={head.no_id}")
        return head
    embedding = lm.get_input_embeddings() if hasattr(lm, "get_input_embeddings") else None
    new = YesNoHead(head, yes_id, no_id, input_embedding=embedding)
    lm.set_output_embeddings(new)
    return new


def restore_lm_head(model: Any) -> None:
    """Put a plain ``nn.Linear`` LM head back (same parameters) if a :class:`YesNoHead` is installed."""
    lm = causal_lm_of(model)
    head = lm.get_output_embeddings()
    if isinstance(head, YesNoHead):
        lm.set_output_embeddings(head.as_linear())


def forward_scores(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Scores (B,) from a model carrying a :class:`YesNoHead`, through the (wrapped) model's forward.

    Requires left padding (the last position is the token before the answer).
    """
    out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=1, use_cache=False)
    logits = out.logits if hasattr(out, "logits") else out[0]
    return logits[:, -1, 0].to(torch.float32)
