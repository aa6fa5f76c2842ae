"""Length-grouped batching: put groups of similar length in one batch to cut padding.

Like the Hugging Face ``LengthGroupedSampler``: shuffle all indices, cut them into
"mega-batches" of ``batch_size * mega_batch_mult``, sort each mega-batch by length,
cut it into batches, and shuffle the batch order (keeping the longest batch first, so
an out-of-memory shows up at step one rather than hours in). Deterministic under
(seed, epoch); with ``world_size > 1`` each rank takes every ``world_size``-th batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rerankctl.data.sampling import rng_for


class LengthGroupedBatchSampler:
    """A batch sampler (yields lists of indices) for ``DataLoader(batch_sampler=...)``.

    Args:
        lengths: a length per dataset item (tokens, or characters as a cheap proxy).
        batch_size: items per batch.
        mega_batch_mult: how many batches are sorted together; larger = less padding, less randomness.
        seed: the shuffling seed; :meth:`set_epoch` changes the order each epoch.
        drop_last: drop a last, smaller batch.
        rank, world_size: take this rank's share of the batches (no duplicates, no losses
            beyond ``drop_last``).
    """

    def __init__(
        self,
        lengths: Sequence[float],
        batch_size: int,
        mega_batch_mult: int = 50,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.mega_batch_mult = max(1, mega_batch_mult)
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = rng_for(self.seed, self.epoch, -1)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        mega = self.batch_size * self.mega_batch_mult
        batches: list[list[int]] = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda i: -self.lengths[i])
            batches.extend(chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            # Only one batch can be short: the tail of the last mega-batch.
            batches.pop()
        if not batches:
            return batches
        longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]])
        first = batches.pop(longest)
        rng.shuffle(batches)
        return [first, *batches]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        yield from batches[self.rank :: self.world_size]

    def __len__(self) -> int:
        # Mega-batches hold whole batches; only the last mega-batch can end in a short batch.
        full, rest = divmod(len(self.lengths), self.batch_size * self.mega_batch_mult)
        n = full * self.mega_batch_mult + (
            rest // self.batch_size if self.drop_last else -(-rest // self.batch_size)
        )
        return len(range(self.rank, n, self.world_size))


def padding_waste(batches: Sequence[Sequence[int]]) -> float:
    """Fraction of padded positions over batches of row lengths (each batch padded to its max)."""
    padded = sum(len(rows) * max(rows) for rows in batches if rows)
    real = sum(sum(rows) for rows in batches)
    return 0.0 if padded == 0 else 1.0 - real / padded
