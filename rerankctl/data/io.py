"""Line-accurate reading of data files, and atomic writing.

Validation, conversion and the streaming dataset need the *line number* of every bad
record, which a columnar loader cannot give, so this module reads JSONL line by line
(and CSV/Parquet row by row). Bulk loading for training goes through `datasets`
(see :mod:`rerankctl.data.rerank_dataset`).

Every row comes out as a :class:`Row`: its 1-based line (row) number and either the
parsed object or the reason it could not be parsed; nothing here raises on bad content.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rerankctl.atomic import atomic_writer  # noqa: F401  (re-exported: data writers import it from here)
from rerankctl.errors import DataError, NotFoundError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")


@dataclass
class Row:
    """One line of a file: ``obj`` when it parsed, else ``error`` says why not (``field``/``hint`` if known)."""

    line: int
    obj: Any = None
    error: str | None = None
    field: str | None = None
    hint: str | None = None


def file_format(path: str | os.PathLike) -> str:
    """``jsonl``, ``json`` (one array), ``parquet``, ``csv`` or ``tsv`` from the suffix (default jsonl)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gz":
        suffix = Path(str(path)[:-3]).suffix.lower()
    if suffix in (".parquet", ".csv", ".tsv"):
        return suffix[1:]
    if suffix == ".json":
        return "json"
    return "jsonl"


