"""Dahoas rm-static / full-hh-rlhf: ``{"prompt": transcript ending in "Assistant:", "chosen", "rejected"}``."""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import assistant, get_text, parse_transcript, preference, require_object
from rerankctl.data.formats import RecordError

NAME = "rm-static"
KIND = "preference"
DESCRIPTION = "Dahoas/rm-static and Dahoas/full-hh-rlhf (prompt transcript + chosen/rejected answers)"
SOURCE = '{"prompt": "\\n\\nHuman: ...\\n\\nAssistant:", "response": str, "chosen": str, "rejected": str}'


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    if "prompt" not in obj:
        raise RecordError("prompt", "missing")
    prompt = parse_transcript(obj["prompt"], "prompt", open_end=True)
    if prompt[-1]["role"] != "user":
        raise RecordError("prompt", "the prompt must end with a 'Human:' turn followed by 'Assistant:'")
    chosen = get_text(obj, "chosen", strip=True)
    rejected = get_text(obj, "rejected", strip=True)
    if chosen == rejected:
        raise RecordError("rejected", "identical to 'chosen'")
    return [preference(prompt, assistant(chosen), assistant(rejected))]
