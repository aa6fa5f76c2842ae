"""Converters from other tools' data shapes into rerankctl's formats.

``CONVERTERS`` maps a source name (``rerankctl data convert --from NAME``) to its module;
:func:`convert_file` runs one over a file, checks every output record against the
target format, reports each bad line (file, line, field) and writes atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rerankctl.data.converters import (
    flagembedding,
    helpsteer3,
    hh_rlhf,
    ms_swift,
    msmarco,
    rm_static,
    seed,
    sentence_transformers,
    stack_exchange,
    ultrafeedback,
)
from rerankctl.data.formats import PARSERS, RecordError
from rerankctl.data.io import ReadCounts, Row, atomic_writer, dumps, iter_rows, process_rows
from rerankctl.errors import DataError, UsageError

_MODULES = (
    seed,
    flagembedding,
    ms_swift,
    sentence_transformers,
    msmarco,
    hh_rlhf,
    stack_exchange,
    rm_static,
    helpsteer3,
    ultrafeedback,
)
CONVERTERS: dict[str, ModuleType] = {m.NAME: m for m in _MODULES}
ALIASES = {
    "flag-embedding": "flagembedding",
    "swift": "ms-swift",
    "st": "sentence-transformers",
    "ms-marco": "msmarco",
    "msmarco-triples": "msmarco",
    "hh": "hh-rlhf",
    "anthropic-hh": "hh-rlhf",
    "stack-exchange": "stack-exchange-paired",
    "full-hh-rlhf": "rm-static",
    "ultrafeedback-binarized": "ultrafeedback",
    "original": "seed",
    "qwen3-reranker": "seed",
}


def get_converter(name: str) -> ModuleType:
    key = name.lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in CONVERTERS:
        raise UsageError(f"unknown source format {name!r}", hint=f"choose one of: {', '.join(CONVERTERS)}")
    return CONVERTERS[key]


@dataclass
class ConvertReport:
    """What :func:`convert_file` did: input rows, records written, rows dropped (ties), errors."""

    source: str
    kind: str
    rows: int = 0
    written: int = 0
    dropped: int = 0
    processor_dropped: int = 0  # rows the --processor returned None for
    invalid: int = 0
    errors: list[DataError] = field(default_factory=list)


class _Processed:
    """The converter of ``convert --processor P`` without ``--from``: the processor's records, checked."""

    NAME = "processor"
    SOURCE = "what the processor accepts"

    def __init__(self, kind: str) -> None:
        self.KIND = kind

    def convert(self, obj: Any) -> list[dict[str, Any]]:
        return [PARSERS[self.KIND](obj).to_json()]  # the canonical shape of that kind


def convert_rows(
    path: str, converter: Any, processor: Any = None, counts: ReadCounts | None = None
) -> Iterator[tuple[Row, list[dict[str, Any]], DataError | None]]:
    """Each input row, its converted records and its error (None when it converted).

    A ``processor`` (data/processor.py) rewrites each input row before the converter sees it.
    """
    reader = getattr(converter, "iter_input", iter_rows)
    check = PARSERS[converter.KIND]
    rows = reader(path)
    if processor is not None:
        rows = process_rows(rows, processor, counts)
    for row in rows:
        if row.error is not None:
            yield row, [], DataError(row.error, row.hint, path=path, line=row.line, field=row.field)
            continue
        try:
            records = converter.convert(row.obj)
            for record in records:
                check(record)  # the output must be a valid record of the target kind
        except RecordError as exc:
            yield row, [], DataError(exc.message, exc.hint, path=path, line=row.line, field=exc.field)
            continue
        yield row, records, None


def convert_file(
    path: str | os.PathLike,
    source: str | None,
    output: str | os.PathLike,
    skip_invalid: bool = False,
    max_errors: int = 20,
    processor: Any = None,
) -> ConvertReport:
    """Convert ``path`` from ``source`` into ``output`` (JSONL, written atomically).

    With a ``processor`` (``FILE:CLASS``, data/processor.py) each row goes through it first;
    ``source`` may then be None: the processor's records are checked and written in the
    canonical shape of their kind.

    Raises:
        DataError: the first bad row, unless ``skip_invalid`` (then bad rows are counted and
            the first ``max_errors`` kept in the report). Nothing is written on error.
    """
    path = str(path)
    if processor is not None:
        from rerankctl.data.processor import load_processor

        processor = load_processor(processor)
    if source is None:
        if processor is None:
            raise UsageError(
                "convert needs --from (or --processor)", hint="`rerankctl data formats` lists them"
            )
        from rerankctl.data.validate import resolve_kind

        converter: Any = _Processed(resolve_kind(path, None, processor))
    else:
        converter = get_converter(source)
    report = ConvertReport(source=converter.NAME, kind=converter.KIND)
    counts = ReadCounts()
    with atomic_writer(output) as handle:
        for _row, records, error in convert_rows(path, converter, processor, counts):
            report.rows += 1
            if error is not None:
                if not skip_invalid:
                    raise error
                report.invalid += 1
                if len(report.errors) < max_errors:
                    report.errors.append(error)
                continue
            if not records:
                report.dropped += 1
            for record in records:
                handle.write(dumps(record) + "\n")
                report.written += 1
        report.processor_dropped = counts.dropped
        if report.rows == 0:
            from rerankctl.data.validate import all_dropped_error, empty_error

            if counts.dropped:
                raise all_dropped_error(path, processor, counts.dropped)
            raise empty_error(path)
        if report.written == 0:
            raise DataError(
                "no record could be converted",
                hint=f"is this really {converter.NAME} data? expected {converter.SOURCE}",
                path=path,
            )
    return report
