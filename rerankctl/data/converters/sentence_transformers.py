"""sentence-transformers training columns: ``anchor``, ``positive``, ``negative`` or ``negative_1..n``.

``query`` is accepted for ``anchor``. Extra negative columns (``negative_1``, ``negative_2``,
...) are collected in numeric order; null cells (a row with fewer negatives) are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from rerankctl.data.converters.base import get_text, require_object
from rerankctl.data.formats import RecordError

NAME = "sentence-transformers"
KIND = "rerank"
DESCRIPTION = "sentence-transformers columns (anchor/positive/negative or negative_1..negative_n)"
SOURCE = '{"anchor": str, "positive": str, "negative": str | "negative_1": str, "negative_2": str, ...}'

_NEG = re.compile(r"^negative(?:_(\d{1,9}))?$")


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    query_field = "anchor" if "anchor" in obj or "query" not in obj else "query"
    query = get_text(obj, query_field)
    positive = get_text(obj, "positive")
    columns = sorted(
        ((int(m.group(1) or 0), key) for key in obj if (m := _NEG.match(key))),
    )
    negatives = []
    for _, key in columns:
        value = obj[key]
        if value is None:
            continue
        if not isinstance(value, str):
            raise RecordError(key, f"expected a string, got {type(value).__name__}")
        if not value.strip():
            raise RecordError(key, "empty string")
        negatives.append(value)
    return [{"query": query, "pos": [positive], "neg": negatives}]
