"""The exact Qwen3-Reranker prompt and its tokenization.

A (query, document) pair is scored by one forward pass of a causal LM over::

    PREFIX + "<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}" + SUFFIX

reading the logits of "yes" and "no" at the last position. Tokenization puts the
prefix and suffix around the body *as token ids*, so truncation can only ever cut
the body: the document first, then the query. Rows are left-padded so that the
last position is the same index (-1) for every row of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankctl.errors import UsageError

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

_INSTRUCT = "<Instruct>: "
_QUERY = "\n<Query>: "
_DOCUMENT = "\n<Document>: "


def format_input(query: str, doc: str, instruction: str | None = None) -> str:
    """The body between PREFIX and SUFFIX, exactly as Qwen3-Reranker was trained on."""
    instruction = instruction or DEFAULT_INSTRUCTION
    return f"{_INSTRUCT}{instruction}{_QUERY}{query}{_DOCUMENT}{doc}"


def format_full(query: str, doc: str, instruction: str | None = None) -> str:
    """The whole prompt as text (for inspection and tests; scoring uses token ids)."""
    return PREFIX + format_input(query, doc, instruction) + SUFFIX


def get_yes_no_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The ids of "yes" and "no"; each must be exactly one token.

    Raises:
        UsageError: when the tokenizer splits "yes" or "no" into several tokens or lacks them.
    """
    ids = []
    for word in ("yes", "no"):
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) != 1:
            raise UsageError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} encodes {word!r} as {len(encoded)} tokens",
                hint="the yes/no reranker needs a tokenizer where 'yes' and 'no' are single tokens (Qwen3, Llama, ...)",
            )
        ids.append(encoded[0])
    return ids[0], ids[1]


class PromptTokenizer:
    """Tokenizes (query, doc) pairs into the reranker prompt, truncating only the body.

    The ids equal those of tokenizing :func:`format_full` as one string. To get there
    without re-tokenizing the long shared parts for every document, the text is cut
    where BPE pre-tokenization cannot merge across: after ``"<Document>:"`` (the
    document is tokenized as ``" " + doc``) and before the special ``<|im_end|>`` of
    the suffix. The head (prefix, instruction, query) is tokenized once per distinct
    (instruction, query).
    """

    def __init__(self, tokenizer: Any, max_length: int = 512) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.prefix_ids: list[int] = self._enc(PREFIX)
        self.suffix_ids: list[int] = self._enc(SUFFIX)
        self.doc_marker_ids: list[int] = self._enc(_DOCUMENT.rstrip(" "))
        template = len(self._enc(format_full("", "", "")))
        if max_length <= template + 8:
            raise UsageError(
                f"max_length {max_length} leaves no room for the query and document",
                hint=f"the prompt template alone is {template} tokens; use --max-length {template + 64} or more",
            )
        self.yes_id, self.no_id = get_yes_no_token_ids(tokenizer)

    def _enc(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _heads(self, keys: list[tuple[str | None, str]]) -> dict[tuple[str | None, str], list[int]]:
        """prefix + "<Instruct>: ..\n<Query>: ..\n<Document>:" ids per (instruction, query)."""
        texts = [
            f"{_INSTRUCT}{instr or DEFAULT_INSTRUCTION}{_QUERY}{query}{_DOCUMENT.rstrip(' ')}"
            for instr, query in keys
        ]
        return {key: self.prefix_ids + ids for key, ids in zip(keys, self._batch(texts))}

    def _truncated_head(self, instruction: str | None, query: str, budget: int) -> list[int]:
        """A head cut to fit ``budget`` tokens: the query first; the instruction too when it alone
        is too long (a 2,000-word ``--instruction`` once gave a 2,059-token prompt at max_length 128).

        The prefix and the ``<Instruct>:``/``<Query>:``/``<Document>:`` markers always survive.
        When the instruction does not fit, instruction and query share the room: the query keeps
        up to half of it (all of it if shorter) and the instruction keeps its first tokens.
        """
        instr = instruction or DEFAULT_INSTRUCTION
        lead = self.prefix_ids + self._enc(f"{_INSTRUCT}{instr}{_QUERY.rstrip(' ')}")
        query_ids = self._enc(" " + query)
        room = budget - len(self.doc_marker_ids)
        if len(lead) <= room:
            return lead + query_ids[: room - len(lead)] + self.doc_marker_ids
        instr_ids = self._enc(f"{_INSTRUCT}{instr}")
        query_marker = self._enc(_QUERY.rstrip(" "))
        body = max(0, room - len(self.prefix_ids) - len(query_marker))
        keep_query = min(len(query_ids), max(body - len(instr_ids), body // 2))
        keep_instr = min(len(instr_ids), body - keep_query)
        return (
            self.prefix_ids
            + instr_ids[:keep_instr]
            + query_marker
            + query_ids[:keep_query]
            + self.doc_marker_ids
        )

    def encode_pairs(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        instructions: Sequence[str | None] | str | None = None,
    ) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each full prompt, and whether each one had to be truncated.

        Over-long pairs lose document tokens first (from the end), then query tokens, then
        (an instruction too long by itself) instruction tokens; the prefix, the markers and
        the suffix always survive, so no prompt is longer than ``max_length``.
        """
        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} documents")
        if instructions is None or isinstance(instructions, str):
            instructions = [instructions] * len(queries)
        keys = list(zip(instructions, queries))
        heads = self._heads(list(dict.fromkeys(keys)))
        doc_ids = self._batch([" " + d for d in docs])
        budget = self.max_length - len(self.suffix_ids)
        out: list[list[int]] = []
        truncated: list[bool] = []
        min_doc = 1
        for key, d_ids in zip(keys, doc_ids):
            head = heads[key]
            cut = len(head) + len(d_ids) > budget
            if cut:
                if len(head) + min_doc > budget:
                    head = self._truncated_head(key[0], key[1], budget - min_doc)
                d_ids = d_ids[: max(0, budget - len(head))]
            out.append(head + d_ids + self.suffix_ids)
            truncated.append(cut)
        return out, truncated

    def pad(self, sequences: Sequence[Sequence[int]], pad_to_multiple_of: int | None = None):
        """Left-pad id lists into ``input_ids`` and ``attention_mask`` tensors."""
        import torch

        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        longest = max((len(s) for s in sequences), default=0)
        if pad_to_multiple_of:
            longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
        input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, seq in enumerate(sequences):
            if seq:
                input_ids[row, longest - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                attention_mask[row, longest - len(seq) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


def tokenize_for_training(
    tokenizer: Any,
    queries: Sequence[str],
    docs: Sequence[str],
    instructions: Sequence[str | None] | str | None = None,
    max_length: int = 512,
) -> dict[str, Any]:
    """Tokenize and left-pad pairs into a batch: ``input_ids``, ``attention_mask``, ``truncated``."""
    prompt = PromptTokenizer(tokenizer, max_length=max_length)
    ids, truncated = prompt.encode_pairs(queries, docs, instructions)
    batch = prompt.pad(ids)
    batch["truncated"] = truncated
    return batch
