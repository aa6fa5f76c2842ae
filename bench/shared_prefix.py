"""Shared-prefix scoring vs one row per document, on the same model and prompts, A/B interleaved.

Random-weight Qwen3 shape (hidden 256 x 4 layers, real vocabulary and tokenizer), fp32, 1 thread:

* SFT step (InfoNCE, forward + backward + AdamW step) docs/s: unshared vs shared-prefix scoring,
  and the single-tensor ``adamw_torch`` vs the fused AdamW (the new default);
* inference: one query x ``--docs`` documents of ~100 tokens, pairs/s and the largest score difference.

Usage::

    nice -n 10 python bench/shared_prefix.py --group 8 --steps 3 --docs 100
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from _common import machine

from rerankctl.data.prompt import PromptTokenizer
from rerankctl.losses import infonce_loss
from rerankctl.models.scoring import yes_no_scores
from rerankctl.models.shared_prefix import enable_shared_prefix, shared_prefix_scores
from rerankctl.models.tiny import qwen3_config
from rerankctl.models.tokenizer import load_qwen3_tokenizer
from rerankctl.models.yes_no_head import forward_scores, install_yes_no_head

WORDS = [
    "the",
    "a",
    "of",
    "model",
    "rank",
    "query",
    "document",
    "search",
    "result",
    "relevant",
    "answer",
    "passage",
    "text",
    "data",
    "index",
]


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    tok = load_qwen3_tokenizer()
    prompt = PromptTokenizer(tok, max_length=args.max_length)
    shape = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4)
    shape.update(num_key_value_heads=2, head_dim=64)
    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(qwen3_config(**shape), dtype=torch.float32)
    install_yes_no_head(model, prompt.yes_id, prompt.no_id)
    enable_shared_prefix(model)
    rng = random.Random(0)

    # ---- SFT step
    query = text(rng, 12)
    docs = [text(rng, rng.randint(120, 170)) for _ in range(args.group)]
    ids, _ = prompt.encode_pairs([query] * args.group, docs)
    batch = prompt.pad(ids)
    print(f"SFT group {args.group}, prompt lengths {min(map(len, ids))}-{max(map(len, ids))} tokens")
    score = {
        "unshared": lambda: forward_scores(model, batch["input_ids"], batch["attention_mask"]),
        "shared": lambda: shared_prefix_scores(model, batch["input_ids"], batch["attention_mask"], None),
    }
    optims = {
        "adamw_torch": torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=False),
        "fused": torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True),
    }
    variants = [("unshared", "adamw_torch"), ("unshared", "fused"), ("shared", "fused")]

    def step(name: str, opt: str) -> None:
        s = score[name]().view(1, -1)
        labels = torch.zeros_like(s)
        labels[0, 0] = 1
        infonce_loss(s, labels).backward()
        optims[opt].step()
        model.zero_grad(set_to_none=True)

    for v in variants:
        step(*v)
    took = dict.fromkeys(variants, 0.0)
    for _ in range(args.steps):
        for v in variants:
            start = time.perf_counter()
            step(*v)
            took[v] += time.perf_counter() - start
    base = took[variants[0]]
    for v in variants:
        rate = args.group * args.steps / took[v]
        print(f"  {v[0]:9s} {v[1]:12s} {rate:6.2f} docs/s  {base / took[v]:.2f}x")

    # ---- inference
    docs = [text(rng, rng.randint(80, 100)) for _ in range(args.docs)]
    ids, _ = prompt.encode_pairs([query] * args.docs, docs)
    model.eval()
    yes_no = (prompt.yes_id, prompt.no_id)

    def unshared():
        out = []
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for b in range(0, len(order), 32):
            rows = [ids[i] for i in order[b : b + 32]]
            p = prompt.pad(rows)
            out.append(yes_no_scores(model, p["input_ids"], p["attention_mask"], *yes_no))
        return torch.cat(out)[torch.argsort(torch.tensor(order))]

    def shared():
        out = []
        for b in range(0, len(ids), 32):
            p = prompt.pad(ids[b : b + 32])
            out.append(shared_prefix_scores(model, p["input_ids"], p["attention_mask"], None))
        return torch.cat(out)

    with torch.inference_mode():
        a, b = unshared(), shared()
        took = {"unshared": 0.0, "shared": 0.0}
        for _ in range(args.steps):
            for name, fn in (("unshared", unshared), ("shared", shared)):
                start = time.perf_counter()
                fn()
                took[name] += time.perf_counter() - start
    print(
        f"inference 1 query x {args.docs} docs ({min(map(len, ids))}-{max(map(len, ids))} tokens), batch 32"
    )
    for name in took:
        rate = args.docs * args.steps / took[name]
        print(f"  {name:9s} {rate:7.1f} pairs/s  {took['unshared'] / took[name]:.2f}x")
    print(
        f"  max |score difference| {float((a - b).abs().max()):.2e}, max |score| {float(a.abs().max()):.2f}"
    )


if __name__ == "__main__":
    main()
