"""ms-swift reranker data.

Current shape: ``{"messages": [{"role": "user", "content": query}], "positive_messages":
[[{"role": "assistant", "content": doc}], ...], "negative_messages": [[...], ...]}``; a system
message in ``messages`` becomes the instruction. The older ``{"query", "response",
"rejected_response": [...]}`` shape is accepted too.
"""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import get_messages, get_text, get_text_list, require_object
from rerankctl.data.formats import RecordError

NAME = "ms-swift"
KIND = "rerank"
DESCRIPTION = "ms-swift reranker JSONL (messages/positive_messages/negative_messages, or query/response/rejected_response)"
SOURCE = '{"messages": [...], "positive_messages": [[msg]], "negative_messages": [[msg]]}'


def _docs(obj: dict, field: str, required: bool) -> list[str]:
    value = obj.get(field)
    if value is None:
        if required:
            raise RecordError(field, "missing")
        return []
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of message lists, got {type(value).__name__}")
    docs = []
    for i, conversation in enumerate(value):
        # Each document is its own short conversation; the document is its last message.
        name = f"{field}[{i}]"
        messages = get_messages({name: conversation}, name)
        docs.append(messages[-1]["content"])
    return docs


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    if "messages" not in obj and "query" in obj:
        pos = get_text_list(obj, "response")
        return [
            {
                "query": get_text(obj, "query"),
                "pos": pos,
                "neg": get_text_list(obj, "rejected_response", required=False),
            }
        ]
    messages = get_messages(obj, "messages")
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise RecordError("messages", "no user message (the query)")
    out: dict[str, Any] = {"query": users[-1]["content"]}
    out["pos"] = _docs(obj, "positive_messages", required=True)
    if not out["pos"]:
        raise RecordError("positive_messages", "empty list")
    out["neg"] = _docs(obj, "negative_messages", required=False)
    system = [m for m in messages if m["role"] == "system"]
    if system:
        out["instruction"] = system[0]["content"]
    return [out]
