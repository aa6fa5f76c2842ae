"""Validation of whole files: counts, the first errors with line numbers, the clean part.

Used by ``rerankctl data validate`` and by every loader that must refuse (or, with
``skip_invalid``, skip and count) bad records. Errors are
:class:`rerankctl.errors.DataError` values naming the file, line and field.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankctl.data.formats import KINDS, PARSERS, RecordError, detect_kind
from rerankctl.data.io import ReadCounts, Row, atomic_writer, dumps, iter_rows
from rerankctl.data.limits import cap_record
from rerankctl.errors import DataError, UsageError

log = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """What :func:`validate_file` found."""

    path: str
    kind: str
    total: int = 0
    valid: int = 0
    errors: list[DataError] = field(default_factory=list)
    invalid: int = 0
    written: int | None = None
    dropped: int = 0  # records the --processor dropped (returned None for)

    @property
    def ok(self) -> bool:
        return self.invalid == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "total": self.total,
            "valid": self.valid,
            "invalid": self.invalid,
            "written": self.written,
            "dropped": self.dropped,
            "errors": [
                {"line": e.line, "field": e.field, "message": e.message, "hint": e.hint} for e in self.errors
            ],
        }


def record_error(path: str, line: int, exc: RecordError) -> DataError:
    """A RecordError from a parser, with the file and line it came from."""
    return DataError(exc.message, exc.hint, path=path, line=line, field=exc.field)


def row_error(path: str, row: Row) -> DataError:
    return DataError(
        row.error or "unreadable",
        row.hint or "fix or drop this line (--skip-invalid)",
        path=path,
        line=row.line,
        field=row.field,
    )


def empty_error(path: str) -> DataError:
    """The verdict on a file with no records (nothing, or only blank lines) in every command."""
    return DataError("empty file: no records", hint="point at the file that holds the data", path=str(path))


# Rows looked at to tell the kind; past them the first unreadable line is the verdict.
_PEEK_ROWS = 1000


def _peek_kind(path: str, processor: Any = None) -> str:
    first_error: Row | None = None
    seen = 0
    counts = ReadCounts()
    for seen, row in enumerate(iter_rows(path, processor, counts), start=1):
        if row.error is None:
            kind = detect_kind(row.obj)
            if kind is not None:
                return kind
        elif first_error is None:
            first_error = row
        if seen >= _PEEK_ROWS:
            break
    if seen == 0:
        if counts.dropped:
            raise all_dropped_error(path, processor, counts.dropped)
        raise empty_error(path)
    if first_error is not None:
        # Nothing readable to tell the kind from: the unreadable line is the real problem
        # (a latin-1 file is "not UTF-8 at line 1", as train says, not "unknown kind").
        raise row_error(path, first_error)
    raise DataError(
        "cannot tell whether this is rerank, preference or VL data"
        + (" (as the processor returns it)" if processor is not None else ""),
        hint="rerank needs query/pos/neg or query/docs/labels; pass --kind to see the exact errors"
        + (", or --processor FILE:CLASS to rewrite your records" if processor is None else ""),
        path=path,
    )


def all_dropped_error(path: str, processor: Any, dropped: int) -> DataError:
    """The verdict on a file whose every record the processor dropped (returned None for)."""
    from rerankctl.data.processor import load_processor

    name = load_processor(processor).spec
    return DataError(
        f"the processor {name} dropped every record ({dropped})",
        hint="it returns None to drop a record; check what it expects of your records",
        path=str(path),
    )


def resolve_kind(path: str, kind: str | None, processor: Any = None) -> str:
    if kind is None or kind == "auto":
        return _peek_kind(path, processor)
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    return kind


def parse_rows(
    path: str | os.PathLike,
    kind: str | None = None,
    check_images: bool = True,
    max_chars: int = 0,
    counts: ReadCounts | None = None,
    processor: Any = None,
    max_records: int | None = None,
) -> Iterator[tuple[Row, Any, DataError | None]]:
    """Every row with its normalised record (or None) and its error (or None).

    ``max_chars`` cuts every text field of the records (not of ``row.obj``) as they are
    read; ``counts.cut`` counts the records cut. ``processor`` (``FILE:CLASS``, data/processor.py)
    rewrites each row first; ``counts.dropped`` counts the rows it drops. ``max_records`` reads
    only the file's first that many rows (valid or not, before the processor: the seed tool's
    ``--max-samples``, and where the streaming reader stops too). A file without any
    record raises the "empty file" DataError once it has been read.
    """
    path = str(path)
    if processor is not None:
        from rerankctl.data.processor import load_processor

        processor = load_processor(processor)
    kind = resolve_kind(path, kind, processor)
    parser = PARSERS[kind]
    base = Path(path).resolve().parent
    rows = 0
    counts = counts if counts is not None else ReadCounts()
    for row in iter_rows(path, processor, counts, limit=max_records):
        rows += 1
        if row.error is not None:
            yield row, None, row_error(path, row)
            continue
        try:
            record = parser(row.obj)
            if kind == "vl" and check_images:
                image = Path(record.image)
                if not (image if image.is_absolute() else base / image).is_file():
                    raise RecordError(
                        "image",
                        f"no such image file: {record.image}",
                        hint="paths are relative to the data file",
                    )
        except RecordError as exc:
            if processor is not None:  # the record is the processor's output, not the file's line
                exc.message = f"{exc.message} (in the record processor {processor.name} returned)"
            yield row, None, record_error(path, row.line, exc)
            continue
        if max_chars and cap_record(record, max_chars):
            counts.cut += 1
        yield row, record, None
    if rows == 0:
        if counts.dropped:
            raise all_dropped_error(path, processor, counts.dropped)
        raise empty_error(path)


def validate_file(
    path: str | os.PathLike,
    kind: str | None = None,
    max_errors: int = 20,
    output: str | os.PathLike | None = None,
    check_images: bool = True,
    processor: Any = None,
) -> ValidationReport:
    """Check every record; keep the first ``max_errors`` errors; write the valid rows to ``output``.

    ``output`` (when given) receives the valid rows unchanged (as the ``processor`` returned
    them, when there is one), written atomically; ``dropped`` counts the rows the processor dropped.
    """
    path = str(path)
    if processor is not None:
        from rerankctl.data.processor import load_processor

        processor = load_processor(processor)
    report = ValidationReport(path=path, kind=resolve_kind(path, kind, processor))
    counts = ReadCounts()
    rows = parse_rows(path, report.kind, check_images, counts=counts, processor=processor)

    def consume(sink=None) -> None:
        for row, _record, error in rows:
            report.total += 1
            if error is not None:
                report.invalid += 1
                if len(report.errors) < max_errors:
                    report.errors.append(error)
                continue
            report.valid += 1
            if sink is not None:
                sink.write(dumps(row.obj) + "\n")

    if output is None:
        consume()
    else:
        with atomic_writer(output) as handle:
            consume(handle)
        report.written = report.valid
    report.dropped = counts.dropped
    return report


def load_records(
    path: str | os.PathLike,
    kind: str | None = None,
    skip_invalid: bool = False,
    check_images: bool = True,
    max_chars: int = 0,
    counts: ReadCounts | None = None,
    processor: Any = None,
    max_records: int | None = None,
) -> tuple[list[Any], int]:
    """All normalised records of a file and how many bad ones were skipped.

    ``max_chars``/``counts``/``processor``/``max_records``: as in :func:`parse_rows`.

    Raises:
        DataError: on the first bad record unless ``skip_invalid``; on an empty file.
    """
    records, skipped = [], 0
    for _row, record, error in parse_rows(
        path, kind, check_images, max_chars, counts, processor, max_records
    ):
        if error is not None:
            if not skip_invalid:
                raise error
            skipped += 1
            continue
        records.append(record)
    if skipped:
        log.warning("%s: skipped %d invalid record(s)", path, skipped)
    if not records:
        raise DataError(
            "no valid records", hint="check the file with `rerankctl data validate`", path=str(path)
        )
    return records, skipped
