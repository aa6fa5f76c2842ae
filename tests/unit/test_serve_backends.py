"""Scoring backends: kind detection, seq-cls and CrossEncoder parity, the vLLM launcher, NoOp."""

from __future__ import annotations

import json
import sys
import types

import pytest

from rerankctl.data.prompt import PromptTokenizer, format_full
from rerankctl.errors import DependencyError, NotFoundError, UsageError
from rerankctl.serve import vllm_backend
from rerankctl.serve.backends import (
    KIND_CROSS_ENCODER,
    KIND_QWEN3_SEQ_CLS,
    KIND_YES_NO,
    NoOpBackend,
    ScoringBackend,
    TokenScoringBackend,
    detect_model_kind,
    load_backend,
)

QUERIES = ["what is bm25", "what is bm25", "neural ranking", "neural ranking"]
DOCS = [
    "BM25 is a ranking function used by search engines.",
    "Paris is in France.",
    "Cross-encoders score query and document together.",
    "a " * 300,
]


@pytest.fixture(scope="module")
def yes_no(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    return Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=128)


@pytest.fixture(scope="module")
def qwen3_seq_cls_dir(tiny_qwen3_path, tmp_path_factory):
    """What `export --to seq-cls` writes: the decoder and one score row W_yes - W_no."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Qwen3ForSequenceClassification

    lm = AutoModelForCausalLM.from_pretrained(str(tiny_qwen3_path), dtype=torch.float32)
    config = AutoConfig.from_pretrained(str(tiny_qwen3_path))
    config.num_labels = 1
    config.architectures = ["Qwen3ForSequenceClassification"]
    model = Qwen3ForSequenceClassification(config)
    model.model.load_state_dict(lm.model.state_dict())
    with torch.no_grad():
        model.score.weight.copy_((lm.lm_head.weight[9693] - lm.lm_head.weight[2152])[None, :])
    out = tmp_path_factory.mktemp("seqcls") / "qwen3-seq-cls"
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tiny_qwen3_path)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory):
    """A tiny BERT CrossEncoder saved by sentence-transformers itself."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    root = tmp_path_factory.mktemp("ce")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789.,-"]
    (root / "vocab.txt").write_text("\n".join(vocab))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        max_position_embeddings=512,
    )
    BertForSequenceClassification(config).save_pretrained(str(root / "bert"))
    BertTokenizerFast(str(root / "vocab.txt")).save_pretrained(str(root / "bert"))
    ce = CrossEncoder(str(root / "bert"), device="cpu")
    ce.save(str(root / "ce"))
    return root / "ce", ce


def test_detect_model_kind(tiny_qwen3_path, qwen3_seq_cls_dir, cross_encoder_dir, tmp_path):
    assert detect_model_kind(tiny_qwen3_path) == KIND_YES_NO
    assert detect_model_kind(qwen3_seq_cls_dir) == KIND_QWEN3_SEQ_CLS
    assert detect_model_kind(cross_encoder_dir[0]) == KIND_CROSS_ENCODER
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tiny_qwen3_path)})
    )
    assert detect_model_kind(adapter) == KIND_YES_NO
    with pytest.raises(NotFoundError, match="no such model directory"):
        detect_model_kind(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotFoundError, match="no config.json"):
        detect_model_kind(empty)
    two = tmp_path / "two-labels"
    two.mkdir()
    (two / "config.json").write_text(
        json.dumps({"architectures": ["BertForSequenceClassification"], "num_labels": 2})
    )
    with pytest.raises(UsageError, match="2 labels"):
        detect_model_kind(two)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(UsageError, match="cannot tell"):
        detect_model_kind(odd)
    with pytest.raises(UsageError, match="unknown backend"):
        load_backend(tiny_qwen3_path, backend="tensorrt")


