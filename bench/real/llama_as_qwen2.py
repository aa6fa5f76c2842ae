"""Rewrite a Llama checkpoint (SmolLM2) as an identical Qwen2 one, so shared-prefix scoring applies.

rerankctl's shared-prefix path (a query's prompt head encoded once for all its documents;
rerankctl/models/shared_prefix.py) is verified for ``qwen2``/``qwen3`` only: transformers'
Llama forward builds its own mask from the packed layout and crashes. Qwen2's decoder *is*
Llama's (RMSNorm, RoPE, GQA, SiLU gate/up/down MLP, tied embeddings allowed) plus a bias on
q/k/v. With those biases set to zero the Qwen2 model computes the same function as the Llama
one, and this script checks it: the logits of both on real prompts must agree to fp32 noise
(``--check``). Why bother: in a WordNet prompt 80 of ~97 tokens are template + query, shared by
the 20 candidates of one query, so scoring and training cost ~3-4x fewer tokens.

    python bench/real/llama_as_qwen2.py SRC_DIR OUT_DIR [--check]

In training the (zero-initialised) q/k/v biases are ordinary parameters: full fine-tuning
trains them (a superset of the Llama model's function class); LoRA leaves them at zero.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def convert(src: Path, out: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model_type") != "llama":
        raise SystemExit(f"{src}/config.json: model_type {cfg.get('model_type')!r}, expected 'llama'")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        raise SystemExit(f"{src}/config.json: attention_bias/mlp_bias set; Qwen2 has no o_proj/MLP bias")
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    if head_dim * cfg["num_attention_heads"] != cfg["hidden_size"]:
        raise SystemExit("head_dim * heads != hidden_size: Qwen2 derives head_dim from hidden_size")
    q = {
        k: cfg[k]
        for k in [
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "hidden_act",
            "max_position_embeddings",
            "initializer_range",
            "rms_norm_eps",
            "tie_word_embeddings",
            "rope_parameters",
            "attention_dropout",
            "bos_token_id",
            "eos_token_id",
            "pad_token_id",
        ]
        if k in cfg
    }
    q.update(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", use_sliding_window=False, dtype="float32"
    )
    out.mkdir(parents=True, exist_ok=True)
    sd = load_file(str(src / "model.safetensors"))
    kv = cfg["num_key_value_heads"] * head_dim
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}.self_attn."
        sd[p + "q_proj.bias"] = torch.zeros(cfg["hidden_size"])
        sd[p + "k_proj.bias"] = torch.zeros(kv)
        sd[p + "v_proj.bias"] = torch.zeros(kv)
    if cfg.get("tie_word_embeddings"):
        sd.pop("lm_head.weight", None)
    save_file(
        {k: v.contiguous() for k, v in sd.items()}, str(out / "model.safetensors"), metadata={"format": "pt"}
    )
    (out / "config.json").write_text(json.dumps(q, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)


def check(src: Path, out: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    texts = ["<|im_start|>user\nthe state of being crude and incomplete<|im_end|>", "a belt with money in it"]
    enc = tok(texts, return_tensors="pt", padding=True)
    diffs = []
    with torch.no_grad():
        a = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()(**enc).logits
        m = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        assert type(m).__name__ == "Qwen2ForCausalLM", type(m).__name__
        b = m(**enc).logits
    mask = enc["attention_mask"].bool()
    diffs.append((a[mask] - b[mask]).abs().max().item())
    return max(diffs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--check", action="store_true", help="compare both models' logits on two prompts")
    args = ap.parse_args()
    convert(args.src, args.out)
    if args.check:
        d = check(args.src, args.out)
        print(f"max |logit difference| llama vs qwen2: {d:.2e}")
        if d > 1e-3:
            raise SystemExit("the converted model does not match")


if __name__ == "__main__":
    main()
