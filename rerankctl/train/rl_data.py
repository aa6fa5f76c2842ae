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
from rerankctl.data.streaming import StreamingRerankDataset


class RLRerankDataset(RerankDataset):
    """:class:`RerankDataset` with RL defaults: all documents (``n_docs=0``) up to ``max_docs``, data's ratio."""

    def __init__(
        self, source: Any, n_docs: int = 0, n_pos: int = 0, max_docs: int = 32, **kwargs: Any
    ) -> None:
        super().__init__(source, n_docs=n_docs, n_pos=n_pos, max_docs=max_docs, **kwargs)


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

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for group in super().__iter__():
            if self.instruction and not group.get("instruction"):
                group = dict(group, instruction=self.instruction)
            yield group


class RLCollator(RerankCollator):
    """:class:`RerankCollator` plus ``group_index`` ``LongTensor[R]``: the group of every prompt row.

    Groups are the policy's rollout groups (advantages are normalised within them).
    """

    def __call__(self, features: Any) -> dict[str, Any]:
        import torch

        batch = super().__call__(features)
        mask = batch["mask"]
        batch["group_index"] = torch.arange(mask.shape[0]).repeat_interleave(mask.sum(1))
        return batch
