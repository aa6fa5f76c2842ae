"""`SeqClsBackend`: rerankers with a one-logit sequence-classification head.

Two kinds of directory load through ``AutoModelForSequenceClassification``:

* an exported ``Qwen3ForSequenceClassification`` (``rerankctl export --to seq-cls``): its score
  row is ``W_yes - W_no``, so it must see exactly the Qwen3-Reranker prompt
  (:func:`rerankctl.data.prompt.format_full`, tokenized by ``PromptTokenizer``); the score is
  ``sigmoid(logit)`` at the last position, equal to the yes/no scorer's;
* a sentence-transformers CrossEncoder (BERT-style pair classifier): the tokenizer encodes
  ``(query, document)`` as a pair, right-padded; the activation is the one the CrossEncoder
  saved (sigmoid by default for one label), read from ``config_sentence_transformers.json`` or
  ``config.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerankctl.errors import UsageError
from rerankctl.serve.backends import KIND_CROSS_ENCODER, KIND_QWEN3_SEQ_CLS

# Activations a CrossEncoder may save, by their dotted torch path's last part.
_ACTIVATIONS = ("Sigmoid", "Identity", "Tanh")


def crossencoder_activation(path: str | Path) -> str:
    """The activation a CrossEncoder directory asks for: "Sigmoid", "Identity" or "Tanh"."""
    path = Path(path)
    dotted = None
    st_config = path / "config_sentence_transformers.json"
    if st_config.is_file():
        dotted = json.loads(st_config.read_text("utf-8")).get("activation_fn")
    config = json.loads((path / "config.json").read_text("utf-8"))
    if dotted is None:
        # sentence-transformers 4/5 kept it in config.json; before 4, under another key.
        dotted = (config.get("sentence_transformers") or {}).get("activation_fn") or config.get(
            "sbert_ce_default_activation_function"
        )
    if dotted is None:
        return "Sigmoid"
    name = str(dotted).rsplit(".", 1)[-1]
    if name not in _ACTIVATIONS:
        raise UsageError(
            f"{path}: CrossEncoder activation {dotted!r} is not supported",
            hint=f"supported: {', '.join(_ACTIVATIONS)}",
        )
    return name


class SeqClsBackend:
    """Scores pairs with a ``*ForSequenceClassification`` model that has one label.

    Args:
        model_path: the model directory.
        kind: ``"qwen3-seq-cls"`` or ``"cross-encoder"`` (see ``detect_model_kind``).
        device, dtype: as for :class:`rerankctl.models.reranker.Qwen3Reranker`.
        max_length: token limit; for CrossEncoders also capped by the model's own limit.
        instruction: default instruction (Qwen3 prompt only).
    """

    def __init__(
        self,
        model_path: str,
        kind: str,
        device: str | None = None,
        dtype: str | None = "auto",
        max_length: int = 1024,
        instruction: str | None = None,
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from rerankctl.models.loading import pick_device, pick_dtype

        if kind not in (KIND_QWEN3_SEQ_CLS, KIND_CROSS_ENCODER):
            raise UsageError(f"SeqClsBackend cannot serve a {kind!r} model")
        self.name = str(model_path)
        self.kind = kind
        self.instruction = instruction
        self.device = pick_device(device)
        padding_side = "left" if kind == KIND_QWEN3_SEQ_CLS else "right"
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side=padding_side)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = self.tokenizer.pad_token_id
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path, dtype=pick_dtype(dtype, self.device)
        )
        self.model = model.to(self.device).eval()
        if kind == KIND_QWEN3_SEQ_CLS:
            from rerankctl.data.prompt import PromptTokenizer

            self.prompt = PromptTokenizer(self.tokenizer, max_length=max_length)
            self.activation = "Sigmoid"
            self._max_length = max_length
        else:
            self.prompt = None
            self.activation = crossencoder_activation(model_path)
            limits = [
                max_length,
                getattr(model.config, "max_position_embeddings", None),
                getattr(self.tokenizer, "model_max_length", None),
            ]
            self._max_length = min(int(x) for x in limits if x and x < 10**9)

    @property
    def max_length(self) -> int:
        return self._max_length

    def encode(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[Any]:
        """Per pair: a list of token ids (Qwen3 prompt) or ``(ids, token_type_ids)`` (CrossEncoder)."""
        if self.prompt is not None:
            ids, _ = self.prompt.encode_pairs(queries, docs, instruction or self.instruction)
            return ids
        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} documents")
        if not queries:
            return []
        enc = self.tokenizer(list(queries), list(docs), truncation=True, max_length=self._max_length)
        types = enc.get("token_type_ids")
        return [_Pair(ids, types[i] if types is not None else None) for i, ids in enumerate(enc["input_ids"])]

    def count_tokens(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[int]:
        return [len(x) for x in self.encode(queries, docs, instruction)]

    def _forward(self, rows: list[Any]):
        import torch

        if self.prompt is not None:
            batch = self.prompt.pad(rows)
            ids = batch["input_ids"].to(self.device)
            mask = batch["attention_mask"].to(self.device)
            # Left padding: the last position is every row's last real token. Run the decoder and the
            # one-row score head there, instead of relying on config.pad_token_id to find it.
            base = getattr(self.model, self.model.base_model_prefix)
            hidden = base(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state[:, -1, :]
            return self.model.score(hidden).float()[:, 0]
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        types = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row.ids)
            mask[i, : len(row)] = 1
            if row.types is not None:
                types[i, : len(row)] = torch.tensor(row.types)
        inputs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if rows[0].types is not None:
            inputs["token_type_ids"] = types.to(self.device)
        return self.model(**inputs).logits.float()[:, 0]

    def score_ids(
        self, sequences: Sequence[Any], batch_size: int = 32, normalize: bool = True
    ) -> list[float]:
        """Score encoded pairs in length-sorted batches; results in input order."""
        import torch

        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out = [0.0] * len(sequences)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                logits = self._forward([sequences[i] for i in rows])
                if normalize and self.activation == "Sigmoid":
                    logits = torch.sigmoid(logits)
                elif normalize and self.activation == "Tanh":
                    logits = torch.tanh(logits)
                for i, value in zip(rows, logits.cpu().tolist(), strict=True):
                    out[i] = value
        return out

    def score_pairs(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
    ) -> list[float]:
        """Scores of (query, doc) pairs, in input order."""
        return self.score_ids(
            self.encode(queries, docs, instruction), batch_size=batch_size, normalize=normalize
        )


class _Pair:
    """One tokenized (query, document) pair of a CrossEncoder; ``len()`` is its token count."""

    __slots__ = ("ids", "types")

    def __init__(self, ids: list[int], types: list[int] | None) -> None:
        self.ids = ids
        self.types = types

    def __len__(self) -> int:
        return len(self.ids)
