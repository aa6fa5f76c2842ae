"""Tokenized preference pairs for reward-model training.

Each :class:`~rerankctl.data.formats.PreferenceRecord` becomes one pair of token
sequences, ``prompt + chosen`` and ``prompt + rejected``, where both share the same
tokenized prompt (rendered once with the tokenizer's chat template and
``add_generation_prompt``). The response tokens are the chat-template rendering of
the continuation with the prompt's rendering cut off, so they include the
``<|im_end|>`` that closes the assistant turn and the reward head reads that token.

Truncation keeps the reward-relevant parts: the response keeps its first tokens up to
``max_length - min(prompt, max_length // 2)``; the prompt then loses tokens from its
*start* (the end of a conversation matters most for judging the reply).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import torch

from rerankctl.data.formats import PreferenceRecord


def pad_right(
    seqs: list[list[int]], pad_id: int, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``seqs`` to ``length`` (default: the longest); returns ``(input_ids, attention_mask)``."""
    width = max(length or 0, max((len(s) for s in seqs), default=0), 1)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _as_messages(value: str | list[dict[str, str]], role: str) -> list[dict[str, str]]:
    return [{"role": role, "content": value}] if isinstance(value, str) else list(value)


class PairTokenizer:
    """Renders prompts and responses with the chat template and tokenizes them.

    Args:
        tokenizer: a Hugging Face tokenizer (with a chat template, or plain text is joined by newlines).
        max_length: the longest sequence (prompt + response) fed to the model.
    """

    def __init__(self, tokenizer: Any, max_length: int = 1024) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.has_template = bool(getattr(tokenizer, "chat_template", None))

    def _render(self, messages: list[dict[str, str]], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_text(self, prompt: str | list[dict[str, str]]) -> str:
        if not self.has_template:
            return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        return self._render(_as_messages(prompt, "user"), True)

    def response_text(self, prompt: str | list[dict[str, str]], response: str | list[dict[str, str]]) -> str:
        """The text the response adds after the rendered prompt (trailing whitespace dropped)."""
        if not self.has_template:
            text = response if isinstance(response, str) else "\n".join(m["content"] for m in response)
            return "\n" + text
        prompt_messages = _as_messages(prompt, "user")
        full = self._render(prompt_messages + _as_messages(response, "assistant"), False)
        head = self._render(prompt_messages, True)
        if full.startswith(head):
            return full[len(head) :].rstrip()
        # A template that renders the prompt differently once a reply follows: keep the reply's own turn.
        return self._render(_as_messages(response, "assistant"), False).rstrip()

    def encode_prompt(self, prompt: str | list[dict[str, str]]) -> list[int]:
        return self._ids(self.prompt_text(prompt))

    def encode_response(
        self, prompt: str | list[dict[str, str]], response: str | list[dict[str, str]]
    ) -> list[int]:
        return self._ids(self.response_text(prompt, response))

    def join(self, prompt_ids: list[int], response_ids: list[int]) -> tuple[list[int], bool]:
        """``prompt + response`` cut to ``max_length`` (see the module docstring); returns (ids, truncated)."""
        if len(prompt_ids) + len(response_ids) <= self.max_length:
            return prompt_ids + response_ids, False
        keep_prompt_min = min(len(prompt_ids), self.max_length // 2)
        response_ids = response_ids[: self.max_length - keep_prompt_min]
        room = self.max_length - len(response_ids)
        prompt_ids = prompt_ids[len(prompt_ids) - room :] if room > 0 else []
        return prompt_ids + response_ids, True


@dataclass
class TokenizedPair:
    """One preference pair ready for the collator."""

    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float
    chosen_len: int  # response tokens (for the reward/length correlation)
    rejected_len: int
    truncated: bool


class PreferencePairDataset(torch.utils.data.Dataset):
    """A list of :class:`TokenizedPair` as dicts (the form the Trainer's dataloader wants)."""

    def __init__(self, records: list[PreferenceRecord], tokenizer: Any, max_length: int = 1024) -> None:
        encoder = PairTokenizer(tokenizer, max_length)
        self.pairs: list[TokenizedPair] = []
        self.records = records
        for record in records:
            prompt_ids = encoder.encode_prompt(record.prompt)
            chosen = encoder.encode_response(record.prompt, record.chosen)
            rejected = encoder.encode_response(record.prompt, record.rejected)
            chosen_ids, cut_c = encoder.join(prompt_ids, chosen)
            rejected_ids, cut_r = encoder.join(prompt_ids, rejected)
            self.pairs.append(
                TokenizedPair(
                    chosen_ids,
                    rejected_ids,
                    float(record.margin or 0.0),
                    len(chosen),
                    len(rejected),
                    cut_c or cut_r,
                )
            )

    @property
    def truncated(self) -> int:
        return sum(p.truncated for p in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        return {
            "chosen_ids": pair.chosen_ids,
            "rejected_ids": pair.rejected_ids,
            "margin": pair.margin,
            "chosen_len": pair.chosen_len,
            "rejected_len": pair.rejected_len,
        }


class PreferenceCollator:
    """Pads chosen and rejected of a batch to ONE common length (right padding).

    A common width lets the trainer concatenate them into a ``(2B, L)`` batch and score
    both sides in a single forward pass.
    """

    def __init__(self, pad_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(max(len(f["chosen_ids"]), len(f["rejected_ids"])) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        chosen_ids, chosen_mask = pad_right([f["chosen_ids"] for f in features], self.pad_id, width)
        rejected_ids, rejected_mask = pad_right([f["rejected_ids"] for f in features], self.pad_id, width)
        return {
            "chosen_input_ids": chosen_ids,
            "chosen_attention_mask": chosen_mask,
            "rejected_input_ids": rejected_ids,
            "rejected_attention_mask": rejected_mask,
            "margin": torch.tensor([float(f["margin"]) for f in features]),
            "lengths": torch.tensor(
                [[f["chosen_len"], f["rejected_len"]] for f in features], dtype=torch.float
            ),
        }


def prompt_key(record: PreferenceRecord) -> str:
    """A stable key of a record's prompt (pairs with the same prompt stay on one side of a split)."""
    return json.dumps(record.prompt, sort_keys=True, ensure_ascii=False)


def split_by_prompt(
    records: list[PreferenceRecord], eval_fraction: float = 0.2, seed: int = 42
) -> tuple[list[PreferenceRecord], list[PreferenceRecord]]:
    """Split into (train, eval) so that no prompt appears on both sides.

    Prompts are shuffled with ``seed`` and the first ``round(eval_fraction * n_prompts)``
    (at least one when there are two or more prompts) go to eval.
    """
    keys = sorted({prompt_key(r) for r in records})
    random.Random(seed).shuffle(keys)
    n_eval = round(eval_fraction * len(keys))
    if eval_fraction > 0 and len(keys) >= 2:
        n_eval = min(max(n_eval, 1), len(keys) - 1)
    eval_keys = set(keys[:n_eval])
    train = [r for r in records if prompt_key(r) not in eval_keys]
    held = [r for r in records if prompt_key(r) in eval_keys]
    return train, held


def take_fraction(records: list, frac: float = 1.0, seed: int = 42, max_samples: int | None = None) -> list:
    """A seeded random subset: ``frac`` of the records, then at most ``max_samples``."""
    if not 0 < frac <= 1:
        from rerankctl.errors import UsageError

        raise UsageError(f"--frac must be in (0, 1], got {frac}", hint="e.g. --frac 0.1 for a 10% subset")
    count = len(records) if frac >= 1 else max(1, int(len(records) * frac))
    if max_samples is not None:
        count = min(count, max_samples)
    if count >= len(records):
        return list(records)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:count])]
