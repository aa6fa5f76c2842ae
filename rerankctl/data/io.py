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
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rerankctl.errors import DataError, NotFoundError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")


@dataclass
class Row:
    """One line of a file: ``obj`` when it parsed, else ``error`` says why not."""

    line: int
    obj: Any = None
    error: str | None = None


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


def parse_json_line(raw: bytes) -> tuple[Any, str | None]:
    """Parse one JSONL line; returns (obj, None) or (None, reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"


def iter_jsonl_lines(handle: IO[bytes], start_line: int = 1) -> Iterator[Row]:
    """Rows of an open binary JSONL handle; blank lines are skipped but still counted."""
    for number, raw in enumerate(handle, start=start_line):
        if not raw.strip():
            continue
        obj, error = parse_json_line(raw)
        yield Row(number, obj, error)


def _cell(value: str) -> Any:
    """CSV cells are strings; list/object columns are written as JSON inside the cell; empty = absent."""
    stripped = value.strip()
    if not value:
        return None
    if stripped[:1] in ("[", "{"):
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            return json.loads(stripped)
    return value


def _iter_csv(path: Path, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        rows = iter(reader)
        last_error_line = -1
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


def iter_rows(path: str | os.PathLike) -> Iterator[Row]:
    """Every row of a JSONL / JSON-array / CSV / TSV / Parquet file with its line number."""
    p = check_exists(path)
    fmt = file_format(p)
    if fmt == "jsonl":
        opener = _open_gz if str(p).endswith(".gz") else open
        with opener(p, "rb") as handle:
            yield from iter_jsonl_lines(handle)
    elif fmt == "json":
        yield from _iter_json(p)
    elif fmt == "parquet":
        yield from _iter_parquet(p)
    else:
        yield from _iter_csv(p, "\t" if fmt == "tsv" else ",")


def _open_gz(path: Path, mode: str):
    import gzip

    return gzip.open(path, mode)


def _iter_json(path: Path) -> Iterator[Row]:
    """A ``.json`` file is either a JSON array of records or, commonly, JSONL with a .json name."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16).lstrip()
    if not head.startswith(b"["):
        with open(path, "rb") as handle:
            yield from iter_jsonl_lines(handle)
        return
    obj, error = parse_json_line(path.read_bytes())
    if error is not None or not isinstance(obj, list):
        yield Row(1, error=error or "a .json file must hold an array of records")
        return
    for number, record in enumerate(obj, start=1):
        yield Row(number, record)


# ---------------------------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file next to ``path``; rename it over ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
                row.error, hint="run `rerankctl data validate` on it", path=str(path), line=row.line
            )
        out.append(row.obj)
    return out
