"""Anthropic hh-rlhf: ``{"chosen": transcript, "rejected": transcript}``.

Each transcript is ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``; both become chat messages and
the turns they share (all but the last answer, usually) are split off as the prompt.
"""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import parse_transcript, preference, require_object
from rerankctl.data.formats import RecordError, split_shared_prefix

NAME = "hh-rlhf"
KIND = "preference"
DESCRIPTION = "Anthropic hh-rlhf transcripts (chosen/rejected '\\n\\nHuman: ... \\n\\nAssistant: ...')"
SOURCE = '{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}'


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    for field in ("chosen", "rejected"):
        if field not in obj:
            raise RecordError(field, "missing")
    chosen = parse_transcript(obj["chosen"], "chosen")
    rejected = parse_transcript(obj["rejected"], "rejected")
    for field, messages in (("chosen", chosen), ("rejected", rejected)):
        if messages[-1]["role"] != "assistant":
            raise RecordError(field, "the transcript does not end with an 'Assistant:' turn")
    if chosen == rejected:
        raise RecordError("rejected", "identical to 'chosen'")
    prompt, chosen_tail, rejected_tail = split_shared_prefix(chosen, rejected)
    if not prompt:
        raise RecordError("rejected", "shares no opening 'Human:' turn with 'chosen'")
    return [preference(prompt, chosen_tail, rejected_tail)]