def test_exported_qwen3_seq_cls_scores_equal_the_yes_no_scorer(qwen3_seq_cls_dir, yes_no):
    from rerankctl.serve.seqcls import SeqClsBackend

    backend = load_backend(qwen3_seq_cls_dir, device="cpu", max_length=128)
    assert isinstance(backend, SeqClsBackend) and backend.kind == KIND_QWEN3_SEQ_CLS
    expected = yes_no.score_pairs(QUERIES, DOCS)  # the last document is truncated at 128 tokens
    got = backend.score_pairs(QUERIES, DOCS, batch_size=3)
    assert got == pytest.approx(expected, abs=1e-5)
    assert backend.count_tokens(QUERIES, DOCS) == yes_no.count_tokens(QUERIES, DOCS)
    assert backend.count_tokens(QUERIES, DOCS)[3] == 128
    # Same prompt text: the ids are those of tokenizing format_full as one string.
    ids = backend.encode(QUERIES[:1], DOCS[:1])[0]
    assert ids == backend.tokenizer.encode(format_full(QUERIES[0], DOCS[0]), add_special_tokens=False)
    with_instruction = backend.score_pairs(QUERIES, DOCS, instruction="Find code")
    assert with_instruction == pytest.approx(
        yes_no.score_pairs(QUERIES, DOCS, instruction="Find code"), abs=1e-5
    )


def test_cross_encoder_scores_equal_sentence_transformers(cross_encoder_dir):
    path, ce = cross_encoder_dir
    backend = load_backend(path, device="cpu", max_length=512)
    assert backend.kind == KIND_CROSS_ENCODER and backend.activation == "Sigmoid"
    queries, docs = QUERIES[:3], DOCS[:3]
    expected = ce.predict(list(zip(queries, docs)))
    got = backend.score_pairs(queries, docs, batch_size=2)
    assert got == pytest.approx([float(x) for x in expected], abs=1e-5)
    assert all(0.0 < s < 1.0 for s in got)
    tokens = backend.count_tokens(queries, docs)
    assert tokens == [len(ce.tokenizer(q, d)["input_ids"]) for q, d in zip(queries, docs)]


def test_cross_encoder_activation_is_read_from_its_config(cross_encoder_dir, tmp_path):
    import shutil

    from rerankctl.serve.seqcls import crossencoder_activation

    copy = tmp_path / "ce"
    shutil.copytree(cross_encoder_dir[0], copy)
    st = json.loads((copy / "config_sentence_transformers.json").read_text())
    st["activation_fn"] = "torch.nn.modules.linear.Identity"
    (copy / "config_sentence_transformers.json").write_text(json.dumps(st))
    assert crossencoder_activation(copy) == "Identity"
    raw = load_backend(copy, device="cpu").score_pairs(QUERIES[:2], DOCS[:2])
    probs = load_backend(cross_encoder_dir[0], device="cpu").score_pairs(QUERIES[:2], DOCS[:2])
    import math

    assert [1 / (1 + math.exp(-x)) for x in raw] == pytest.approx(probs, abs=1e-6)
    st["activation_fn"] = "my.module.Softplus"
    (copy / "config_sentence_transformers.json").write_text(json.dumps(st))
    with pytest.raises(UsageError, match="not supported"):
        crossencoder_activation(copy)


def test_backends_satisfy_the_protocol(yes_no):
    assert isinstance(yes_no, TokenScoringBackend)
    noop = NoOpBackend()
    assert isinstance(noop, ScoringBackend) and not isinstance(noop, TokenScoringBackend)


def test_noop_backend_is_deterministic_and_counts_words():
    noop = NoOpBackend(max_length=77)
    scores = noop.score_pairs(["q", "q"], ["one two", "three"], instruction="i")
    assert scores == [
        NoOpBackend.expected_score("q", "one two", "i"),
        NoOpBackend.expected_score("q", "three", "i"),
    ]
    assert scores[0] != scores[1] and all(0 <= s < 1 for s in scores)
    assert noop.count_tokens(["a b", "c"], ["d e f", ""]) == [5, 1]
    assert load_backend("whatever", backend="noop", max_length=64).max_length == 64


