"""The three data formats (rerank, preference, VL preference) and their normalised records.

DESIGN.md §4 defines what users may write; this module turns one parsed JSON object
into one normalised record, or raises :class:`RecordError` naming the bad field.
The caller (a reader that knows the file and line) turns that into a
:class:`rerankctl.errors.DataError` with the file and line added.

Accepted shapes:

* rerank: ``{"query", "pos": [str], "neg": [str], "instruction"?, "pos_scores"?, "neg_scores"?}``
  or ``{"query", "docs": [str], "labels": [number], "instruction"?, "scores"?}`` (graded labels).
* the original (seed) tool's rerank shape, read directly (:func:`parse_seed`): ``positives``/``positive``,
  ``answer``, ``positives_strong``, ``negatives``/``negative``, the graded tiers ``neg_very_hard``,
  ``neg_hard``, ``neg_medium`` and ``statement_*_negatives``.
* preference: ``{"chosen": [messages], "rejected": [messages]}`` (the shared leading messages
  become the prompt) or ``{"prompt", "chosen", "rejected", "margin"?}`` where each of the three
  is a string or a list of messages.
* vl: ``{"id", "query", "image": path, "response": [a, b], "human_ranking": [0, 1]}``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

KINDS = ("rerank", "preference", "vl")
ROLES = ("system", "user", "assistant", "tool")


class RecordError(ValueError):
    """One record is malformed: ``field`` names the key, ``message`` says what is wrong."""

    def __init__(self, field: str | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.hint = hint


@dataclass
class RerankRecord:
    """One query with its documents; ``labels`` are 1.0/0.0 from pos/neg or graded relevance.

    ``hardness``: how hard each negative is, from the seed tool's graded tiers (:data:`SEED_HARDNESS`),
    or None; ``hard``/``mixed`` sampling picks the hardest negatives by it when there are no
    teacher scores (it is not a relevance grade: every tier stays a negative, label 0).
    """

    query: str
    docs: list[str]
    labels: list[float]
    instruction: str | None = None
    teacher_scores: list[float] | None = None
    hardness: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The group dict the datasets return (and the ``docs/labels`` file shape)."""
        return {
            "query": self.query,
            "docs": list(self.docs),
            "labels": list(self.labels),
            "instruction": self.instruction,
            "teacher_scores": None if self.teacher_scores is None else list(self.teacher_scores),
        }

    def to_json(self) -> dict[str, Any]:
        """The canonical file shape: ``pos/neg`` when labels are binary, else ``docs/labels``."""
        out: dict[str, Any] = {"query": self.query}
        if all(label in (0.0, 1.0) for label in self.labels):
            pos = [i for i, label in enumerate(self.labels) if label == 1.0]
            neg = [i for i, label in enumerate(self.labels) if label == 0.0]
            out["pos"] = [self.docs[i] for i in pos]
            out["neg"] = [self.docs[i] for i in neg]
            if self.teacher_scores is not None:
                out["pos_scores"] = [self.teacher_scores[i] for i in pos]
                out["neg_scores"] = [self.teacher_scores[i] for i in neg]
        else:
            out["docs"] = list(self.docs)
            out["labels"] = list(self.labels)
            if self.teacher_scores is not None:
                out["scores"] = list(self.teacher_scores)
        if self.instruction is not None:
            out["instruction"] = self.instruction
        return out


@dataclass
class PreferenceRecord:
    """A shared prompt (messages) and two continuations (messages); ``margin`` is optional."""

    prompt: list[dict[str, str]]
    chosen: list[dict[str, str]]
    rejected: list[dict[str, str]]
    margin: float | None = None

    def chosen_messages(self) -> list[dict[str, str]]:
        return self.prompt + self.chosen

    def rejected_messages(self) -> list[dict[str, str]]:
        return self.prompt + self.rejected

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}
        if self.margin is not None:
            out["margin"] = self.margin
        return out


@dataclass
class VLRecord:
    """A VL preference pair; ``human_ranking[i]`` is the rank of ``responses[i]`` (0 = best)."""

    id: str
    query: str
    image: str
    responses: list[str]
    human_ranking: list[int]

    @property
    def chosen_index(self) -> int:
        return self.human_ranking.index(0)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "query": self.query,
            "image": self.image,
            "response": list(self.responses),
            "human_ranking": list(self.human_ranking),
        }


# ---------------------------------------------------------------------------------------------- helpers


