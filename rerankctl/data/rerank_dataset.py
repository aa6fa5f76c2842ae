"""`RerankDataset`: a map-style dataset of query groups over memory-mapped Arrow.

Local files are read by the same line reader as ``data validate`` (:func:`rerankctl.data.
validate.parse_rows`: gzip, BOM, the same errors and the same "empty file" verdict) and
written once into Arrow with ``Dataset.from_generator`` (cached under the file's size and
mtime, memory-mapped, so a large file costs little RAM). Hub datasets load through
``load_dataset`` and are normalised with ``Dataset.map``. Either way the columns are
``query, docs, labels, instruction, teacher_scores``, every text field is cut to
``max_chars`` characters as it is read (data/limits.py), and every ``__getitem__``
samples a fresh group of ``n_docs`` documents with a generator seeded by (seed, epoch, index).

A bad record stops loading with a :class:`DataError` naming the file, the line and the
field; ``skip_invalid`` drops and counts bad records instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerankctl import paths
from rerankctl.data.formats import RecordError, RerankRecord, parse_rerank
from rerankctl.data.limits import DEFAULT_MAX_CHARS, cap_record
from rerankctl.data.sampling import build_group, rng_for
from rerankctl.errors import DataError, NotFoundError, RerankctlError

log = logging.getLogger(__name__)

# Bump when _file_rows changes what it writes: the Arrow cache of every file is rebuilt.
_READER_VERSION = 3
QUIET_BELOW = 100_000  # rows: smaller data sets normalise in well under a second


def _features():
    from datasets import Features, List, Value

    return Features(
        {
            "query": Value("string"),
            "docs": List(Value("string")),
            "labels": List(Value("float64")),
            "instruction": Value("string"),
            "teacher_scores": List(Value("float64")),
            "hardness": List(Value("float64")),
            "_error": Value("string"),
            "_cut": Value("bool"),
        }
    )


def _decode_cells(row: dict[str, Any]) -> dict[str, Any]:
    """CSV columns holding lists arrive as JSON text; Arrow fills absent keys with None."""
    out = {}
    for key, value in row.items():
        if isinstance(value, str) and value[:1] == "[" and key != "query":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if value is not None:
            out[key] = value
    return out


def _error_row(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "query": "",
        "docs": [],
        "labels": [],
        "instruction": None,
        "teacher_scores": None,
        "hardness": None,
        "_error": json.dumps(error),
        "_cut": False,
    }


def _dropped_row(count: int) -> dict[str, Any]:
    """A marker row: ``count`` records the processor dropped (kept in the Arrow cache, so a cached
    read still knows how many)."""
    return _error_row({"dropped": count})


def _normalise(row: dict[str, Any], max_chars: int = 0, processor: str | None = None) -> dict[str, Any]:
    obj: Any = _decode_cells(row)
    if processor is not None:
        from rerankctl.data.processor import load_processor

        obj, error = load_processor(processor).apply(obj)
        if error is not None:
            return _error_row({"field": None, "message": error[0], "hint": error[1], "line": None})
        if obj is None:
            return _dropped_row(1)
    try:
        record = parse_rerank(obj)
    except RecordError as exc:
        return _error_row({"field": exc.field, "message": exc.message, "hint": exc.hint, "line": None})
    cut = cap_record(record, max_chars)
    return {**record.to_dict(), "hardness": record.hardness, "_error": None, "_cut": cut}


def _file_rows(
    path: str,
    stamp: tuple[int, int],
    max_chars: int,
    processor: str | None = None,
    max_records: int | None = None,
):
    """Normalised rows of a local file through the one line reader (``stamp`` keys the cache)."""
    from rerankctl.data.io import ReadCounts
    from rerankctl.data.validate import parse_rows

    del stamp  # only part of the cache key: a changed file is read again
    counts = ReadCounts()
    rows = parse_rows(
        path, "rerank", check_images=False, counts=counts, processor=processor, max_records=max_records
    )
    for _row, record, error in rows:
        if error is not None:
            # The message already names file, line and field; line and field ride along for callers.
            yield _error_row(
                {
                    "message": error.message,
                    "hint": error.hint,
                    "line": error.line,
                    "field": error.field,
                    "full": True,
                }
            )
            continue
        cut = cap_record(record, max_chars)
        yield {**record.to_dict(), "hardness": record.hardness, "_error": None, "_cut": cut}
    if counts.dropped:
        yield _dropped_row(counts.dropped)


@contextlib.contextmanager
def _quiet_progress(rows: int):
    """No `datasets` progress bars for small data (they are noise in a training log)."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    if was_enabled and rows < QUIET_BELOW:
        ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def read_file(
    path: str | os.PathLike,
    max_chars: int = 0,
    cache_dir: str | None = None,
    processor: Any = None,
    max_records: int | None = None,
):
    """A local file as a normalised `datasets.Dataset` (with ``_error``/``_cut`` columns).

    ``processor`` (data/processor.py) rewrites each row first; ``max_records`` stops reading after
    that many rows. Both are part of the cache key (the processor by its file's sha256).

    Raises:
        DataError: an empty file, an unreadable Parquet file (bad lines are ``_error`` rows).
    """
    from datasets import Dataset

    path = str(path)
    info = os.stat(path)
    stamp = (info.st_size, info.st_mtime_ns)
    cache_dir = cache_dir or str(paths.cache_dir("datasets"))
    # Our own cache key: datasets' default one would not change with the file or the cap.
    spec = digest = None
    if processor is not None:
        from rerankctl.data.processor import load_processor

        loaded = load_processor(processor)
        spec, digest = loaded.spec, loaded.digest
    key = json.dumps([_READER_VERSION, os.path.abspath(path), stamp, max_chars, spec, digest, max_records])
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]
    try:
        with _quiet_progress(info.st_size // 100):  # ~100 bytes per record at the least
            return Dataset.from_generator(
                _file_rows,
                features=_features(),
                cache_dir=cache_dir,
                gen_kwargs={
                    "path": path,
                    "stamp": stamp,
                    "max_chars": max_chars,
                    "processor": spec,  # the spec, not the object: gen_kwargs are pickled
                    "max_records": max_records,
                },
                fingerprint=fingerprint,
            )
    except Exception as exc:  # noqa: BLE001 - datasets wraps the generator's error in its own
        cause = exc if isinstance(exc, RerankctlError) else (exc.__cause__ or exc.__context__)
        if isinstance(cause, RerankctlError):
            raise cause from None
        raise


def load_hub(source: str, split: str = "train", cache_dir: str | None = None):
    """A hub dataset (`load_dataset`), for names like ``org/name``."""
    from datasets import load_dataset

    cache_dir = cache_dir or str(paths.cache_dir("datasets"))
    try:
        return load_dataset(str(source), split=split, cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for "not there / offline"
        raise NotFoundError(
            f"cannot load dataset {source!r}: {type(exc).__name__}: {exc}",
            hint="offline? download it first, or pass a local JSONL/Parquet/CSV file",
        ) from None


class RerankDataset:
    """Query groups for reranker training; a ``torch.utils.data.Dataset`` by protocol.

    Args:
        source: a file path, a hub dataset name, a list of records (rerank dicts or
            :class:`RerankRecord`), or a `datasets.Dataset` with rerank columns.
        n_docs: documents per group (0 = all, capped by ``max_docs``).
        n_pos: positives per group (0 = the record's own ratio).
        max_docs: cap when ``n_docs`` is 0 (0 = no cap).
        strategy: negative sampling, ``hard``/``random``/``mixed`` (see :mod:`.sampling`).
        seed: sampling seed; :meth:`set_epoch` re-samples.
        skip_invalid: drop bad records (counted in ``skipped``) instead of failing.
        split: the split of a hub dataset.
        max_chars: characters kept per text field as records are read (0 = all); the
            records cut are counted in ``cut``.
        processor: ``FILE:CLASS`` (or a loaded one) that rewrites every record first
            (data/processor.py); the records it drops are counted in ``processor_dropped``.
        max_records: read only the first this many records (file order, before the processor;
            the seed tool's ``--max-samples``).
        min_pos, min_neg: drop groups with fewer positives (label > 0) / negatives (label 0)
            than this (the seed tool's ``min_pos``/``min_neg``); counted in ``too_few_dropped``.
    """

    def __init__(
        self,
        source: Any,
        n_docs: int = 8,
        n_pos: int = 1,
        max_docs: int = 0,
        strategy: str = "hard",
        seed: int = 0,
        skip_invalid: bool = False,
        split: str = "train",
        cache_dir: str | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        processor: Any = None,
        max_records: int | None = None,
        min_pos: int = 0,
        min_neg: int = 0,
    ) -> None:
        from rerankctl.data.processor import load_processor

        self.n_docs, self.n_pos, self.max_docs = n_docs, n_pos, max_docs
        self.strategy, self.seed, self.epoch = strategy, seed, 0
        self.source = str(source) if isinstance(source, (str, os.PathLike)) else "<records>"
        self.skipped = 0
        self.dropped_docs = 0
        self.dropped_groups = 0
        self.max_chars = max_chars
        self.cut = 0
        self.processor = load_processor(processor)
        self.processor_dropped = 0
        self.max_records = max_records
        self.too_few_dropped = 0
        self.data = self._load(source, skip_invalid, split, cache_dir)
        if min_pos or min_neg:
            self._drop_small_groups(min_pos, min_neg)
        if len(self.data) == 0:
            raise DataError(
                "no valid records", hint="check it with `rerankctl data validate`", path=self.source
            )

    # ------------------------------------------------------------------------------------------ loading

    def _load(self, source: Any, skip_invalid: bool, split: str, cache_dir: str | None):
        from datasets import Dataset

        spec = self.processor.spec if self.processor is not None else None
        if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
            data = read_file(source, self.max_chars, cache_dir, self.processor, self.max_records)
        else:
            if isinstance(source, Sequence) and not isinstance(source, str):
                rows = [r.to_dict() if isinstance(r, RerankRecord) else r for r in source]
                raw = Dataset.from_list(rows) if rows else Dataset.from_dict({"query": []})
            elif isinstance(source, Dataset):
                raw = source
            elif "/" in str(source) and not str(source).startswith((".", "/")):
                raw = load_hub(str(source), split, cache_dir)
            else:
                raise NotFoundError(
                    f"{source}: no such file", hint="pass a JSONL/Parquet/CSV file or a hub dataset name"
                )
            if self.max_records is not None and len(raw) > self.max_records:
                raw = raw.select(range(self.max_records))
            with _quiet_progress(len(raw)):
                data = raw.map(
                    _normalise,
                    remove_columns=raw.column_names,
                    features=_features(),
                    fn_kwargs={"max_chars": self.max_chars, "processor": spec},
                    desc="normalising",
                )
        errors = data["_error"]
        markers = {
            i: json.loads(e)["dropped"] for i, e in enumerate(errors) if e and e.startswith('{"dropped"')
        }
        if markers:
            self.processor_dropped = sum(markers.values())
            data = data.select([i for i in range(len(data)) if i not in markers])
            errors = data["_error"]
            log.info("%s: the processor dropped %d record(s)", self.source, self.processor_dropped)
        bad = [i for i, error in enumerate(errors) if error is not None]
        if bad:
            if not skip_invalid:
                raise self._error_for(bad[0], errors[bad[0]])
            self.skipped += len(bad)
            log.warning("%s: skipped %d invalid record(s)", self.source, len(bad))
            drop = set(bad)
            data = data.select([i for i in range(len(data)) if i not in drop])
        self.cut = sum(data["_cut"])
        if self.cut:
            log.warning(
                "%s: cut %d record(s) with a field over %d characters (--max-chars)",
                self.source,
                self.cut,
                self.max_chars,
            )
        return data.remove_columns(["_error", "_cut"])

    def _drop_small_groups(self, min_pos: int, min_neg: int) -> None:
        """Keep groups with at least ``min_pos`` positives and ``min_neg`` negatives (counted, logged)."""

        def enough(labels: list[float]) -> bool:
            positives = sum(1 for v in labels if v > 0)
            return positives >= min_pos and len(labels) - positives >= min_neg

        before = len(self.data)
        with _quiet_progress(before):
            self.data = self.data.filter(enough, input_columns="labels")
        self.too_few_dropped = before - len(self.data)
        if before and not len(self.data):
            raise DataError(
                f"every group ({before}) has fewer than {min_pos} positive(s) or {min_neg} negative(s)",
                hint="lower --min-pos/--min-neg (`rerankctl data stats` shows documents per query)",
                path=self.source,
            )
        if self.too_few_dropped:
            log.info(
                "%s: dropped %d group(s) with fewer than %d positive(s) or %d negative(s) (--min-pos/--min-neg)",
                self.source,
                self.too_few_dropped,
                min_pos,
                min_neg,
            )

    def _error_for(self, index: int, error: str) -> DataError:
        first = json.loads(error)
        if first.get("full"):  # from the line reader: already "file:line: field 'x': ..."
            out = DataError(first["message"], first["hint"])
            out.path, out.line, out.field = self.source, first["line"], first["field"]
            return out
        return DataError(
            first["message"], first["hint"], path=self.source, line=index + 1, field=first["field"]
        )

    def filter_overlength(self, tokenizer: Any, max_length: int) -> int:
        """Drop documents whose prompt exceeds ``max_length`` (and groups left with no positive).

        Returns how many documents were dropped (also kept in ``dropped_docs``; logged).
        """
        from rerankctl.data.prompt import PromptTokenizer

        prompt = PromptTokenizer(tokenizer, max_length=max_length)

        def keep_short(batch: dict[str, list]) -> dict[str, list]:
            queries = [q for q, docs in zip(batch["query"], batch["docs"], strict=False) for _ in docs]
            instr = [i for i, docs in zip(batch["instruction"], batch["docs"], strict=False) for _ in docs]
            flat = [d for docs in batch["docs"] for d in docs]
            _, truncated = prompt.encode_pairs(queries, flat, instr)
            out = {k: [] for k in batch}
            pos = 0
            for b, docs in enumerate(batch["docs"]):
                keep = [j for j in range(len(docs)) if not truncated[pos + j]]
                pos += len(docs)
                for key in batch:
                    value = batch[key][b]
                    if key in ("docs", "labels") or (
                        key in ("teacher_scores", "hardness") and value is not None
                    ):
                        value = [value[j] for j in keep]
                    out[key].append(value)
            return out

        before = sum(len(d) for d in self.data["docs"])
        groups_before = len(self.data)
        with _quiet_progress(groups_before):
            data = self.data.map(keep_short, batched=True, batch_size=256, desc="filtering over-length")
            dropped = before - sum(len(d) for d in data["docs"])
            self.data = data.filter(lambda labels: any(v > 0 for v in labels), input_columns="labels")
        self.dropped_docs += dropped
        self.dropped_groups += groups_before - len(self.data)
        log.info(
            "%s: dropped %d over-length document(s) and %d group(s) left without a positive (max_length %d)",
            self.source,
            dropped,
            groups_before - len(self.data),
            max_length,
        )
        return dropped

    # ------------------------------------------------------------------------------------------ access

    def set_epoch(self, epoch: int) -> None:
        """Re-sample groups: item i of epoch e uses the generator of (seed, e, i)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data)

    def record(self, index: int) -> RerankRecord:
        """The full, unsampled record at ``index``."""
        row = self.data[int(index)]
        return RerankRecord(
            row["query"],
            row["docs"],
            row["labels"],
            row["instruction"],
            row["teacher_scores"],
            row.get("hardness"),
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = rng_for(self.seed, self.epoch, int(index))
        group = build_group(self.record(index), self.n_docs, self.n_pos, self.max_docs, rng, self.strategy)
        return group.to_dict()

    def token_lengths(self, tokenizer: Any, max_length: int = 512) -> list[int]:
        """The longest prompt (tokens, capped at ``max_length``) of each record: the best key for
        :class:`~rerankctl.data.batching.LengthGroupedBatchSampler` (one tokenization pass)."""
        from rerankctl.data.prompt import PromptTokenizer

        prompt = PromptTokenizer(tokenizer, max_length=max_length)
        out: list[int] = []
        for start in range(0, len(self.data), 256):
            batch = self.data[start : start + 256]
            queries = [q for q, docs in zip(batch["query"], batch["docs"], strict=False) for _ in docs]
            instr = [i for i, docs in zip(batch["instruction"], batch["docs"], strict=False) for _ in docs]
            ids, _ = prompt.encode_pairs(queries, [d for docs in batch["docs"] for d in docs], instr)
            pos = 0
            for docs in batch["docs"]:
                out.append(max((len(seq) for seq in ids[pos : pos + len(docs)]), default=0))
                pos += len(docs)
        return out

    def lengths(self) -> list[int]:
        """A cheap length per item for length-grouped batching: characters of query + longest doc."""
        return [
            len(q) + max((len(d) for d in docs), default=0)
            for q, docs in zip(self.data["query"], self.data["docs"], strict=False)
        ]