def check_exists(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: no such file", hint="check the path")
    return p


BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
NOT_UTF8_HINT = (
    "the file is not UTF-8 (latin-1 / cp1252?); convert it, e.g. `iconv -f latin1 -t utf-8 IN > OUT`"
)


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip-compressed (by content, whatever its name).

    Every reader goes through here, so ``data validate``, ``convert``, ``stats``, ``split``,
    training and evaluation accept exactly the same files.
    """
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    if gzipped:
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb", buffering=1 << 20)


def _has_escaped_byte(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _surrogate_field(obj: Any, prefix: str = "") -> str | None:
    """The field (``neg[3]``) of the first string holding an undecodable byte (surrogateescape)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if _has_escaped_byte(str(key)):
                return name
            found = _surrogate_field(value, name)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found = _surrogate_field(value, f"{prefix}[{i}]")
            if found is not None:
                return found
    elif isinstance(obj, str) and _has_escaped_byte(obj):
        return prefix or None
    return None


def _decode_error(raw: bytes, exc: UnicodeDecodeError) -> tuple[str, str | None]:
    """(message, field) for a line that is not UTF-8; the field is found by a lenient re-parse."""
    byte = raw[exc.start]
    message = f"not UTF-8: byte 0x{byte:02X} at byte {exc.start + 1} of the line"
    field = None
    with contextlib.suppress(ValueError, RecursionError):
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
        field = _surrogate_field(obj)
    return message, field


def json_error(exc: json.JSONDecodeError) -> str:
    """``not valid JSON: <reason> (column N)``; json's own messages may end in "at" already."""
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def parse_json_line(raw: bytes) -> tuple[Any, str | None]:
    """Parse one JSONL line; returns (obj, None) or (None, reason)."""
    obj, error, _field = parse_json_line_full(raw)
    return obj, error


def parse_json_line_full(raw: bytes) -> tuple[Any, str | None, str | None]:
    """Parse one JSONL line: (obj, None, None) or (None, reason, field or None)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message, field = _decode_error(raw, exc)
        return None, message, field
    try:
        # Without its line break, so that an error at the end of the line points into it.
        return json.loads(text.rstrip("\r\n")), None, None
    except json.JSONDecodeError as exc:
        if text.startswith("\ufeff"):
            return None, "a UTF-8 byte-order mark in the middle of the file", None
        return None, json_error(exc), None
    except RecursionError:
        return None, "not valid JSON: nested too deeply", None


def _row(number: int, raw: bytes) -> Row:
    obj, error, field = parse_json_line_full(raw)
    hint = NOT_UTF8_HINT if error and error.startswith("not UTF-8") else None
    return Row(number, obj, error, field, hint)


def iter_jsonl_lines(handle: IO[bytes], start_line: int = 1) -> Iterator[Row]:
    """Rows of an open binary JSONL handle; blank lines are skipped but still counted.

    A UTF-8 byte-order mark at the start of the file is dropped (Windows editors write one).
    """
    for number, raw in enumerate(handle, start=start_line):
        if number == start_line and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not raw.strip():
            continue
        yield _row(number, raw)


def _cell(value: str) -> Any:
    """CSV cells are strings; list/object columns are written as JSON inside the cell; empty = absent."""
    stripped = value.strip()
    if not value:
        return None
    if stripped[:1] in ("[", "{"):
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            return json.loads(stripped)
    return value


class _StrictLines:
    """Decoded lines of a binary handle for the csv module; remembers lines that are not UTF-8."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.number = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            self.number += 1
            if self.number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.bad[self.number] = _decode_error(raw, exc)[0]
                yield raw.decode("utf-8", "replace")


def _iter_csv(path: Path, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open_binary(path) as binary:
        lines = _StrictLines(binary)
        reader = csv.DictReader(lines, delimiter=delimiter)
        rows = iter(reader)
        last_error_line = -1
        previous = 1  # the header
        while True:
            try:
                record = next(rows)
            except StopIteration:
                break
            except csv.Error as exc:
                if reader.line_num == last_error_line:  # the reader cannot move past it
                    break
                last_error_line = reader.line_num
                yield Row(reader.line_num, error=f"not valid CSV: {exc}")
                continue
            span = range(previous + 1, reader.line_num + 1)
            previous = reader.line_num
            bad = next((lines.bad[n] for n in span if n in lines.bad), None)
            if bad is not None or 1 in lines.bad:
                yield Row(reader.line_num, error=bad or lines.bad[1], hint=NOT_UTF8_HINT)
                continue
            if None in record:
                yield Row(reader.line_num, error=f"{len(record[None])} more cells than header columns")
                continue
            yield Row(reader.line_num, {k: _cell(v) if isinstance(v, str) else v for k, v in record.items()})


def _iter_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"not a readable Parquet file: {exc}", path=str(path)) from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            number += 1
            yield Row(number, record)


@dataclass
class ReadCounts:
    """What reading a file did besides yielding rows.

    ``cut``: records with a field longer than ``max_chars`` (see data/limits.py);
    ``dropped``: records the ``--processor`` returned None for (data/processor.py).
    """

    cut: int = 0
    dropped: int = 0


def iter_rows(
    path: str | os.PathLike, processor: Any = None, counts: ReadCounts | None = None, limit: int | None = None
) -> Iterator[Row]:
    """Every row of a JSONL / JSON-array / CSV / TSV / Parquet file with its line number.

    The one reader of every data path: gzip (``.jsonl.gz`` and friends) and a UTF-8 BOM are
    accepted everywhere; bytes that are not UTF-8 and lines that are not JSON become error
    rows naming the line (and the field, when it can be found). A ``processor``
    (:class:`rerankctl.data.processor.Processor` or its ``FILE:CLASS`` spec) rewrites every
    readable row; rows it drops are counted in ``counts.dropped``. ``limit``: only the file's
    first that many rows (before the processor: the seed tool's ``--max-samples``).
    """
    rows = _iter_raw(path) if limit is None else itertools.islice(_iter_raw(path), limit)
    if processor is None:
        yield from rows
        return
    from rerankctl.data.processor import load_processor

    yield from process_rows(rows, load_processor(processor), counts)


def process_rows(rows: Iterable[Row], processor: Any, counts: ReadCounts | None = None) -> Iterator[Row]:
    """``rows`` through a loaded processor: rewritten, dropped (counted) or turned into error rows."""
    for row in rows:
        if row.error is not None:
            yield row
            continue
        obj, error = processor.apply(row.obj)
        if error is not None:
            yield Row(row.line, error=error[0], hint=error[1])
        elif obj is None:
            if counts is not None:
                counts.dropped += 1
        else:
            yield Row(row.line, obj)


def _iter_raw(path: str | os.PathLike) -> Iterator[Row]:
    p = check_exists(path)
    fmt = file_format(p)
    if fmt == "jsonl":
        with open_binary(p) as handle:
            yield from iter_jsonl_lines(handle)
    elif fmt == "json":
        yield from _iter_json(p)
    elif fmt == "parquet":
        yield from _iter_parquet(p)
    else:
        yield from _iter_csv(p, "\t" if fmt == "tsv" else ",")


def _iter_json(path: Path) -> Iterator[Row]:
    """A ``.json`` file is either a JSON array of records or, commonly, JSONL with a .json name."""
    with open_binary(path) as handle:
        head = handle.read(1 << 16).removeprefix(BOM).lstrip()
    if not head.startswith(b"["):
        with open_binary(path) as handle:
            yield from iter_jsonl_lines(handle)
        return
    with open_binary(path) as handle:
        data = handle.read().removeprefix(BOM)
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        yield Row(line, error=_decode_error(data, exc)[0], hint=NOT_UTF8_HINT)
        return
    except json.JSONDecodeError as exc:
        yield Row(exc.lineno, error=json_error(exc))
        return
    except RecursionError:
        yield Row(1, error="not valid JSON: nested too deeply")
        return
    if not isinstance(obj, list):
        yield Row(1, error="a .json file must hold an array of records")
        return
    for number, record in enumerate(obj, start=1):
        yield Row(number, record)


# ---------------------------------------------------------------------------------------------- writing


_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(record: Any) -> str:
    """One JSONL line (no trailing newline); non-ASCII is kept readable.

    A string with an unpaired surrogate cannot be written as UTF-8, so such a record
    falls back to ASCII escapes (which JSON readers turn back into the same string).
    """
    # default=str: Parquet rows may hold dates or bytes, which JSON has no type for.
    text = json.dumps(record, ensure_ascii=False, separators=(", ", ": "), default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, ensure_ascii=True, separators=(", ", ": "), default=str)
    # U+0085, U+2028 and U+2029 are line breaks to Python's splitlines() and to some JSONL tools:
    # escape them so one record always stays one line.
    return text.translate(_LINE_BREAKS)


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write records as JSONL atomically; returns how many were written."""
    count = 0
    with atomic_writer(path) as handle:
        for record in records:
            handle.write(dumps(record) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """All records of a clean JSONL file; the first bad line raises DataError."""
    out = []
    for row in iter_rows(path):
        if row.error is not None:
            raise DataError(
                row.error,
                hint=row.hint or "run `rerankctl data validate` on it",
                path=str(path),
                line=row.line,
                field=row.field,
            )
        out.append(row.obj)
    return out
