"""The converter interface and the shared helpers converters use.

A converter module defines ``NAME``, ``KIND`` (the target format: rerank or
preference), ``DESCRIPTION``, ``SOURCE`` (what the input looks like) and
``convert(obj) -> list[dict]``: zero or more records in the target format for one
input row. It raises :class:`~rerankctl.data.formats.RecordError` (naming the source
field) for a malformed row; an empty list means "nothing to emit" (a tie, say),
which is counted apart from errors. A module may also define ``iter_input(path)`` when
its files are not JSONL/CSV/Parquet records (MS MARCO triples are headerless TSV).
"""

from __future__ import annotations

import re
from typing import Any

from rerankctl.data.formats import RecordError

_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")


def require_object(obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise RecordError(None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def get_text(obj: dict, field: str, *, strip: bool = False) -> str:
    """A required non-empty string field."""
    value = obj.get(field)
    if value is None:
        raise RecordError(field, "missing")
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise RecordError(field, "empty string")
    return value.strip() if strip else value


def get_text_list(obj: dict, field: str, *, required: bool = True) -> list[str]:
    """A list of non-empty strings (a lone string counts as a one-item list)."""
    value = obj.get(field)
    if value is None:
        if required:
            raise RecordError(field, "missing")
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordError(f"{field}[{i}]", f"expected a string, got {type(item).__name__}")
        if not item.strip():
            raise RecordError(f"{field}[{i}]", "empty string")
    return list(value)


def get_number(obj: dict, field: str) -> float:
    import math

    value = obj.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(field, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise RecordError(field, f"not a finite number: {value}")
    return float(value)


def get_messages(obj: dict, field: str) -> list[dict[str, str]]:
    """A non-empty list of ``{"role", "content"}`` messages with non-empty string contents."""
    value = obj.get(field)
    if not isinstance(value, list) or not value:
        raise RecordError(field, "expected a non-empty list of messages")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise RecordError(f"{field}[{i}]", f"expected a message object, got {type(msg).__name__}")
        role, content = msg.get("role"), msg.get("content")
        if not isinstance(role, str) or not role:
            raise RecordError(f"{field}[{i}].role", f"expected a role string, got {role!r}")
        if not isinstance(content, str) or not content.strip():
            raise RecordError(f"{field}[{i}].content", "expected a non-empty string")
        out.append({"role": role, "content": content})
    return out


def parse_transcript(text: str, field: str, *, open_end: bool = False) -> list[dict[str, str]]:
    """Anthropic-style ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` text as chat messages.

    ``open_end`` accepts (and drops) a trailing empty ``Assistant:`` turn, the way
    rm-static prompts end. Contents are stripped of surrounding whitespace.
    """
    if not isinstance(text, str):
        raise RecordError(field, f"expected a transcript string, got {type(text).__name__}")
    if not text.startswith("\n\n"):
        text = "\n\n" + text.lstrip("\n")  # some dumps drop the leading blank line
    parts = _TURN.split(text)
    if parts[0].strip():
        raise RecordError(field, "text before the first 'Human:' turn", hint="expected '\\n\\nHuman: ...'")
    if len(parts) < 3:
        raise RecordError(field, "no 'Human:'/'Assistant:' turns found")
    messages = []
    for role, content in zip(parts[1::2], parts[2::2], strict=False):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": content.strip()})
    if open_end and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    for i, msg in enumerate(messages):
        if not msg["content"]:
            raise RecordError(field, f"turn {i + 1} ({msg['role']}) is empty")
    if messages[0]["role"] != "user":
        raise RecordError(field, "the first turn is not 'Human:'")
    return messages


def preference(prompt: Any, chosen: Any, rejected: Any, margin: float | None = None) -> dict[str, Any]:
    """A record in the ``prompt/chosen/rejected[/margin]`` preference format."""
    out: dict[str, Any] = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    if margin is not None:
        out["margin"] = margin
    return out


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