def test_vllm_backend_says_exactly_what_is_missing(tiny_qwen3_path, monkeypatch):
    missing = vllm_backend.vllm_missing()
    import importlib.util

    import torch

    assert ("vLLM is not installed" in " ".join(missing)) == (importlib.util.find_spec("vllm") is None)
    assert ("no CUDA GPU" in " ".join(missing)) == (not torch.cuda.is_available())
    monkeypatch.setattr(
        vllm_backend, "vllm_missing", lambda: ["vLLM is not installed (pip install 'rerankctl[vllm]')"]
    )
    with pytest.raises(DependencyError, match=r"--backend vllm cannot start: vLLM is not installed"):
        load_backend(tiny_qwen3_path, backend="vllm")


def test_vllm_prompt_halves_join_to_the_reranker_prompt():
    first, second = vllm_backend.split_prompt("what is bm25", "BM25 is ...", "Find it")
    assert first + second == format_full("what is bm25", "BM25 is ...", "Find it")
    assert first.endswith("<Query>: what is bm25\n") and second.startswith("<Document>: ")


def test_vllm_backend_launches_vllm_with_qwen3_reranker_settings(tiny_qwen3_path, monkeypatch):
    """vLLM is not installable here (no GPU, no wheel for this machine); a stand-in with the
    signatures of vLLM's ``LLM.classify`` (prompts as ``{"prompt_token_ids": [...]}``, results with
    ``.outputs.probs``) records what rerankctl asks of it."""
    import dataclasses

    calls = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def get_tokenizer(self):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(tiny_qwen3_path))

        def score(self, firsts, seconds, **kwargs):
            calls["score"] = (firsts, seconds, kwargs)
            out = types.SimpleNamespace
            return [out(outputs=out(score=0.25 * i)) for i in range(len(firsts))]

        def classify(self, prompts, use_tqdm=True):
            calls["classify"] = prompts
            out = types.SimpleNamespace
            assert all(set(p) == {"prompt_token_ids"} for p in prompts)
            return [out(outputs=out(probs=[0.25 * i])) for i in range(len(prompts))]

    @dataclasses.dataclass
    class EngineArgs:
        model: str = ""
        runner: str = "auto"

    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM
    arg_utils = types.ModuleType("vllm.engine.arg_utils")
    arg_utils.EngineArgs = EngineArgs
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.engine", types.ModuleType("vllm.engine"))
    monkeypatch.setitem(sys.modules, "vllm.engine.arg_utils", arg_utils)
    monkeypatch.setattr(vllm_backend, "vllm_missing", lambda: [])
    backend = load_backend(tiny_qwen3_path, backend="vllm", dtype="bf16", max_length=512)
    assert calls["init"] == {
        "model": str(tiny_qwen3_path),
        "max_model_len": 512,
        "runner": "pooling",
        "dtype": "bfloat16",
        "hf_overrides": {
            "architectures": ["Qwen3ForSequenceClassification"],
            "classifier_from_token": ["no", "yes"],
            "is_original_qwen3_reranker": True,
        },
    }
    assert backend.score_pairs(["q", "q"], ["d0", "d1"]) == [0.0, 0.25]
    assert "score" not in calls  # no text pairs, no truncate_prompt_tokens for Qwen3 prompts
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_qwen3_path))
    sent = [p["prompt_token_ids"] for p in calls["classify"]]
    assert sent == [tokenizer.encode(format_full("q", d), add_special_tokens=False) for d in ("d0", "d1")]
    # A document far past max_length: the document is cut, the prefix and suffix are kept.
    backend.score_pairs(["q"], ["word " * 2000], instruction="Find it")
    (ids,) = [p["prompt_token_ids"] for p in calls["classify"]]
    prompt = PromptTokenizer(tokenizer, max_length=512)
    assert len(ids) == 512 and ids == prompt.encode_pairs(["q"], ["word " * 2000], "Find it")[0][0]
    assert (
        ids[: len(prompt.prefix_ids)] == prompt.prefix_ids
        and ids[-len(prompt.suffix_ids) :] == prompt.suffix_ids
    )
    assert "<Instruct>: Find it" in tokenizer.decode(ids)
    assert backend.count_tokens(["q"], ["word " * 2000]) == [512]
    older = vllm_backend.llm_kwargs("m", KIND_QWEN3_SEQ_CLS, "auto", 256, {"model", "task"})
    assert older == {"model": "m", "max_model_len": 256, "task": "score"}  # seq-cls exports need no overrides
