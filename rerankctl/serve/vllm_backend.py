"""`VLLMBackend`: hand the model to vLLM's scoring runner (a GPU and ``pip install vllm`` needed).

An original Qwen3-Reranker causal LM is loaded the way vLLM documents for it: as a
``Qwen3ForSequenceClassification`` whose one score row vLLM builds from the "no"/"yes" rows of
the LM head::

    hf_overrides={"architectures": ["Qwen3ForSequenceClassification"],
                  "classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": True}

An exported seq-cls directory needs no overrides. Either way rerankctl tokenizes each pair
itself with :class:`rerankctl.data.prompt.PromptTokenizer` (the document is cut first; prefix,
instruction and suffix always survive) and sends the token ids through ``LLM.classify`` as
``{"prompt_token_ids": [...]}`` prompts: vLLM sees exactly the tokens rerankctl's own scorer
scores. vLLM's ``truncate_prompt_tokens`` is never used for Qwen3 prompts: it keeps the *last*
tokens, which cuts the system prefix and the instruction. For one label vLLM's classify pooler
applies a sigmoid, so ``outputs.probs[0]`` is rerankctl's score. CrossEncoders get their plain
(query, document) texts through ``LLM.score``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from typing import Any

from rerankctl.data.prompt import DEFAULT_INSTRUCTION, PREFIX, SUFFIX
from rerankctl.errors import DependencyError
from rerankctl.serve.backends import KIND_CROSS_ENCODER, KIND_YES_NO

QWEN3_RERANKER_OVERRIDES = {
    "architectures": ["Qwen3ForSequenceClassification"],
    "classifier_from_token": ["no", "yes"],
    "is_original_qwen3_reranker": True,
}


def vllm_missing() -> list[str]:
    """What stops ``--backend vllm`` here (empty when vLLM and a CUDA GPU are both present)."""
    missing = []
    if importlib.util.find_spec("vllm") is None:
        missing.append("vLLM is not installed (pip install 'rerankctl[vllm]')")
    try:
        import torch

        if not torch.cuda.is_available():
            missing.append("no CUDA GPU is visible (torch.cuda.is_available() is False)")
    except ImportError:  # pragma: no cover - torch is a hard dependency
        missing.append("torch is not installed")
    return missing


def split_prompt(query: str, doc: str, instruction: str | None = None) -> tuple[str, str]:
    """The (query text, document text) halves vLLM scores; joined they equal ``format_full``."""
    first = f"{PREFIX}<Instruct>: {instruction or DEFAULT_INSTRUCTION}\n<Query>: {query}\n"
    second = f"<Document>: {doc}{SUFFIX}"
    return first, second


def llm_kwargs(
    model_path: str, kind: str, dtype: str | None, max_length: int, engine_fields: set[str]
) -> dict:
    """Arguments for ``vllm.LLM``: the pooling/score runner, overrides for original Qwen3 rerankers.

    ``engine_fields`` are the fields of vLLM's ``EngineArgs``: vLLM >= 0.10 selects the scorer with
    ``runner="pooling"``, earlier versions with ``task="score"``.
    """
    kwargs: dict[str, Any] = {"model": model_path, "max_model_len": max_length}
    if "runner" in engine_fields:
        kwargs["runner"] = "pooling"
    else:
        kwargs["task"] = "score"
    if dtype and dtype != "auto":
        kwargs["dtype"] = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype)
    if kind == KIND_YES_NO:
        kwargs["hf_overrides"] = dict(QWEN3_RERANKER_OVERRIDES)
    return kwargs


class VLLMBackend:
    """Scores pairs with ``vllm.LLM.score``; vLLM does its own batching on the GPU.

    Raises:
        DependencyError: naming exactly what is missing (vLLM, a GPU, or both).
    """

    def __init__(
        self,
        model_path: str,
        kind: str,
        dtype: str | None = "auto",
        max_length: int = 1024,
        instruction: str | None = None,
        **extra: Any,
    ) -> None:
        missing = vllm_missing()
        if missing:
            raise DependencyError(
                "--backend vllm cannot start: " + "; ".join(missing),
                hint="use --backend torch, or run on a machine with a CUDA GPU and vLLM installed",
            )
        import vllm
        from vllm.engine.arg_utils import EngineArgs

        fields = {f.name for f in dataclasses.fields(EngineArgs)}
        self.name = model_path
        self.kind = kind
        self.max_length = max_length
        self.instruction = instruction
        self.llm = vllm.LLM(**llm_kwargs(model_path, kind, dtype, max_length, fields), **extra)
        self.tokenizer = self.llm.get_tokenizer()
        self.prompt = None
        if kind != KIND_CROSS_ENCODER:
            from rerankctl.data.prompt import PromptTokenizer

            self.prompt = PromptTokenizer(self.tokenizer, max_length=max_length)

    def encode(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[Any]:
        """Per pair: prompt token ids truncated as rerankctl truncates (Qwen3 prompts), or the
        (query, document) texts of a CrossEncoder (``len()`` = its token count)."""
        if self.prompt is None:
            counts = self.count_tokens(queries, docs, instruction)
            return [_TextPair(q, d, n) for q, d, n in zip(queries, docs, counts, strict=True)]
        ids, _ = self.prompt.encode_pairs(queries, docs, instruction or self.instruction)
        return ids

    def score_ids(self, sequences: Sequence[Sequence[int]], batch_size: int = 32) -> list[float]:
        """Scores of already tokenized prompts (``encode``), through ``LLM.classify``."""
        if not sequences:
            return []
        if isinstance(sequences[0], _TextPair):
            return self.score_pairs([p.query for p in sequences], [p.doc for p in sequences])
        prompts = [{"prompt_token_ids": list(ids)} for ids in sequences]
        outputs = self.llm.classify(prompts, use_tqdm=False)
        return [float(o.outputs.probs[0]) for o in outputs]

    def _texts(self, queries: Sequence[str], docs: Sequence[str], instruction: str | None):
        if self.kind == KIND_CROSS_ENCODER:
            return list(queries), list(docs)
        halves = [
            split_prompt(q, d, instruction or self.instruction) for q, d in zip(queries, docs, strict=True)
        ]
        return [h[0] for h in halves], [h[1] for h in halves]

    def count_tokens(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[int]:
        if self.prompt is not None:
            return [len(x) for x in self.encode(queries, docs, instruction)]
        firsts, seconds = self._texts(queries, docs, instruction)
        counts = []
        for a, b in zip(firsts, seconds, strict=True):
            n = len(self.tokenizer.encode(a, add_special_tokens=False)) + len(
                self.tokenizer.encode(b, add_special_tokens=False)
            )
            counts.append(min(n, self.max_length))
        return counts

    def score_pairs(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
    ) -> list[float]:
        if not queries:
            return []
        if self.prompt is not None:
            return self.score_ids(self.encode(queries, docs, instruction), batch_size=batch_size)
        # A CrossEncoder has no prefix to lose; its tokenizer's pair truncation stays vLLM's.
        firsts, seconds = self._texts(queries, docs, instruction)
        outputs = self.llm.score(firsts, seconds, truncate_prompt_tokens=self.max_length, use_tqdm=False)
        return [float(o.outputs.score) for o in outputs]


class _TextPair:
    """A CrossEncoder pair as the batcher holds it: the texts, ``len()`` = prompt tokens."""

    __slots__ = ("doc", "n", "query")

    def __init__(self, query: str, doc: str, n: int) -> None:
        self.query, self.doc, self.n = query, doc, n

    def __len__(self) -> int:
        return self.n
