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
from rerankctl.data.io import Row, atomic_writer, dumps, iter_rows
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
            "errors": [
                {"line": e.line, "field": e.field, "message": e.message, "hint": e.hint} for e in self.errors
            ],
        }


def record_error(path: str, line: int, exc: RecordError) -> DataError:
    """A RecordError from a parser, with the file and line it came from."""
    return DataError(exc.message, exc.hint, path=path, line=line, field=exc.field)


def row_error(path: str, row: Row) -> DataError:
    return DataError(
        row.error or "unreadable", "fix or drop this line (--skip-invalid)", path=path, line=row.line
    )


def _peek_kind(path: str) -> str:
    for row in iter_rows(path):
        if row.error is None:
            kind = detect_kind(row.obj)
            if kind is not None:
                return kind
    raise DataError(
        "cannot tell whether this is rerank, preference or VL data",
        hint="rerank needs query/pos/neg or query/docs/labels; pass --kind to see the exact errors",
        path=path,
    )


def resolve_kind(path: str, kind: str | None) -> str:
    if kind is None or kind == "auto":
        return _peek_kind(path)
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    return kind


def parse_rows(
    path: str | os.PathLike, kind: str | None = None, check_images: bool = True
) -> Iterator[tuple[Row, Any, DataError | None]]:
    """Every row with its normalised record (or None) and its error (or None)."""
    path = str(path)
    kind = resolve_kind(path, kind)
    parser = PARSERS[kind]
    base = Path(path).resolve().parent
    for row in iter_rows(path):
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
            yield row, None, record_error(path, row.line, exc)
            continue
        yield row, record, None


def validate_file(
    path: str | os.PathLike,
    kind: str | None = None,
    max_errors: int = 20,
    output: str | os.PathLike | None = None,
    check_images: bool = True,
) -> ValidationReport:
    """Check every record; keep the first ``max_errors`` errors; write the valid rows to ``output``.

    ``output`` (when given) receives the valid rows unchanged, written atomically.
    """
    path = str(path)
    report = ValidationReport(path=path, kind=resolve_kind(path, kind))
    rows = parse_rows(path, report.kind, check_images)

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
    return report


def load_records(
    path: str | os.PathLike, kind: str | None = None, skip_invalid: bool = False, check_images: bool = True
) -> tuple[list[Any], int]:
    """All normalised records of a file and how many bad ones were skipped.

    Raises:
        DataError: on the first bad record unless ``skip_invalid``.
    """
    records, skipped = [], 0
    for _row, record, error in parse_rows(path, kind, check_images):
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
