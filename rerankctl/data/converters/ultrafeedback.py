"""UltraFeedback-binarized: ``{"prompt", "chosen": [messages], "rejected": [messages], "score_chosen", "score_rejected"}``.

The shared leading messages (the user prompt) become the prompt; the score difference,
when both scores are present, becomes the margin. Equal scores are a tie and yield no pair.
"""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import get_messages, get_number, preference, require_object
from rerankctl.data.formats import RecordError, split_shared_prefix

NAME = "ultrafeedback"
KIND = "preference"
DESCRIPTION = (
    "HuggingFaceH4/ultrafeedback_binarized (chosen/rejected message lists, score difference as margin)"
)
SOURCE = '{"prompt": str, "chosen": [messages], "rejected": [messages], "score_chosen": float, "score_rejected": float}'


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    chosen = get_messages(obj, "chosen")
    rejected = get_messages(obj, "rejected")
    margin = None
    if obj.get("score_chosen") is not None or obj.get("score_rejected") is not None:
        margin = get_number(obj, "score_chosen") - get_number(obj, "score_rejected")
        if margin == 0:
            return []  # a tie
        if margin < 0:
            raise RecordError("score_rejected", "higher than 'score_chosen'")
    if chosen == rejected:
        raise RecordError("rejected", "identical to 'chosen'")
    prompt, chosen_tail, rejected_tail = split_shared_prefix(chosen, rejected)
    if not prompt:
        raise RecordError("chosen", "chosen and rejected share no prompt message")
    return [preference(prompt, chosen_tail, rejected_tail, margin)]
