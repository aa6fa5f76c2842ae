"""Statistics of a data file: sizes, ratios, duplicates, token lengths and over-length counts."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from typing import Any

from rerankctl.data.validate import parse_rows, resolve_kind

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile with linear interpolation (numpy's default), of sorted values."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summary(values: list[float]) -> dict[str, float]:
    """min / mean / percentiles / max of a list."""
    ordered = sorted(values)
    out = {
        "min": float(ordered[0]) if ordered else 0.0,
        "mean": sum(ordered) / len(ordered) if ordered else 0.0,
    }
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(ordered, q)
    out["max"] = float(ordered[-1]) if ordered else 0.0
    return out


def _digest(obj: Any) -> bytes:
    return hashlib.blake2b(
        json.dumps(obj, sort_keys=True, ensure_ascii=False).encode(), digest_size=16
    ).digest()


def file_stats(
    path: str | os.PathLike,
    kind: str | None = None,
    tokenizer: Any = None,
    max_length: int = 512,
    batch_size: int = 1024,
    processor: Any = None,
) -> dict[str, Any]:
    """Counts and distributions of a file; bad rows are counted and left out of the figures.

    With a ``tokenizer``, rerank data also gets prompt token lengths (untruncated, the exact
    reranker prompt) and the number of pairs longer than ``max_length``.
    """
    if processor is not None:
        from rerankctl.data.processor import load_processor

        processor = load_processor(processor)
    kind = resolve_kind(str(path), kind, processor)
    out: dict[str, Any] = {"path": str(path), "kind": kind, "records": 0, "invalid": 0}
    seen_records: set[bytes] = set()
    duplicates = 0
    collect: dict[str, list[float]] = {}
    counters: Counter = Counter()
    prompt = None
    if tokenizer is not None and kind == "rerank":
        from rerankctl.data.prompt import PromptTokenizer

        prompt = PromptTokenizer(tokenizer, max_length=1 << 30)  # no truncation: we want true lengths
    pending: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        if prompt is None or not pending[0]:
            return
        ids, _ = prompt.encode_pairs(*pending)
        lengths = [len(seq) for seq in ids]
        collect.setdefault("prompt_tokens", []).extend(lengths)
        counters["overlength"] += sum(1 for n in lengths if n > max_length)
        for part in pending:
            part.clear()

    queries: set[bytes] = set()
    for _row, record, error in parse_rows(path, kind, check_images=kind == "vl", processor=processor):
        if error is not None:
            out["invalid"] += 1
            continue
        out["records"] += 1
        digest = _digest(record.to_json())
        duplicates += digest in seen_records
        seen_records.add(digest)
        if kind == "rerank":
            queries.add(_digest([record.instruction, record.query]))
            n_pos = sum(1 for label in record.labels if label > 0)
            collect.setdefault("docs_per_query", []).append(len(record.docs))
            collect.setdefault("pos_per_query", []).append(n_pos)
            counters["docs"] += len(record.docs)
            counters["positives"] += n_pos
            counters["duplicate_docs_in_record"] += len(record.docs) - len(set(record.docs))
            counters["with_teacher_scores"] += record.teacher_scores is not None
            if prompt is not None:
                pending[0].extend([record.query] * len(record.docs))
                pending[1].extend(record.docs)
                pending[2].extend([record.instruction] * len(record.docs))
                if len(pending[0]) >= batch_size:
                    flush()
        elif kind == "preference":
            queries.add(_digest(record.prompt))
            collect.setdefault("prompt_chars", []).append(sum(len(m["content"]) for m in record.prompt))
            collect.setdefault("chosen_chars", []).append(sum(len(m["content"]) for m in record.chosen))
            collect.setdefault("rejected_chars", []).append(sum(len(m["content"]) for m in record.rejected))
            counters["with_margin"] += record.margin is not None
            counters["chosen_longer"] += collect["chosen_chars"][-1] > collect["rejected_chars"][-1]
        else:
            queries.add(_digest([record.query, record.image]))
            counters[f"first_preferred_{record.chosen_index == 0}"] += 1
            collect.setdefault("response_chars", []).extend(len(r) for r in record.responses)
    flush()
    out["distinct_queries"] = len(queries)
    out["duplicate_records"] = duplicates
    if kind == "rerank":
        out["docs"] = counters["docs"]
        out["positive_ratio"] = counters["positives"] / counters["docs"] if counters["docs"] else 0.0
        out["duplicate_docs_in_record"] = counters["duplicate_docs_in_record"]
        out["with_teacher_scores"] = counters["with_teacher_scores"]
        if prompt is not None:
            out["max_length"] = max_length
            out["overlength_pairs"] = counters["overlength"]
    elif kind == "preference":
        out["with_margin"] = counters["with_margin"]
        out["chosen_longer_ratio"] = counters["chosen_longer"] / out["records"] if out["records"] else 0.0
    else:
        out["first_response_preferred"] = counters["first_preferred_True"]
        out["second_response_preferred"] = counters["first_preferred_False"]
    for name, values in collect.items():
        out[name] = summary(values)
    return out


def load_any_tokenizer(name: str) -> Any:
    """A tokenizer from a tokenizer or model directory, a hub name, or ``qwen3`` (the offline build)."""
    from pathlib import Path

    if name == "qwen3":
        from rerankctl.models.tokenizer import load_qwen3_tokenizer

        return load_qwen3_tokenizer()
    path = Path(name).expanduser()
    if (path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(path), padding_side="left")
    from rerankctl.models.loading import load_tokenizer

    return load_tokenizer(name)
