"""MS MARCO triples: headerless TSV lines ``query<TAB>positive passage<TAB>negative passage``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from rerankctl.data.formats import RecordError
from rerankctl.data.io import BOM, NOT_UTF8_HINT, Row, check_exists, open_binary

NAME = "msmarco"
KIND = "rerank"
DESCRIPTION = "MS MARCO triples TSV (query, positive, negative per line, no header)"
SOURCE = "query<TAB>positive<TAB>negative"


def iter_input(path: str | os.PathLike) -> Iterator[Row]:
    """Each line split on tabs; not-UTF-8 lines are reported, not raised."""
    with open_binary(check_exists(path)) as handle:  # gzip and a BOM as in every other reader
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(BOM)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield Row(
                    number,
                    error=f"not UTF-8: byte 0x{raw[exc.start]:02X} at byte {exc.start + 1}",
                    hint=NOT_UTF8_HINT,
                )
                continue
            yield Row(number, text.split("\t"))


def convert(obj: Any) -> list[dict[str, Any]]:
    if not isinstance(obj, list):
        raise RecordError(None, "expected a TSV line")
    if len(obj) != 3:
        raise RecordError(
            None, f"expected 3 tab-separated columns (query, positive, negative), got {len(obj)}"
        )
    names = ("query", "positive", "negative")
    for name, value in zip(names, obj, strict=False):
        if not value.strip():
            raise RecordError(name, "empty column")
    return [{"query": obj[0], "pos": [obj[1]], "neg": [obj[2]]}]
