"""Shared-prefix scoring: a query's prompt head is encoded once for all of its documents.

Every prompt of one query starts with the same tokens (system prompt, instruction, query,
``"<Document>:"``; ~75 tokens of template plus the query)::

    row i = head + segment_i          segment_i = " document_i" + suffix

A causal LM's hidden state at a token depends only on the tokens before it and on their
positions, so the rows of a group can be *packed*: the head once, then every segment, with
position ids that continue from the head for every segment (``P, P+1, ..`` where ``P`` is the
head length) and attention in which a segment sees the head and itself only (causal within)::

    packed: [ head (0..P-1) | seg_1 (P..) | seg_2 (P..) | ... ]   next group: [ head' | seg'_1 | ...]

The hidden state at each segment's last token then equals the one at the last token of its
unshared row, up to float summation order (fp32: ~1e-6), and so do the gradients. The head is
found from the token ids themselves (the longest common prefix of a group's rows, keeping at
least one token per segment), so callers only say which rows belong together (``group_ids``).
All groups of a call go into one row with no padding at all (padding-free packing).

Attention (:func:`prefix_attention`) is block-sparse by construction: the heads of all groups
run as one causal SDPA batch, then all segments as one SDPA batch whose keys are
``[own head | own segment]``; the cost is that of the unshared rows minus the repeated heads,
never the ``L²`` of a dense mask over the packed row. It is registered with transformers'
attention interface under ``rerankctl_prefix+<original>`` and receives the packing layout as
the (pre-built) ``attention_mask`` of the decoder, so the model's own ``forward`` runs (the
DDP/FSDP/DeepSpeed wrappers and PEFT adapters see the call) and every other call of the model
is delegated untouched to the original implementation (``sdpa``, ``eager``, flash, ...). The
dense alternative, transformers' documented 4-D custom-mask path under SDPA, is
``method="dense"`` (a cross-check in the tests).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

_NAME = "rerankctl_prefix+"


@dataclass
class PrefixLayout:
    """Where the heads and segments of a packed row lie (all index tensors into the row).

    head_idx (G, Pmax), head_valid (G, Pmax): each group's head positions (padding: 0, False).
    seg_idx (S, Smax), seg_valid (S, Smax): each segment's positions; seg_group (S,): its group.
    inverse (L,): position in ``cat(valid heads, valid segments)`` of every packed token.
    """

    head_idx: torch.Tensor
    head_valid: torch.Tensor
    seg_idx: torch.Tensor
    seg_valid: torch.Tensor
    seg_group: torch.Tensor
    inverse: torch.Tensor
    length: int

    def to(self, device: Any) -> PrefixLayout:
        moved = {k: getattr(self, k).to(device) for k in ("head_idx", "head_valid", "seg_idx", "seg_valid")}
        return PrefixLayout(
            **moved,
            seg_group=self.seg_group.to(device),
            inverse=self.inverse.to(device),
            length=self.length,
        )

    def dense_mask(self) -> torch.Tensor:
        """The equivalent dense boolean mask (1, 1, L, L): True where a query may attend."""
        n = self.length
        dev = self.head_idx.device
        allowed = torch.zeros(n, n, dtype=torch.bool, device=dev)
        for g in range(self.head_idx.shape[0]):
            h = self.head_idx[g][self.head_valid[g]]
            allowed[h[:, None], h[None, :]] = torch.tril(
                torch.ones(len(h), len(h), dtype=torch.bool, device=dev)
            )
        for s in range(self.seg_idx.shape[0]):
            seg = self.seg_idx[s][self.seg_valid[s]]
            g = int(self.seg_group[s])
            h = self.head_idx[g][self.head_valid[g]]
            allowed[seg[:, None], h[None, :]] = True
            allowed[seg[:, None], seg[None, :]] = torch.tril(
                torch.ones(len(seg), len(seg), dtype=torch.bool, device=dev)
            )
        return allowed[None, None]


@dataclass
class Packed:
    """One packed row: ``input_ids``/``position_ids`` (1, L), the layout, and ``last`` (R,): the
    packed position of each input row's last token, in input row order."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    layout: PrefixLayout
    last: torch.Tensor
    num_tokens: int


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    limit = min(len(s) for s in seqs) - 1  # every segment keeps >= 1 token (the scored one)
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n


