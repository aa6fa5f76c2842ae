"""Turning a list of query groups into the tensors the SFT trainer consumes.

Output of :class:`RerankCollator` (B groups, N = the largest group, R = real documents)::

    input_ids       LongTensor[R, T]   left-padded prompts, groups' documents consecutive
    attention_mask  LongTensor[R, T]
    labels          FloatTensor[B, N]  relevance per document (0 where padded)
    mask            BoolTensor[B, N]   True for real documents; the rows of input_ids fill
                                       the True positions in row-major order
    teacher_scores  FloatTensor[B, N]  only when every group has teacher scores
    num_tokens      int                non-pad tokens in input_ids
    num_truncated   int                prompts cut to max_length
    num_dropped     int                only with filter_overlength: documents dropped

Tokenization is batched (one fast-tokenizer call for all documents of the batch) through
:class:`rerankctl.data.prompt.PromptTokenizer`, which keeps the prefix and suffix intact.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rerankctl.data.formats import RerankRecord
from rerankctl.data.prompt import PromptTokenizer

log = logging.getLogger(__name__)


def _as_group(feature: Any) -> Mapping[str, Any]:
    return feature.to_dict() if isinstance(feature, RerankRecord) else feature


class RerankCollator:
    """Collate group dicts (``query, docs, labels, instruction, teacher_scores``) into a batch.

    Args:
        tokenizer: a Hugging Face tokenizer whose "yes" and "no" are single tokens.
        max_length: the longest prompt in tokens; longer ones lose document tokens (then query tokens).
        filter_overlength: drop documents whose prompt exceeds ``max_length`` instead of
            truncating them; the batch's ``num_dropped`` says how many.
        pad_to_multiple_of: round T up (e.g. 8 for tensor cores).
    """

    def __init__(
        self,
        tokenizer: Any,
        max_length: int = 512,
        filter_overlength: bool = False,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self.prompt = PromptTokenizer(tokenizer, max_length=max_length)
        self.max_length = max_length
        self.filter_overlength = filter_overlength
        self.pad_to_multiple_of = pad_to_multiple_of
        self.total_dropped = 0

    def __call__(self, features: Sequence[Any]) -> dict[str, Any]:
        import torch

        groups = [_as_group(f) for f in features]
        queries, docs, instructions = [], [], []
        for group in groups:
            n = len(group["docs"])
            queries.extend([group["query"]] * n)
            docs.extend(group["docs"])
            instructions.extend([group.get("instruction")] * n)
        ids, truncated = self.prompt.encode_pairs(queries, docs, instructions)

        keep = [not (self.filter_overlength and cut) for cut in truncated]
        kept_per_group, offset = [], 0
        for group in groups:
            n = len(group["docs"])
            kept_per_group.append([j for j in range(n) if keep[offset + j]])
            offset += n
        width = max((len(k) for k in kept_per_group), default=0)

        labels = torch.zeros((len(groups), width), dtype=torch.float32)
        mask = torch.zeros((len(groups), width), dtype=torch.bool)
        with_teacher = bool(groups) and all(g.get("teacher_scores") is not None for g in groups)
        teacher = torch.zeros((len(groups), width), dtype=torch.float32) if with_teacher else None
        for b, (group, kept) in enumerate(zip(groups, kept_per_group, strict=False)):
            for col, j in enumerate(kept):
                labels[b, col] = float(group["labels"][j])
                mask[b, col] = True
                if teacher is not None:
                    teacher[b, col] = float(group["teacher_scores"][j])

        rows = [seq for seq, k in zip(ids, keep, strict=False) if k]
        batch: dict[str, Any] = dict(self.prompt.pad(rows, self.pad_to_multiple_of))
        batch["labels"] = labels
        batch["mask"] = mask
        if teacher is not None:
            batch["teacher_scores"] = teacher
        batch["num_tokens"] = sum(len(seq) for seq in rows)
        batch["num_truncated"] = sum(1 for cut, k in zip(truncated, keep, strict=False) if cut and k)
        if self.filter_overlength:
            dropped = len(keep) - len(rows)
            batch["num_dropped"] = dropped
            if dropped:
                self.total_dropped += dropped
                log.info("dropped %d over-length document(s) (max_length %d)", dropped, self.max_length)
        return batch
