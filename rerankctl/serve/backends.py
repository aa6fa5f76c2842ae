"""Scoring backends: what the server (and the evaluator) call to score (query, document) pairs.

A backend is anything with ``name``, ``max_length``, ``count_tokens`` and ``score_pairs``
(:class:`ScoringBackend`). :class:`rerankctl.models.reranker.Qwen3Reranker` is one as it
stands; :class:`rerankctl.serve.seqcls.SeqClsBackend` serves exported
``Qwen3ForSequenceClassification`` directories and sentence-transformers CrossEncoders;
:class:`rerankctl.serve.vllm_backend.VLLMBackend` hands the model to vLLM; and
:class:`NoOpBackend` answers instantly so the HTTP layer can be measured on its own.

Backends that can also tokenize ahead of scoring (:class:`TokenScoringBackend`: ``encode`` and
``score_ids``) let the server tokenize each request once, off the scoring thread.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rerankctl.errors import NotFoundError, UsageError

BACKENDS = ("torch", "vllm", "noop")

# Model kinds that `detect_model_kind` tells apart.
KIND_YES_NO = "yes-no"  # a causal LM (or PEFT adapter) scored by sigmoid(logit_yes - logit_no)
KIND_QWEN3_SEQ_CLS = "qwen3-seq-cls"  # exported Qwen3ForSequenceClassification: the same prompt, one logit
KIND_CROSS_ENCODER = "cross-encoder"  # a BERT-style (query, doc) pair classifier (sentence-transformers)


@runtime_checkable
class ScoringBackend(Protocol):
    """Scores (query, document) pairs; the server and the evaluator need nothing else."""

    name: str
    max_length: int

    def count_tokens(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[int]: ...

    def score_pairs(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
    ) -> list[float]: ...


@runtime_checkable
class TokenScoringBackend(ScoringBackend, Protocol):
    """A backend that can tokenize and score separately (each pair is tokenized once)."""

    def encode(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[Any]: ...

    def score_ids(self, sequences: Sequence[Any], batch_size: int = 32) -> list[float]: ...


class NoOpBackend:
    """A backend that does no model work: for benchmarks and tests of the HTTP layer.

    Scores are a deterministic hash of (instruction, query, document) mapped into [0, 1), so
    clients can check that results come back to the right document. Token counts are
    whitespace word counts of query and document. ``delay_s`` sleeps once per
    ``score_pairs`` call (a stand-in for model time in shutdown and back-pressure tests).
    """

    def __init__(self, name: str = "noop", max_length: int = 1024, delay_s: float = 0.0) -> None:
        self.name = name
        self.max_length = max_length
        self.delay_s = delay_s

    @staticmethod
    def expected_score(query: str, doc: str, instruction: str | None = None) -> float:
        """The score this backend gives a pair (clients use it to check their mapping)."""
        key = f"{instruction or ''}\x00{query}\x00{doc}".encode()
        return zlib.crc32(key) / 2**32

    def count_tokens(
        self, queries: Sequence[str], docs: Sequence[str], instruction: str | None = None
    ) -> list[int]:
        return [len(q.split()) + len(d.split()) for q, d in zip(queries, docs, strict=True)]

    def score_pairs(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
    ) -> list[float]:
        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} documents")
        if self.delay_s:
            time.sleep(self.delay_s)
        return [self.expected_score(q, d, instruction) for q, d in zip(queries, docs, strict=True)]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})", hint="is the model directory complete?") from exc


def detect_model_kind(model_path: str | Path) -> str:
    """Tell a yes/no causal LM, an exported Qwen3 seq-cls model and a CrossEncoder apart.

    Looks at ``adapter_config.json`` (a PEFT adapter: yes/no), then ``config.json``'s
    ``architectures`` (``*ForCausalLM``: yes/no; ``*ForSequenceClassification``: Qwen-family
    models get the Qwen3-Reranker prompt, others are pair classifiers), then the
    sentence-transformers files (``config_sentence_transformers.json``,
    ``sentence_bert_config.json``) for a config without ``architectures``.
    """
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise NotFoundError(
            f"{model_path}: no such model directory", hint="give --model a local model directory"
        )
    if (path / "adapter_config.json").is_file():
        return KIND_YES_NO
    if not (path / "config.json").is_file():
        raise NotFoundError(
            f"{model_path}: not a model directory (no config.json)",
            hint="point --model at a Hugging Face model directory or a run's final/ folder",
        )
    config = _read_json(path / "config.json")
    architectures = config.get("architectures") or []
    model_type = str(config.get("model_type", ""))
    for arch in architectures:
        if arch.endswith("ForCausalLM"):
            return KIND_YES_NO
        if arch.endswith("ForSequenceClassification"):
            _check_single_label(path, config)
            if model_type.startswith("qwen") or arch.startswith("Qwen"):
                return KIND_QWEN3_SEQ_CLS
            return KIND_CROSS_ENCODER
    if (path / "config_sentence_transformers.json").is_file() or (
        path / "sentence_bert_config.json"
    ).is_file():
        _check_single_label(path, config)
        return KIND_CROSS_ENCODER
    raise UsageError(
        f"{model_path}: cannot tell what kind of model this is (config.json architectures: {architectures or 'none'})",
        hint="serve a causal LM reranker, an exported *ForSequenceClassification model or a CrossEncoder directory",
    )


def _check_single_label(path: Path, config: dict[str, Any]) -> None:
    labels = config.get("num_labels") or len(config.get("id2label") or {0: ""})
    if labels != 1:
        raise UsageError(
            f"{path}: a sequence-classification model with {labels} labels; a reranker has exactly one score",
            hint="export the reranker with `rerankctl export --to seq-cls` (one score row)",
        )


def load_backend(
    model_path: str | Path,
    backend: str = "torch",
    device: str | None = None,
    dtype: str | None = "auto",
    max_length: int = 1024,
    instruction: str | None = None,
    quantize: str | None = None,
    shared_prefix: bool = True,
) -> ScoringBackend:
    """Load the right backend for ``model_path``.

    Args:
        model_path: a model directory (causal LM, PEFT adapter, seq-cls export, CrossEncoder).
        backend: ``"torch"`` (in-process), ``"vllm"`` (vLLM on a GPU) or ``"noop"`` (no model; ``model_path``
            only names it).
        device, dtype: where and in what precision to run (torch backend).
        max_length: prompt length limit in tokens.
        instruction: default instruction for requests that give none.
        shared_prefix: the causal-LM backend encodes each query's prompt head once per batch
            (one request = one query; exact, see :mod:`rerankctl.models.shared_prefix`).

    Raises:
        UsageError: unknown backend or an unservable model. NotFoundError: no such directory.
        DependencyError: ``backend="vllm"`` without vLLM or a GPU.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}", hint=f"use one of: {', '.join(BACKENDS)}")
    if backend == "noop":
        return NoOpBackend(name=str(model_path), max_length=max_length)
    kind = detect_model_kind(model_path)
    if backend == "vllm":
        from rerankctl.serve.vllm_backend import VLLMBackend

        return VLLMBackend(
            str(model_path), kind=kind, dtype=dtype, max_length=max_length, instruction=instruction
        )
    if kind == KIND_YES_NO:
        from rerankctl.models.reranker import Qwen3Reranker

        return Qwen3Reranker(
            str(model_path), device="cpu" if quantize else device, dtype=dtype, max_length=max_length,
            instruction=instruction, quantize=quantize, shared_prefix=shared_prefix,
        )  # fmt: skip
    from rerankctl.serve.seqcls import SeqClsBackend

    return SeqClsBackend(
        str(model_path), kind=kind, device=device, dtype=dtype, max_length=max_length, instruction=instruction
    )
