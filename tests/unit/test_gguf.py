"""`--model FILE.gguf` and `rerankctl export --from-gguf` on a tiny GGUF this test writes itself.

The file is written the way llama.cpp's converter writes a Llama model (q/k rows permuted for its
RoPE layout, a byte-level BPE tokenizer in the metadata), so loading it exercises transformers'
real GGUF reader, dequantisation and tokenizer rebuild; the reranker must score exactly like the
source model it came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = ["yes", "no", "Ġno", "the", "Ġthe"]


def _byte_vocab() -> list[str]:
    """GPT-2's byte-to-unicode map (printable bytes as themselves, the rest shifted past 255)."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    out, n = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + n))
            n += 1
    return out


def _tokens_and_merges() -> tuple[list[str], list[str]]:
    tokens = SPECIAL + _byte_vocab()
    merges = ["y e", "ye s", "n o", "Ġ no", "t h", "th e", "Ġ the"]
    tokens += ["ye", "no", "Ġno", "th", "the", "Ġthe", "yes"]
    return list(dict.fromkeys(tokens)), merges


def _permute(w, n_head: int):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_llama_gguf(directory: Path):
    """A random 2-layer Llama in HF form plus the same weights as ``tiny.gguf`` (F32)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokens, merges = _tokens_and_merges()
    cfg = LlamaConfig(
        vocab_size=len(tokens), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    path = directory / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(512)
    w.add_embedding_length(32)
    w.add_block_count(2)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    names = {
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    }  # fmt: skip
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(2):
        for hf, gg in names.items():
            t = sd[f"model.layers.{i}.{hf}.weight"]
            if gg == "attn_q":
                t = _permute(t, 4)
            elif gg == "attn_k":
                t = _permute(t, 2)
            w.add_tensor(f"blk.{i}.{gg}.weight", t)
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model, path


def test_gguf_loads_and_scores_like_its_source(tmp_path: Path) -> None:
    from rerankctl.models.loading import import_gguf, load_causal_lm, load_tokenizer
    from rerankctl.models.reranker import Qwen3Reranker as Reranker

    source, path = write_tiny_llama_gguf(tmp_path)
    tokenizer = load_tokenizer(path)
    assert tokenizer.encode("yes", add_special_tokens=False) == [tokenizer.convert_tokens_to_ids("yes")]
    loaded = load_causal_lm(path, dtype=torch.float32)
    for k, v in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k  # q/k un-permuted exactly, F32 unchanged

    docs = ["the yes", "no the no", "yes yes the"]
    ids = torch.tensor([tokenizer.encode("the no yes", add_special_tokens=False)])
    assert torch.equal(loaded(ids).logits, source(ids).logits)
    from_file = Reranker(str(path), max_length=512).score_pairs(["the query"] * 3, docs)
    from_source = Reranker(model=source, tokenizer=tokenizer, max_length=512).score_pairs(
        ["the query"] * 3, docs
    )
    assert from_file == pytest.approx(from_source, abs=1e-6)
    assert len(set(from_file)) == 3  # a real ranking, not a constant

    out = import_gguf(path, tmp_path / "hf")
    assert (out / "config.json").is_file() and not (tmp_path / "hf.tmp").exists()
    imported = Reranker(str(out), max_length=512).score_pairs(["the query"] * 3, docs)
    assert imported == pytest.approx(from_source, abs=1e-6)


def test_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    from rerankctl.errors import NotFoundError
    from rerankctl.models.loading import load_causal_lm

    with pytest.raises(NotFoundError, match="no such GGUF file"):
        load_causal_lm(tmp_path / "absent.gguf")


def test_export_from_gguf_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    _, path = write_tiny_llama_gguf(tmp_path)
    cmd = [sys.executable, "-m", "rerankctl", "export"]
    ok = subprocess.run(
        [*cmd, "--from-gguf", str(path), "-o", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "model.safetensors").is_file()
    bad = subprocess.run(
        [*cmd, "--from-gguf", str(tmp_path / "x.bin"), "-o", str(tmp_path / "o2")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a .gguf file" in bad.stderr
    assert not (tmp_path / "o2").exists()