def _check_unicode(value: str, field: str) -> None:
    """Reject unpaired surrogates (JSON allows "\\ud800"); tokenizers cannot take them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError(field, f"invalid Unicode (unpaired surrogate at character {exc.start})") from None


def _text(obj: dict, field: str, *, required: bool = True, allow_empty: bool = False) -> str | None:
    value = obj.get(field)
    if value is None:
        if required:
            raise RecordError(field, "missing", hint=f"every record needs a '{field}' string")
        return None
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(field, "empty string")
    _check_unicode(value, field)
    return value


def _text_list(obj: dict, field: str, *, required: bool = True, allow_empty_list: bool = True) -> list[str]:
    value = obj.get(field)
    if value is None:
        if required:
            raise RecordError(field, "missing", hint=f"'{field}' must be a list of strings")
        return []
    if isinstance(value, str):
        value = [value]  # a lone string is a one-document list (common in hand-written files)
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordError(f"{field}[{i}]", f"expected a string, got {type(item).__name__}")
        if not item.strip():
            raise RecordError(f"{field}[{i}]", "empty string")
        _check_unicode(item, f"{field}[{i}]")
    if not allow_empty_list and not value:
        raise RecordError(field, "empty list")
    return list(value)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(field, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise RecordError(field, f"not a finite number: {value}")
    return float(value)


def _numbers(obj: dict, field: str, length: int, length_of: str) -> list[float] | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of numbers, got {type(value).__name__}")
    if len(value) != length:
        raise RecordError(field, f"has {len(value)} values but '{length_of}' has {length}")
    return [_number(v, f"{field}[{i}]") for i, v in enumerate(value)]


def _require_object(obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise RecordError(None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


# ---------------------------------------------------------------------------------------------- rerank


def parse_rerank(obj: Any) -> RerankRecord:
    """Normalise one rerank record (pos/neg, docs/labels, or the seed tool's keys)."""
    obj = _require_object(obj)
    if is_seed_rerank(obj):
        return parse_seed(obj)
    query = _text(obj, "query")
    instruction = _text(obj, "instruction", required=False)
    if "docs" in obj and "pos" not in obj:
        docs = _text_list(obj, "docs", allow_empty_list=False)
        if "labels" not in obj:
            raise RecordError("labels", "missing", hint="'docs' needs a 'labels' list of the same length")
        labels = _numbers(obj, "labels", len(docs), "docs") or []
        for i, label in enumerate(labels):
            if label < 0:
                raise RecordError(f"labels[{i}]", f"negative relevance {label}")
        if not any(label > 0 for label in labels):
            raise RecordError("labels", "no relevant document (every label is 0)")
        scores = _numbers(obj, "scores", len(docs), "docs")
        return RerankRecord(query, docs, labels, instruction, scores)
    if "pos" not in obj:
        raise RecordError(
            "pos", "missing", hint="a rerank record has 'pos' and 'neg' lists, or 'docs' and 'labels'"
        )
    pos = _text_list(obj, "pos", allow_empty_list=False)
    neg = _text_list(obj, "neg", required=False)
    pos_scores = _numbers(obj, "pos_scores", len(pos), "pos")
    neg_scores = _numbers(obj, "neg_scores", len(neg), "neg")
    teacher = None
    if pos_scores is not None or neg_scores is not None:
        if pos_scores is None:
            raise RecordError(
                "pos_scores", "missing while 'neg_scores' is given", hint="give both or neither"
            )
        if neg_scores is None and neg:
            raise RecordError(
                "neg_scores", "missing while 'pos_scores' is given", hint="give both or neither"
            )
        teacher = pos_scores + (neg_scores or [])
    return RerankRecord(query, pos + neg, [1.0] * len(pos) + [0.0] * len(neg), instruction, teacher)


# ---------------------------------------------------------------------------------------------- seed rerank

#: The original tool's document lists and the relevance label each one gets. Labels > 0 are
#: positives everywhere (losses, sampling, metrics), so the graded *negative* tiers cannot carry a
#: relevance grade without turning into positives: they are all label 0, keep their order (hardest
#: first) and carry their tier as a *hardness* grade (SEED_HARDNESS) that hard-negative sampling
#: uses. Strong positives are graded above plain ones.
SEED_POSITIVES: dict[str, float] = {"positives_strong": 2.0, "positives": 1.0, "positive": 1.0, "answer": 1.0}
SEED_NEGATIVES: tuple[str, ...] = ("neg_very_hard", "neg_hard", "neg_medium", "negatives", "negative")
#: The negative tiers' difficulty grades (``statement_*_negatives`` count as medium, positives and
#: untiered negatives 0): what ``--sampling hard`` ranks negatives by when a record has no scores.
SEED_HARDNESS: dict[str, float] = {"neg_very_hard": 3.0, "neg_hard": 2.0, "neg_medium": 1.0, "statement": 1.0}
_SEED_STATEMENT = re.compile(r"^statement_\w+_negatives$")


def is_seed_rerank(obj: Any) -> bool:
    """Whether ``obj`` uses the seed tool's keys (and none of rerankctl's ``pos``/``docs``)."""
    if not isinstance(obj, dict) or "query" not in obj or "pos" in obj or "docs" in obj:
        return False
    return any(k in SEED_POSITIVES or k in SEED_NEGATIVES or _SEED_STATEMENT.match(k) for k in obj)


def parse_seed(obj: Any) -> RerankRecord:
    """Normalise one record of the original tool (``positives``/``negatives``, graded tiers).

    Documents keep the order positives_strong, positives, positive, answer, then the negatives
    from the hardest tier down (``neg_very_hard``, ``neg_hard``, ``neg_medium``, the
    ``statement_*_negatives`` lists in file order, ``negatives``, ``negative``); labels come from
    :data:`SEED_POSITIVES` (negatives are 0). Errors name the seed field (``neg_hard[2]``).
    """
    obj = _require_object(obj)
    query = _text(obj, "query")
    instruction = _text(obj, "instruction", required=False)
    docs: list[str] = []
    labels: list[float] = []
    hardness: list[float] = []
    seen: set[str] = set()

    def add(field: str, label: float) -> None:
        grade = SEED_HARDNESS.get("statement" if _SEED_STATEMENT.match(field) else field, 0.0)
        for text in _text_list(obj, field, required=False):
            if text not in seen:  # the answer is often also in positives: keep its first (highest) label
                seen.add(text)
                docs.append(text)
                labels.append(label)
                hardness.append(grade)

    for field, label in SEED_POSITIVES.items():
        add(field, label)
    if not docs:
        raise RecordError(
            "positives",
            "missing",
            hint="a record needs 'positives' (or 'positive', 'answer', 'positives_strong')",
        )
    statements = [k for k in obj if isinstance(k, str) and _SEED_STATEMENT.match(k)]
    for field in (*SEED_NEGATIVES[:3], *statements, *SEED_NEGATIVES[3:]):
        add(field, 0.0)
    tiered = any(hardness)  # only tiered records carry it: plain positives/negatives sample as before
    return RerankRecord(query, docs, labels, instruction, hardness=hardness if tiered else None)


# ---------------------------------------------------------------------------------------------- preference


def _messages(value: Any, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(field, "empty string")
        _check_unicode(value, field)
        return [{"role": "assistant" if field != "prompt" else "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise RecordError(field, "expected a string or a non-empty list of messages")
    out = []
    for i, msg in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict):
            raise RecordError(where, f"expected a message object, got {type(msg).__name__}")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise RecordError(f"{where}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise RecordError(f"{where}.content", f"expected a string, got {type(content).__name__}")
        if not content.strip():
            raise RecordError(f"{where}.content", "empty string")
        _check_unicode(content, f"{where}.content")
        out.append({"role": role, "content": content})
    return out


def split_shared_prefix(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]]
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """Split the longest common leading messages off as the prompt; both tails stay non-empty."""
    n = 0
    limit = min(len(chosen), len(rejected)) - 1
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    return chosen[:n], chosen[n:], rejected[n:]


def parse_preference(obj: Any) -> PreferenceRecord:
    """Normalise one preference record (chat or prompt/chosen/rejected)."""
    obj = _require_object(obj)
    for field in ("chosen", "rejected"):
        if field not in obj:
            raise RecordError(field, "missing", hint="a preference record has 'chosen' and 'rejected'")
    chosen = _messages(obj["chosen"], "chosen")
    rejected = _messages(obj["rejected"], "rejected")
    margin = None
    if obj.get("margin") is not None:
        margin = _number(obj["margin"], "margin")
    if obj.get("prompt") is not None:
        prompt = _messages(obj["prompt"], "prompt")
    else:
        prompt, chosen, rejected = split_shared_prefix(chosen, rejected)
    if chosen == rejected:
        raise RecordError(
            "rejected", "identical to 'chosen'", hint="a preference pair needs two different answers"
        )
    return PreferenceRecord(prompt, chosen, rejected, margin)


# ---------------------------------------------------------------------------------------------- vl


def parse_vl(obj: Any) -> VLRecord:
    """Normalise one VL preference record; the image path is not opened here."""
    obj = _require_object(obj)
    raw_id = obj.get("id")
    if raw_id is None or isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id) == "":
        raise RecordError("id", "missing or not a string/integer")
    query = _text(obj, "query")
    image = _text(obj, "image")
    responses = _text_list(obj, "response")
    if len(responses) != 2:
        raise RecordError("response", f"expected exactly 2 responses, got {len(responses)}")
    ranking = obj.get("human_ranking")
    if (
        not isinstance(ranking, list)
        or sorted(r for r in ranking if isinstance(r, int)) != [0, 1]
        or any(isinstance(r, bool) for r in ranking)
    ):
        raise RecordError("human_ranking", f"expected [0, 1] or [1, 0], got {ranking!r}")
    return VLRecord(str(raw_id), query, image, responses, list(ranking))


PARSERS = {"rerank": parse_rerank, "preference": parse_preference, "vl": parse_vl}


def detect_kind(obj: Any) -> str | None:
    """Guess the kind of a record from its keys; None when nothing fits."""
    if not isinstance(obj, dict):
        return None
    if "human_ranking" in obj or ("image" in obj and "response" in obj):
        return "vl"
    if "chosen" in obj or "rejected" in obj:
        return "preference"
    if "query" in obj and ("pos" in obj or "docs" in obj or "neg" in obj):
        return "rerank"
    if is_seed_rerank(obj):
        return "rerank"
    return None
