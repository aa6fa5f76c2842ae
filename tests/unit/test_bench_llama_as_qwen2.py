"""bench/real/llama_as_qwen2.py: a Llama checkpoint rewritten as Qwen2 (zero q/k/v biases) is the same model.

The real-weights benchmark relies on it to score SmolLM2 (Llama) through the shared-prefix path,
which is verified for qwen2/qwen3 only; if the rewrite changed the function, every figure would.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "real" / "llama_as_qwen2.py"


def _script():
    spec = importlib.util.spec_from_file_location("llama_as_qwen2", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tiny_llama(path: Path, tie: bool):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=tie, rms_norm_eps=1e-5,
        rope_theta=10000.0,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).eval()
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("tie", [True, False])
def test_converted_qwen2_has_the_same_logits_and_gets_shared_prefix(tmp_path: Path, tie: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from rerankctl.models.shared_prefix import supports_shared_prefix

    llama = _tiny_llama(tmp_path / "llama", tie)
    _script().convert(tmp_path / "llama", tmp_path / "qwen2")
    qwen2 = AutoModelForCausalLM.from_pretrained(tmp_path / "qwen2", dtype=torch.float32).eval()
    assert type(qwen2).__name__ == "Qwen2ForCausalLM"
    assert qwen2.config.tie_word_embeddings == tie
    # The biases exist (Qwen2 always has them) and are exactly zero.
    attn = qwen2.model.layers[1].self_attn
    assert attn.q_proj.bias is not None and float(attn.q_proj.bias.detach().abs().max()) == 0.0
    ids = torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding in one row
    with torch.no_grad():
        a = llama(input_ids=ids, attention_mask=mask).logits
        b = qwen2(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    assert torch.allclose(a[keep], b[keep], atol=1e-5), (a[keep] - b[keep]).abs().max()
    assert supports_shared_prefix(llama) is not None  # why the rewrite exists
    assert supports_shared_prefix(qwen2) is None


def test_refuses_a_non_llama_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text('{"model_type": "qwen3"}')
    with pytest.raises(SystemExit, match="expected 'llama'"):
        _script().convert(tmp_path / "src", tmp_path / "out")
