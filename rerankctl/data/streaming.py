"""`StreamingRerankDataset`: an IterableDataset over a JSONL file of any size, in constant memory.

Reads the file line by line; never holds more than one line (plus an optional
shuffle buffer). Sharding is by record ordinal: with R ranks and W DataLoader workers
there are R*W readers, and reader ``rank * W + worker`` keeps records ``k`` with
``k % (R*W) == rank * W + worker``, so every record is read by exactly one reader
(no duplicates, no losses) and keeps its line number for error messages. The other
readers' lines are skipped without JSON parsing, which is cheap next to parsing.

`datasets`' own streaming mode shards by *file*, so a single large file would go to one
worker; that, and the need for line-accurate errors, is why this reader exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from rerankctl.data.formats import RecordError, parse_rerank
from rerankctl.data.io import BOM, NOT_UTF8_HINT, check_exists, file_format, open_binary, parse_json_line_full
from rerankctl.data.limits import DEFAULT_MAX_CHARS, cap_record
from rerankctl.data.sampling import build_group, rng_for
from rerankctl.errors import DataError, UsageError

log = logging.getLogger(__name__)


def _dist_rank_world() -> tuple[int, int]:
    """The distributed rank and world size (torch.distributed, else RANK/WORLD_SIZE, else 0/1)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _iterable_base():
    import torch.utils.data

    return torch.utils.data.IterableDataset


class StreamingRerankDataset(_iterable_base()):
    """Query groups streamed from a JSONL file (optionally gzip-compressed).

    Args:
        path: the JSONL file.
        n_docs, n_pos, max_docs, strategy, seed: group sampling (see :mod:`.sampling`).
        rank, world_size: this process's shard; default from torch.distributed or RANK/WORLD_SIZE.
        skip_invalid: skip (and count, per reader) bad lines instead of raising.
        shuffle_buffer: shuffle within a buffer of this many groups (0 = file order).
        max_chars: characters kept per text field as lines are read (0 = all); ``cut`` counts
            this reader's cut records.
        processor: ``FILE:CLASS`` that rewrites every record first (data/processor.py; loaded
            again in each worker); ``processor_dropped`` counts this reader's dropped records.
        max_records: read only the file's first this many records (non-blank lines, valid or
            not, so every shard agrees where the cap falls).
        min_pos, min_neg: skip groups with fewer positives / negatives (``too_few_dropped``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        n_docs: int = 8,
        n_pos: int = 1,
        max_docs: int = 0,
        strategy: str = "hard",
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        skip_invalid: bool = False,
        shuffle_buffer: int = 0,
        max_chars: int = DEFAULT_MAX_CHARS,
        processor: Any = None,
        max_records: int | None = None,
        min_pos: int = 0,
        min_neg: int = 0,
    ) -> None:
        from rerankctl.data.processor import load_processor

        super().__init__()
        self.path = str(check_exists(path))
        if file_format(self.path) != "jsonl":
            raise UsageError(
                f"{self.path}: streaming reads JSONL only",
                hint="convert it (`rerankctl data convert`) or load it with RerankDataset",
            )
        self.n_docs, self.n_pos, self.max_docs, self.strategy = n_docs, n_pos, max_docs, strategy
        self.seed, self.epoch = seed, 0
        self.rank, self.world_size = rank, world_size
        self.skip_invalid = skip_invalid
        self.shuffle_buffer = shuffle_buffer
        self.skipped = 0
        self.max_chars = max_chars
        self.cut = 0
        self.processor = load_processor(processor)
        self.processor_dropped = 0
        self.max_records = max_records
        self.min_pos, self.min_neg = min_pos, min_neg
        self.too_few_dropped = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        import torch.utils.data

        rank, world = self._resolved_rank_world()
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        return rank * workers + worker, world * workers

    def _resolved_rank_world(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        rank, world = _dist_rank_world()
        return (self.rank if self.rank is not None else rank), (self.world_size or world)

    def _open(self):
        return open_binary(self.path)  # the same reader as data validate: gzip by content

    def iter_records(self) -> Iterator[tuple[int, int, Any]]:
        """(ordinal, line, RerankRecord) of this reader's share, in file order."""
        shard, shards = self._shard()
        ordinal = -1
        with self._open() as handle:
            for line, raw in enumerate(handle, start=1):
                if line == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                if not raw.strip():
                    continue
                if self.max_records is not None and ordinal + 1 >= self.max_records:
                    break
                ordinal += 1
                if ordinal % shards != shard:
                    continue
                obj, error, bad_field = parse_json_line_full(raw)
                try:
                    if error is not None:
                        hint = NOT_UTF8_HINT if error.startswith("not UTF-8") else None
                        raise RecordError(bad_field, error, hint)
                    if self.processor is not None:
                        obj, failed = self.processor.apply(obj)
                        if failed is not None:
                            raise RecordError(None, *failed)
                        if obj is None:
                            self.processor_dropped += 1
                            continue
                    record = parse_rerank(obj)
                except RecordError as exc:
                    if not self.skip_invalid:
                        raise DataError(
                            exc.message, exc.hint, path=self.path, line=line, field=exc.field
                        ) from None
                    self.skipped += 1
                    continue
                positives = sum(1 for v in record.labels if v > 0)
                if positives < self.min_pos or len(record.labels) - positives < self.min_neg:
                    self.too_few_dropped += 1
                    continue
                if cap_record(record, self.max_chars):
                    self.cut += 1
                yield ordinal, line, record
        if ordinal == -1:
            from rerankctl.data.validate import empty_error

            raise empty_error(self.path)
        if self.skipped:
            log.warning(
                "%s: skipped %d invalid line(s) in shard %d/%d", self.path, self.skipped, shard, shards
            )

    def _groups(self) -> Iterator[dict[str, Any]]:
        for ordinal, _line, record in self.iter_records():
            rng = rng_for(self.seed, self.epoch, ordinal)
            yield build_group(record, self.n_docs, self.n_pos, self.max_docs, rng, self.strategy).to_dict()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.shuffle_buffer <= 1:
            yield from self._groups()
            return
        shard, _ = self._shard()
        rng = rng_for(self.seed, self.epoch, -1 - shard)
        buffer: list[dict[str, Any]] = []
        for group in self._groups():
            if len(buffer) < self.shuffle_buffer:
                buffer.append(group)
                continue
            slot = rng.randrange(len(buffer))
            buffer[slot], group = group, buffer[slot]
            yield group
        rng.shuffle(buffer)
        yield from buffer
