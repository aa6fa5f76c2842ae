"""FlagEmbedding reranker data: ``{"query", "pos", "neg", "prompt"?, "pos_scores"?, "neg_scores"?}``."""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import get_text, get_text_list, require_object
from rerankctl.data.formats import RecordError

NAME = "flagembedding"
KIND = "rerank"
DESCRIPTION = "FlagEmbedding reranker/embedder JSONL (query/pos/neg/prompt, optional teacher scores)"
SOURCE = '{"query": str, "pos": [str], "neg": [str], "prompt"?: str, "pos_scores"?: [float], "neg_scores"?: [float]}'


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    out: dict[str, Any] = {"query": get_text(obj, "query"), "pos": get_text_list(obj, "pos")}
    out["neg"] = get_text_list(obj, "neg", required=False)
    if not out["pos"]:
        raise RecordError("pos", "empty list")
    prompt = obj.get("prompt")
    if prompt is not None:
        out["instruction"] = get_text(obj, "prompt")
    for field in ("pos_scores", "neg_scores"):
        if obj.get(field) is not None:
            out[field] = obj[field]  # checked (numbers, lengths) by the rerank parser
    return [out]
