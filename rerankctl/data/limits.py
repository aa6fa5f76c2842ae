"""A per-field character cap, applied while records are read (before any tokenisation).

One 50 MB document in a training file used to be tokenised whole (11.8 GB of RAM, no
step done) only to be cut to ``max_length`` tokens afterwards. Capping every text field
at ``max_chars`` characters as the record is read bounds the memory of every path that
reads data (train sft/rl/reward/vl, eval, rerank) by the cap instead of by the file.

The default, 100,000 characters, is the server's ``--max-doc-chars``: at the tokenizers'
usual 3-5 characters per token that is 20,000+ tokens, far above any ``max_length`` this
tool trains with, so the cap never changes what a model sees at the default settings; it
only stops pathological records from costing gigabytes. ``0`` turns it off.
"""

from __future__ import annotations

from typing import Any

from rerankctl.data.formats import PreferenceRecord, RerankRecord, VLRecord

DEFAULT_MAX_CHARS = 100_000
MAX_CHARS_HELP = (
    "Characters kept per text field (query, document, instruction, message) when data is read, "
    "before tokenising; longer fields are cut and the cut records counted in the run's events "
    "(0 = no cap)."
)


def cut(text: str | None, max_chars: int) -> tuple[str | None, bool]:
    """``text`` cut to ``max_chars`` characters (0 = no cap), and whether it was cut."""
    if text is None or not max_chars or len(text) <= max_chars:
        return text, False
    return text[:max_chars], True


def _cut_messages(messages: list[dict[str, Any]], max_chars: int) -> bool:
    any_cut = False
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            message["content"], was_cut = cut(content, max_chars)
            any_cut |= was_cut
    return any_cut


def cap_record(record: Any, max_chars: int) -> bool:
    """Cut every text field of a parsed record in place; True when any field was cut."""
    if not max_chars:
        return False
    any_cut = False
    if isinstance(record, RerankRecord):
        record.query, a = cut(record.query, max_chars)
        record.instruction, b = cut(record.instruction, max_chars)
        docs = [cut(doc, max_chars) for doc in record.docs]
        record.docs = [doc for doc, _ in docs]
        any_cut = a or b or any(was_cut for _, was_cut in docs)
    elif isinstance(record, PreferenceRecord):
        for messages in (record.prompt, record.chosen, record.rejected):
            any_cut |= _cut_messages(messages, max_chars)
    elif isinstance(record, VLRecord):
        record.query, any_cut = cut(record.query, max_chars)
        responses = [cut(text, max_chars) for text in record.responses]
        record.responses = [text for text, _ in responses]
        any_cut = any_cut or any(was_cut for _, was_cut in responses)
    return any_cut


def cut_event(count: int, max_chars: int, source: str) -> str:
    """The run-store event line for ``count`` records cut while reading ``source``."""
    return (
        f"{source}: {count} record(s) had a field longer than {max_chars:,} characters and were cut "
        "while reading (--max-chars)"
    )