def _rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[int]]:
    """The real tokens of every row (left- or right-padded)."""
    ids = input_ids.tolist()
    keep = attention_mask.bool().tolist()
    return [[t for t, k in zip(row, m) if k] for row, m in zip(ids, keep)]


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n, limit = 0, min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def auto_groups(seqs: Sequence[Sequence[int]]) -> list[int]:
    """Group ids found from the tokens: consecutive rows that share more than the prefix common
    to the whole batch (the template) belong together (the same query). Only efficiency depends
    on this: any grouping is exact."""
    if len(seqs) < 2:
        return [0] * len(seqs)
    links = [_lcp(seqs[i - 1], seqs[i]) for i in range(1, len(seqs))]
    floor = min(links)
    if all(x == floor for x in links):
        return [0] * len(seqs)
    ids = [0]
    for link in links:
        ids.append(ids[-1] + (link == floor))
    return ids


def head_groups(seqs: Sequence[Sequence[int]], marker: Sequence[int]) -> tuple[list[int], list[int]]:
    """``(order, group_ids)``: rows ordered so that prompts of one (instruction, query) are
    adjacent, and their group ids in that order. The head of a prompt is everything up to the
    end of the first ``marker`` (``"\n<Document>:"``); rows without one are their own group."""
    marker = list(marker)
    width = len(marker)
    keys: dict[tuple[int, ...], int] = {}
    row_key: list[int] = []
    for i, seq in enumerate(seqs):
        end = next(
            (j + width for j in range(len(seq) - width + 1) if list(seq[j : j + width]) == marker), None
        )
        key = tuple(seq[:end]) if end is not None else ("row", i)
        row_key.append(keys.setdefault(key, len(keys)))
    order = sorted(range(len(seqs)), key=lambda i: (row_key[i], len(seqs[i])))
    return order, [row_key[i] for i in order]


def _runs(group_ids: Sequence[int] | None, n: int) -> list[range]:
    """Consecutive runs of equal group ids (all rows together when None)."""
    if group_ids is None:
        return [range(0, n)] if n else []
    runs, start = [], 0
    for i in range(1, n + 1):
        if i == n or group_ids[i] != group_ids[start]:
            runs.append(range(start, i))
            start = i
    return runs


def pack_rows(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    group_ids: Sequence[int] | torch.Tensor | str | None = None,
) -> Packed:
    """Pack rows into one padding-free row: per group of consecutive equal ``group_ids``, its
    common prefix once, then every row's remainder. Exact for any grouping (a group with no
    common prefix just has an empty head). ``None``: all rows one group; ``"auto"``: see
    :func:`auto_groups`."""
    seqs = _rows(input_ids, attention_mask)
    if isinstance(group_ids, str):
        if group_ids != "auto":
            raise ValueError(f"group_ids must be ids, None or 'auto', got {group_ids!r}")
        group_ids = auto_groups(seqs)
    if group_ids is not None and not isinstance(group_ids, list):
        group_ids = [int(g) for g in group_ids.tolist()] if torch.is_tensor(group_ids) else list(group_ids)
    if any(len(s) == 0 for s in seqs):
        raise ValueError("an empty row cannot be scored")
    tokens: list[int] = []
    positions: list[int] = []
    heads: list[list[int]] = []
    segs: list[list[int]] = []
    seg_group: list[int] = []
    last = [0] * len(seqs)
    for g, run in enumerate(_runs(group_ids, len(seqs))):
        group = [seqs[i] for i in run]
        p = _common_prefix(group)
        start = len(tokens)
        tokens.extend(group[0][:p])
        positions.extend(range(p))
        heads.append(list(range(start, start + p)))
        for i in run:
            rest = seqs[i][p:]
            start = len(tokens)
            tokens.extend(rest)
            positions.extend(range(p, p + len(rest)))
            segs.append(list(range(start, start + len(rest))))
            seg_group.append(g)
            last[i] = len(tokens) - 1
    layout = _layout(heads, segs, seg_group, len(tokens))
    dev = input_ids.device
    return Packed(
        input_ids=torch.tensor([tokens], dtype=torch.long, device=dev),
        position_ids=torch.tensor([positions], dtype=torch.long, device=dev),
        layout=layout.to(dev),
        last=torch.tensor(last, dtype=torch.long, device=dev),
        num_tokens=len(tokens),
    )


