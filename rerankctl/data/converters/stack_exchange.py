"""stack-exchange-paired: ``{"question", "response_j", "response_k", ...}``; ``response_j`` is preferred."""

from __future__ import annotations

from typing import Any

from rerankctl.data.converters.base import assistant, get_text, preference, require_object, user
from rerankctl.data.formats import RecordError

NAME = "stack-exchange-paired"
KIND = "preference"
DESCRIPTION = "lvwerra/stack-exchange-paired (question, response_j preferred over response_k)"
SOURCE = '{"qid": ..., "question": str, "response_j": str, "response_k": str}'


def convert(obj: Any) -> list[dict[str, Any]]:
    obj = require_object(obj)
    question = get_text(obj, "question")
    better, worse = get_text(obj, "response_j"), get_text(obj, "response_k")
    if better == worse:
        raise RecordError("response_k", "identical to 'response_j'")
    return [preference(user(question), assistant(better), assistant(worse))]
