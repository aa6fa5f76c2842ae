"""Splitting a file into train/test by query (no leakage), and random sampling of lines.

Both stream the file (two passes for a split: one for the distinct keys, one to write)
and keep the rows unchanged. The split key is the query for rerank data, the prompt for
preference data and the image for VL data, so no query (prompt, image) lands on both sides.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass
from typing import Any

from rerankctl.data.io import atomic_writer, dumps
from rerankctl.data.validate import parse_rows, resolve_kind
from rerankctl.errors import DataError, UsageError


def split_key(kind: str, record: Any) -> str:
    """What must not be shared between train and test."""
    if kind == "rerank":
        return json.dumps([record.instruction, record.query], ensure_ascii=False)
    if kind == "preference":
        return json.dumps(record.prompt, ensure_ascii=False, sort_keys=True)
    return record.image


@dataclass
class SplitReport:
    kind: str
    keys: int
    test_keys: int
    train_rows: int
    test_rows: int


def split_file(
    path: str | os.PathLike,
    train_output: str | os.PathLike,
    test_output: str | os.PathLike,
    test_frac: float = 0.1,
    seed: int = 0,
    kind: str | None = None,
    processor: Any = None,
) -> SplitReport:
    """Write ``round(test_frac * distinct keys)`` keys' rows to ``test_output``, the rest to ``train_output``.

    With a ``processor`` (data/processor.py) both files hold the records as it returns them.

    Raises:
        DataError: on a bad record (validate or clean the file first).
    """
    if not 0.0 < test_frac < 1.0:
        raise UsageError(f"--test-frac must be between 0 and 1, got {test_frac}")
    if processor is not None:
        from rerankctl.data.processor import load_processor

        processor = load_processor(processor)
    kind = resolve_kind(str(path), kind, processor)
    keys: dict[str, None] = {}
    for _row, record, error in parse_rows(path, kind, check_images=False, processor=processor):
        if error is not None:
            raise error
        keys.setdefault(split_key(kind, record))
    ordered = list(keys)
    if len(ordered) < 2:
        raise DataError("fewer than 2 distinct queries: nothing to split", path=str(path))
    n_test = min(len(ordered) - 1, max(1, math.floor(test_frac * len(ordered) + 0.5)))
    random.Random(f"rerankctl-split/{seed}").shuffle(ordered)
    test = set(ordered[:n_test])
    report = SplitReport(kind, len(ordered), n_test, 0, 0)
    with atomic_writer(train_output) as train, atomic_writer(test_output) as held:
        for row, record, _error in parse_rows(path, kind, check_images=False, processor=processor):
            if split_key(kind, record) in test:
                held.write(dumps(row.obj) + "\n")
                report.test_rows += 1
            else:
                train.write(dumps(row.obj) + "\n")
                report.train_rows += 1
    return report


def sample_file(
    path: str | os.PathLike,
    n: int,
    output: str | os.PathLike,
    seed: int = 0,
    kind: str | None = None,
    processor: Any = None,
) -> int:
    """Write ``n`` valid rows chosen uniformly at random (reservoir sampling), in file order.

    Bad rows are skipped. Returns how many rows were written (fewer when the file is short).
    """
    if n < 1:
        raise UsageError(f"-n must be at least 1, got {n}")
    rng = random.Random(f"rerankctl-sample/{seed}")
    reservoir: list[tuple[int, Any]] = []
    seen = 0
    for row, _record, error in parse_rows(path, kind, check_images=False, processor=processor):
        if error is not None:
            continue
        seen += 1
        if len(reservoir) < n:
            reservoir.append((row.line, row.obj))
        else:
            slot = rng.randrange(seen)
            if slot < n:
                reservoir[slot] = (row.line, row.obj)
    if not reservoir:
        raise DataError("no valid records to sample", path=str(path))
    reservoir.sort(key=lambda item: item[0])
    with atomic_writer(output) as handle:
        for _line, obj in reservoir:
            handle.write(dumps(obj) + "\n")
    return len(reservoir)
