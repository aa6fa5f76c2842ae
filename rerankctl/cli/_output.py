"""Shared output helpers for list-like commands: ``--json`` printing, rich tables, formatting.

rich is imported inside the functions, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import typer


def to_jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None and tuples as lists, so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return to_jsonable(asdict(obj))
    return obj


def dumps_json(obj: Any) -> str:
    """Indented, strict JSON (no NaN), non-JSON values as strings."""
    return json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, default=str, allow_nan=False)


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the only thing a ``--json`` command prints there)."""
    typer.echo(dumps_json(obj))


def console(stderr: bool = False):
    """A rich console; wide when stdout is not a terminal, so piped tables are not cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, soft_wrap=False, highlight=False)


def make_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None, **kwargs: Any
):
    """A rich table; columns whose name starts with '>' are right-aligned (numbers).

    Cell values are shown literally (a config value "[bold]" is not markup); pass a
    ``rich.text.Text`` (e.g. from `styled_status`) for a styled cell.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, header_style="bold", **kwargs)
    for col in columns:
        if col.startswith(">"):
            table.add_column(Text(col[1:]), justify="right", overflow="fold")
        else:
            table.add_column(Text(col), overflow="fold")
    for row in rows:
        table.add_row(*(v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in row))
    return table


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """Print ``rows`` as a table on stdout."""
    console().print(make_table(columns, rows, title=title))


def fmt_value(value: float | int | None) -> str:
    """A metric value with 4 significant digits (ints as ints, NaN as 'nan')."""
    if value is None:
        return "-"
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def fmt_time(ts: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def fmt_duration(seconds: float | None) -> str:
    """``1h02m03s`` / ``4m05s`` / ``6s``."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{sec:02d}s"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


STATUS_STYLES = {"running": "cyan", "completed": "green", "failed": "red", "killed": "yellow"}


def styled_status(status: str):
    """A run status as a ``rich.text.Text`` in its colour."""
    from rich.text import Text

    return Text(status, style=STATUS_STYLES.get(status, ""))


@contextlib.contextmanager
def open_atomic(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO]:
    """Open a temp file next to ``path``; on success it replaces ``path``, on error it is removed.

    Readers of ``path`` see either the old file or the complete new one, never half of it.
    """

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from rerankctl.atomic import temp_file

    fd, tmp = temp_file(path)  # the mode a plain open() would give, not mkstemp's 0600
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename."""
    with open_atomic(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