def _padded(lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(x) for x in lists), default=0)
    idx = torch.zeros(len(lists), max(width, 1), dtype=torch.long)
    valid = torch.zeros(len(lists), max(width, 1), dtype=torch.bool)
    for r, x in enumerate(lists):
        if x:
            idx[r, : len(x)] = torch.tensor(x)
            valid[r, : len(x)] = True
    return idx, valid


def _layout(heads: list[list[int]], segs: list[list[int]], seg_group: list[int], length: int) -> PrefixLayout:
    head_idx, head_valid = _padded(heads)
    seg_idx, seg_valid = _padded(segs)
    order = torch.cat([head_idx[head_valid], seg_idx[seg_valid]])
    inverse = torch.empty(length, dtype=torch.long)
    inverse[order] = torch.arange(length)
    return PrefixLayout(head_idx, head_valid, seg_idx, seg_valid, torch.tensor(seg_group), inverse, length)


# ------------------------------------------------------------------------------------ attention
def prefix_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layout: PrefixLayout,
    scaling: float | None,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Block-sparse attention of a packed row: (1, heads, L, d) q/k/v -> (1, L, heads, d).

    Heads: causal self-attention, batched over groups. Segments: keys ``[own head | itself]``
    (causal within), batched over segments. Padded query slots see their own slot only (so no
    row is fully masked) and are dropped again by the final gather.
    """
    q, k, v = query[0], key[0], value[0]  # (nh, L, d), (nkv, L, d)
    gqa = q.shape[0] != k.shape[0]
    hi, hv = layout.head_idx, layout.head_valid  # (G, P)
    si, sv, sg = layout.seg_idx, layout.seg_valid, layout.seg_group  # (S, M), (S,)
    p, m = hi.shape[1], si.shape[1]
    dev = q.device

    def take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # (h, L, d) -> (rows, h, n, d)
        return x[:, idx].permute(1, 0, 2, 3)

    qh, kh, vh = take(q, hi), take(k, hi), take(v, hi)
    causal_p = torch.tril(torch.ones(p, p, dtype=torch.bool, device=dev))
    eye_p = torch.eye(p, dtype=torch.bool, device=dev)
    mask_h = (causal_p[None] & hv[:, None, :]) | eye_p[None]
    out_h = F.scaled_dot_product_attention(
        qh, kh, vh, attn_mask=mask_h[:, None], dropout_p=dropout, scale=scaling, enable_gqa=gqa
    )

    qs = take(q, si)
    ks = torch.cat([kh[sg], take(k, si)], dim=2)  # (S, nkv, P + M, d)
    vs = torch.cat([vh[sg], take(v, si)], dim=2)
    causal_m = torch.tril(torch.ones(m, m, dtype=torch.bool, device=dev))
    eye_m = torch.eye(m, dtype=torch.bool, device=dev)
    own = (causal_m[None] & sv[:, None, :]) | eye_m[None]  # (S, M, M)
    mask_s = torch.cat([hv[sg][:, None, :].expand(-1, m, -1), own], dim=2)
    out_s = F.scaled_dot_product_attention(
        qs, ks, vs, attn_mask=mask_s[:, None], dropout_p=dropout, scale=scaling, enable_gqa=gqa
    )

    # Back to packed order: valid head slots then valid segment slots, permuted by `inverse`.
    flat = torch.cat([out_h.permute(0, 2, 1, 3)[hv], out_s.permute(0, 2, 1, 3)[sv]])  # (L, nh, d)
    return flat[layout.inverse][None]


def _make_interface(original: str):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        if isinstance(attention_mask, PrefixLayout):
            return prefix_attention(query, key, value, attention_mask, scaling, dropout), None
        if original == "eager":  # the modeling file's own eager function, as transformers picks it
            fn = sys.modules[type(module).__module__].eager_attention_forward
        else:
            fn = ALL_ATTENTION_FUNCTIONS[original]
        return fn(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)

    return attention


def supports_shared_prefix(model: Any) -> str | None:
    """None when :func:`enable_shared_prefix` can work on ``model``, else the reason it cannot."""
    from rerankctl.models.yes_no_head import causal_lm_of

    lm = causal_lm_of(model)
    config = getattr(lm, "config", None)
    if config is None or not hasattr(config, "_attn_implementation"):
        return f"{type(lm).__name__} has no transformers config"
    if getattr(config, "use_sliding_window", False) and getattr(config, "sliding_window", None):
        return "the model uses sliding-window attention"
    # Only models whose forward passes a {layer type: mask} mapping through to the attention call
    # can carry the packed layout; Llama, Mistral and Qwen3-MoE (transformers 5.24) build their own
    # mask from it and crash ('dict' object has no attribute 'ndim', seen with SmolLM2 from GGUF).
    if getattr(config, "model_type", "") not in ("qwen3", "qwen2"):
        return f"model type {config.model_type!r} is not verified for shared-prefix scoring"
    return None


def enable_shared_prefix(model: Any) -> bool:
    """Route ``model``'s attention through the shared-prefix interface; idempotent.

    Returns False (and changes nothing) when the model is not supported. Calls without a
    :class:`PrefixLayout` mask go to the original implementation unchanged.
    """
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from rerankctl.models.yes_no_head import causal_lm_of

    if supports_shared_prefix(model) is not None:
        return False
    config = causal_lm_of(model).config
    current = config._attn_implementation or "eager"
    if current.startswith(_NAME):
        return True
    name = _NAME + current
    ALL_ATTENTION_FUNCTIONS.register(name, _make_interface(current))
    if current in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS._global_mapping[current])
    config._attn_implementation = name
    return True


def original_attention(model: Any) -> str:
    """The attention implementation behind the shared-prefix wrapper (or the current one)."""
    from rerankctl.models.yes_no_head import causal_lm_of

    name = causal_lm_of(model).config._attn_implementation or "eager"
    return name[len(_NAME) :] if name.startswith(_NAME) else name


def is_enabled(model: Any) -> bool:
    from rerankctl.models.yes_no_head import causal_lm_of

    config = getattr(causal_lm_of(model), "config", None)
    return bool(config is not None and str(config._attn_implementation or "").startswith(_NAME))


# ------------------------------------------------------------------------------------ scoring
def shared_prefix_scores(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    group_ids: Sequence[int] | torch.Tensor | str | None = None,
    yes_no: tuple[int, int] | None = None,
    method: str = "blocked",
) -> torch.Tensor:
    """Scores (R,) of padded prompt rows, each group's common head encoded once.

    ``group_ids`` (R,): rows with equal consecutive ids share a head (None: all rows one group;
    ``"auto"``: groups found from the tokens, :func:`auto_groups`).
    With a :class:`~rerankctl.models.yes_no_head.YesNoHead` installed the score comes from the
    model's forward (``logits_to_keep`` = the segments' last tokens); otherwise give ``yes_no``
    and the decoder's hidden states meet the two head rows directly. ``method="dense"`` uses a
    dense 4-D boolean mask through the original (SDPA) attention instead of the block-sparse one.
    """
    from rerankctl.models.scoring import decoder_and_head
    from rerankctl.models.yes_no_head import has_yes_no_head

    packed = pack_rows(input_ids, attention_mask, group_ids)
    if method == "blocked":
        if not enable_shared_prefix(model):
            raise ValueError("shared-prefix scoring is not supported for this model")
        mask: Any = {"full_attention": packed.layout}
    elif method == "dense":
        if is_enabled(model) and original_attention(model) != "sdpa":
            raise ValueError("method='dense' needs the sdpa attention implementation")
        mask = packed.layout.dense_mask()
    else:
        raise ValueError(f"unknown method {method!r} (blocked, dense)")
    common = {"input_ids": packed.input_ids, "attention_mask": mask, "position_ids": packed.position_ids}
    if has_yes_no_head(model):
        out = model(**common, logits_to_keep=packed.last, use_cache=False)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return logits[0, :, 0].to(torch.float32)
    if yes_no is None:
        raise ValueError("give yes_no=(yes_id, no_id) for a model without a YesNoHead")
    decoder, head = decoder_and_head(model)
    hidden = decoder(**common, use_cache=False).last_hidden_state[0, packed.last]
    yes, no = yes_no
    direction = (head.weight[yes] - head.weight[no]).to(torch.float32)
    score = hidden.to(torch.float32) @ direction
    bias = getattr(head, "bias", None)
    if bias is not None:
        score = score + (bias[yes] - bias[no]).to(torch.float32)
    return score


def group_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Row -> group index for the collator's layout (rows fill ``mask``'s True cells row-major)."""
    groups = torch.arange(mask.shape[0], device=mask.device)[:, None].expand_as(mask)
    return groups[mask]
