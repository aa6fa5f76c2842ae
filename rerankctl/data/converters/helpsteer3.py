"""HelpSteer3 preference: ``{"context": [messages], "response1", "response2", "overall_preference"}``.

``overall_preference`` runs from -3 (response1 is much better) to +3 (response2 is much
better); 0 is a tie and yields no pair. Its magnitude becomes the pair's ``margin``.
"""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import assistant, get_messages, get_text, preference, require_object
from rerankctl.data.formats import RecordError

NAME = "helpsteer3"
KIND = "preference"
DESCRIPTION = (
    "nvidia/HelpSteer3 preference (context, response1/response2, overall_preference -3..3 as margin)"
)
SOURCE = '{"context": [messages], "response1": str, "response2": str, "overall_preference": int}'


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    context = obj.get("context")
    prompt = (
        [{"role": "user", "content": get_text(obj, "context")}]
        if isinstance(context, str)
        else get_messages(obj, "context")
    )
    if prompt[-1]["role"] != "user":
        raise RecordError("context", "the last context message must be the user's turn")
    first, second = get_text(obj, "response1"), get_text(obj, "response2")
    strength = obj.get("overall_preference")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not -3 <= strength <= 3:
        raise RecordError("overall_preference", f"expected a number from -3 to 3, got {strength!r}")
    if strength == 0:
        return []  # a tie: no preferred answer
    chosen, rejected = (first, second) if strength < 0 else (second, first)
    if chosen == rejected:
        raise RecordError("response2", "identical to 'response1'")
    return [preference(prompt, assistant(chosen), assistant(rejected), float(abs(strength)))]
