"""`Qwen3Reranker`: score and rerank documents with a yes/no causal-LM reranker.

    >>> reranker = Qwen3Reranker("runs/my-run/final")            # doctest: +SKIP
    >>> ranking, scores = reranker.rerank("what is BM25?", docs)  # doctest: +SKIP

Scores are ``sigmoid(logit_yes - logit_no)`` (``normalize=False`` gives the raw
logit difference). With ``shared_prefix`` (the default) the documents of one query are
packed so that its prompt head is encoded once (:mod:`rerankctl.models.shared_prefix`,
same scores); otherwise pairs are sorted by length and batched so that padding is small.
Inference runs without autograd and in bf16 on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Qwen3Reranker:
    """A yes/no reranker loaded from a model directory, hub id, or PEFT adapter directory.

    Args:
        model_name_or_path: model directory, hub id, or a training run's ``final/`` directory.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``; default: the first GPU if any.
        dtype: ``"bf16"``, ``"fp16"``, ``"fp32"`` or ``"auto"`` (bf16 on GPU, fp32 on CPU).
        max_length: prompt length limit in tokens; longer documents are cut, never the template.
        instruction: default instruction (the Qwen3-Reranker web-search one when None).
        model, tokenizer: pass already-loaded objects instead of loading from the path.
        quantize: ``"int8"`` for dynamic int8 quantisation of the linear layers (CPU; see models.quantize).
        shared_prefix: encode each query's prompt head once for all its documents (exact); falls
            back to one row per document for models it does not support.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        device: str | None = None,
        dtype: str | None = "auto",
        max_length: int = 1024,
        instruction: str | None = None,
        model: Any = None,
        tokenizer: Any = None,
        attn_implementation: str | None = None,
        quantize: str | None = None,
        shared_prefix: bool = True,
    ) -> None:
        from rerankctl.data.prompt import PromptTokenizer
        from rerankctl.models.loading import load_causal_lm, load_tokenizer, pick_device, pick_dtype

        if model is None and model_name_or_path is None:
            raise ValueError("give model_name_or_path or model")
        self.name = str(model_name_or_path or getattr(model, "name_or_path", "model"))
        self.device = pick_device(device) if model is None else str(next(model.parameters()).device)
        if model is None:
            model = load_causal_lm(
                model_name_or_path,
                dtype=pick_dtype(dtype, self.device),
                device=self.device,
                attn_implementation=attn_implementation,
            )
        if tokenizer is None:
            tokenizer = load_tokenizer(model_name_or_path or model.name_or_path)
        self.model = model.eval()
        if quantize == "int8":
            from rerankctl.models.quantize import check_quantize, quantize_int8

            check_quantize(quantize, self.device)
            self.model = quantize_int8(self.model)
        self.tokenizer = tokenizer
        self.instruction = instruction
        self.prompt = PromptTokenizer(tokenizer, max_length=max_length)
        self.shared_prefix = False
        if shared_prefix:
            from rerankctl.models.shared_prefix import enable_shared_prefix

            self.shared_prefix = enable_shared_prefix(self.model)

    @property
    def max_length(self) -> int:
        return self.prompt.max_length

    def encode(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[list[int]]:
        ids, _ = self.prompt.encode_pairs(queries, docs, instruction or self.instruction)
        return ids

    def count_tokens(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[int]:
        return [len(x) for x in self.encode(queries, docs, instruction)]

    def score_ids(
        self, sequences: Sequence[Sequence[int]], batch_size: int = 32, normalize: bool = True
    ) -> list[float]:
        """Score already-encoded prompts, ``batch_size`` at a time.

        Shared-prefix: rows grouped by query, each group's head encoded once per batch.
        Otherwise batches are formed in length order.
        """
        import torch

        from rerankctl.models.scoring import yes_no_scores
        from rerankctl.models.shared_prefix import head_groups, shared_prefix_scores

        if self.shared_prefix:
            order, groups = head_groups(sequences, self.prompt.doc_marker_ids)
        else:
            order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out = [0.0] * len(sequences)
        yes_no = (self.prompt.yes_id, self.prompt.no_id)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.prompt.pad([sequences[i] for i in rows])
                ids, attn = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
                if self.shared_prefix:
                    gids = groups[start : start + batch_size]
                    scores = shared_prefix_scores(self.model, ids, attn, gids, yes_no=yes_no)
                else:
                    scores = yes_no_scores(self.model, ids, attn, *yes_no)
                if normalize:
                    scores = torch.sigmoid(scores)
                for i, value in zip(rows, scores.float().cpu().tolist()):
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

    def rerank(
        self,
        query: str,
        docs: Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
    ) -> tuple[list[int], list[float]]:
        """``(ranking, scores)``: document indices best first, and each document's score (input order).

        Ties keep input order (a stable sort), so rankings are deterministic.
        """
        scores = self.score_pairs([query] * len(docs), docs, instruction, batch_size, normalize)
        ranking = sorted(range(len(docs)), key=lambda i: -scores[i])
        return ranking, scores
