"""Exact chunked scoring for listwise losses (the GradCache method, arXiv 2101.06983).

A listwise loss couples every document of a group, so the naive step keeps the
activations of all ``R`` documents alive until ``backward``. Chunked scoring keeps
at most ``chunk_size`` documents' activations at a time and gives the *same*
gradients:

1. score every document without autograd (chunk by chunk), giving ``s`` (R,);
2. treat ``s`` as a leaf, compute the loss and ``g = dL/ds`` (cheap: no model);
3. for each chunk, re-run the forward pass *with* autograd and back-propagate the
   surrogate ``sum(s_chunk * g_chunk)``, whose gradient w.r.t. the parameters is
   exactly that chunk's share of ``dL/dθ = Σ_i g_i · ds_i/dθ``.

Dropout (e.g. LoRA dropout) would make the re-run differ from the first pass, so
the RNG state is captured before each chunk's first pass and restored for its
re-run. The cost is one extra no-grad forward (~1/3 of a step's compute).

With shared-prefix scoring (:mod:`rerankctl.models.shared_prefix`) ``group_ids`` travel with
the rows: a chunk that holds part of a group re-encodes that group's head, and the head's
gradient is the sum of every chunk's share (each chunk back-propagates through its own copy
of the head), so the result is still exactly ``dL/dθ``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _RngState:
    """CPU and (when present) current-CUDA-device RNG states, to replay dropout exactly."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    @contextmanager
    def replay(self) -> Iterator[None]:
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def scatter_scores(row_scores: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Place per-row scores (R,) into the padded group layout (B, N) given by ``mask``.

    Rows fill the True positions of ``mask`` in row-major order (the collator's layout).
    Differentiable w.r.t. ``row_scores``.
    """
    padded = torch.full(mask.shape, fill, dtype=row_scores.dtype, device=row_scores.device)
    return padded.masked_scatter(mask, row_scores)


def chunked_backward(
    score_fn: ScoreFn,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    chunk_size: int,
    backward: Callable[[torch.Tensor], None] | None = None,
    no_sync: Callable[[], Any] | None = None,
    loss_scale: float = 1.0,
    group_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one exact chunked forward/backward; returns ``(loss, row_scores)`` (both detached).

    Args:
        score_fn: maps ``(input_ids, attention_mask)`` of some rows to their scores (rows,).
        input_ids, attention_mask: all rows of the step, (R, T).
        loss_fn: maps all row scores (R,) to the scalar loss (e.g. scatter + listwise loss).
        chunk_size: rows per forward pass with autograd.
        backward: how to back-propagate a scalar (``accelerator.backward``); default ``.backward()``.
        no_sync: a context-manager factory that suppresses DDP gradient all-reduce; used for
            every chunk but the last so distributed runs reduce once per step.
        loss_scale: multiplies the gradient (e.g. ``1 / gradient_accumulation_steps``).
        group_ids: (R,) group of every row; when given, ``score_fn`` is called as
            ``score_fn(ids, attn, group_ids_of_the_chunk)`` (shared-prefix scoring).
    """
    backward = backward or (lambda t: t.backward())
    rows = input_ids.shape[0]

    def run(start: int) -> torch.Tensor:
        span = slice(start, start + chunk_size)
        if group_ids is None:
            return score_fn(input_ids[span], attention_mask[span])
        return score_fn(input_ids[span], attention_mask[span], group_ids[span])

    starts = list(range(0, rows, chunk_size))
    rng_states: list[_RngState] = []
    with torch.no_grad():
        pieces = []
        for start in starts:
            rng_states.append(_RngState(input_ids.device))
            pieces.append(run(start))
        scores = torch.cat(pieces).float()
    leaf = scores.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(leaf)
        (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
    if grad is None:  # the loss does not depend on the scores (e.g. no valid group)
        grad = torch.zeros_like(leaf)
    grad = grad * loss_scale
    for i, (start, rng) in enumerate(zip(starts, rng_states)):
        last = i == len(starts) - 1
        ctx = no_sync() if (no_sync is not None and not last) else nullcontext()
        with ctx, rng.replay():
            chunk_scores = run(start)
            surrogate = (chunk_scores.float() * grad[start : start + chunk_size]).sum()
            backward(surrogate)
    return loss.detach(), scores
