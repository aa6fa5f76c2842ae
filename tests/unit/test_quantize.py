"""--quantize int8: which layers become int8, that scores stay close, and the refusals."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

PAIRS = [
    ("red chair", "a red wooden chair"),
    ("red chair", "blue table"),
    ("q", "x " * 30),
    ("数字", "一二三"),
]


def test_int8_quantises_linears_but_keeps_head_and_down_proj(tiny_qwen3_path) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    from rerankctl.models.reranker import Qwen3Reranker

    fp32 = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=256)
    int8 = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=256, quantize="int8")
    kinds = {name: type(m) for name, m in int8.model.named_modules()}
    assert kinds["model.layers.0.self_attn.q_proj"] is QLinear
    assert kinds["model.layers.1.mlp.up_proj"] is QLinear
    assert kinds["model.layers.0.mlp.down_proj"] is torch.nn.Linear  # outlier-heavy input: fp32
    assert kinds["lm_head"] is torch.nn.Linear  # the yes/no rows are read directly
    a = fp32.score_pairs([q for q, _ in PAIRS], [d for _, d in PAIRS])
    b = int8.score_pairs([q for q, _ in PAIRS], [d for _, d in PAIRS])
    assert a != b  # it really is a different (quantised) computation ...
    assert (
        max(abs(x - y) for x, y in zip(a, b)) < 0.06
    )  # ... close to fp32 probabilities (0.03 on this random tiny model)


def test_quantize_refusals() -> None:
    from rerankctl.errors import UsageError
    from rerankctl.models.quantize import check_quantize

    assert check_quantize("none") is None and check_quantize("int8", "cpu") == "int8"
    with pytest.raises(UsageError, match="unknown mode"):
        check_quantize("int4")
    with pytest.raises(UsageError, match="CPU only"):
        check_quantize("int8", "cuda:0")
