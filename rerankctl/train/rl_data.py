"""Query groups for RL: the SFT data layer with RL's defaults, and a collator that says which row is whose.

RL ranks a query's documents and rewards the ranking, so a group should hold as many of the
query's documents as fit (``n_docs 0`` = all of them, capped by ``max_docs``) in the data's own
positive/negative ratio (``n_pos 0``). Groups without both a relevant and an irrelevant
document earn the same reward for every ranking and teach nothing; the trainer gives them
zero advantage (DAPO's dynamic sampling drops them from the loss).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rerankctl.data.collator import RerankCollator
from rerankctl.data.rerank_dataset import RerankDataset
from rerankctl.data.streaming import StreamingRerankDataset, _iterable_base


class RLRerankDataset(RerankDataset):
    """:class:`RerankDataset` with RL defaults: all documents (``n_docs=0``) up to ``max_docs``, data's ratio.

    Every group carries ``record_index`` (its row), which seeds its rollout generator.
    """

    def __init__(
        self, source: Any, n_docs: int = 0, n_pos: int = 0, max_docs: int = 32, **kwargs: Any
    ) -> None:
        super().__init__(source, n_docs=n_docs, n_pos=n_pos, max_docs=max_docs, **kwargs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(super().__getitem__(index), record_index=int(index))


class StreamingRLRerankDataset(StreamingRerankDataset):
    """:class:`StreamingRerankDataset` with the same RL defaults, for JSONL files of any size.

    ``instruction`` fills groups that have none (the streaming twin of the runner's ``WithInstruction``).
    """

    def __init__(
        self,
        path: Any,
        n_docs: int = 0,
        n_pos: int = 0,
        max_docs: int = 32,
        instruction: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, n_docs=n_docs, n_pos=n_pos, max_docs=max_docs, **kwargs)
        self.instruction = instruction

    def _groups(self) -> Iterator[dict[str, Any]]:
        from rerankctl.data.sampling import build_group, rng_for

        for ordinal, _line, record in self.iter_records():
            rng = rng_for(self.seed, self.epoch, ordinal)
            group = build_group(record, self.n_docs, self.n_pos, self.max_docs, rng, self.strategy)
            yield dict(group.to_dict(), record_index=ordinal)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for group in super().__iter__():
            if self.instruction and not group.get("instruction"):
                group = dict(group, instruction=self.instruction)
            yield group


class RLCollator(RerankCollator):
    """:class:`RerankCollator` plus ``group_index`` ``LongTensor[R]`` (the group of every prompt row)
    and ``record_index`` ``LongTensor[B]`` (every group's record; −1 when the group has none).

    Groups are the policy's rollout groups (advantages are normalised within them).
    """

    def __call__(self, features: Any) -> dict[str, Any]:
        import torch

        batch = super().__call__(features)
        mask = batch["mask"]
        batch["group_index"] = torch.arange(mask.shape[0]).repeat_interleave(mask.sum(1))
        batch["record_index"] = torch.tensor(
            [int(f.get("record_index", -1)) if hasattr(f, "get") else -1 for f in features], dtype=torch.long
        )
        return batch


def select_groups(parts: list[tuple[dict[str, Any], list[int]]], pad: Any) -> dict[str, Any]:
    """One batch of the chosen groups of several collated batches (DAPO's refill).

    ``parts`` are ``(batch, group positions)``; rows keep their tokens (left padding is stripped
    and re-applied by ``pad``, :meth:`PromptTokenizer.pad`), labels and masks are re-laid out.
    """
    import torch

    rows, labels, records = [], [], []
    for batch, chosen in parts:
        ids, attn = batch["input_ids"].cpu(), batch["attention_mask"].cpu().bool()
        mask, lab = batch["mask"].cpu(), batch["labels"].cpu()
        starts = torch.cumsum(mask.sum(1), 0) - mask.sum(1)
        for b in chosen:
            n = int(mask[b].sum())
            for r in range(int(starts[b]), int(starts[b]) + n):
                rows.append(ids[r][attn[r]].tolist())
            labels.append(lab[b][mask[b]])
            records.append(int(batch["record_index"][b]) if "record_index" in batch else -1)
    width = max(len(x) for x in labels)
    out: dict[str, Any] = dict(pad(rows))
    out["labels"] = torch.zeros((len(labels), width), dtype=torch.float32)
    out["mask"] = torch.zeros((len(labels), width), dtype=torch.bool)
    for b, lab in enumerate(labels):
        out["labels"][b, : len(lab)] = lab
        out["mask"][b, : len(lab)] = True
    out["group_index"] = torch.arange(len(labels)).repeat_interleave(out["mask"].sum(1))
    out["record_index"] = torch.tensor(records, dtype=torch.long)
    out["num_tokens"] = int(out["attention_mask"].sum())
    return out


class RolloutRepeatSampler:
    """Indices for μ passes over every rollout: a seeded permutation cut into chunks of ``chunk``
    indices (one rollout: batch size × accumulation × steps per rollout × world size), each chunk
    served ``repeats`` times in a row. Only whole chunks (a partial rollout would mix passes).

    The dataset samples a group from (seed, epoch, index), so a repeated index is the same group.
    """

    def __init__(self, n: int, chunk: int, repeats: int, seed: int = 0) -> None:
        self.n, self.chunk, self.repeats, self.seed, self.epoch = n, chunk, repeats, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.n // self.chunk) * self.chunk * self.repeats

    def __iter__(self) -> Iterator[int]:
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        for start in range(0, (self.n // self.chunk) * self.chunk, self.chunk):
            part = order[start : start + self.chunk]
            for _ in range(self.repeats):
                yield from part


class RepeatChunks(_iterable_base()):
    """A stream served as rollouts: every ``chunk`` items yielded ``repeats`` times (streaming data)."""

    def __init__(self, dataset: Any, chunk: int, repeats: int) -> None:
        super().__init__()
        self.dataset, self.chunk, self.repeats = dataset, chunk, repeats

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        part: list[dict[str, Any]] = []
        for item in self.dataset:
            part.append(item)
            if len(part) == self.chunk:
                for _ in range(self.repeats):
                    yield from part
                part = []
