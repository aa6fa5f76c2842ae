"""Training-step throughput: the two-row yes/no head vs full LM-head logits.

Both variants run the same forward + backward of one group (``--group`` documents of
``--seq`` tokens) through a listwise loss; they differ only in how the score is read:

* two-row head: last hidden state · (W_yes − W_no)            (what rerankctl trains with)
* full logits:  model(...).logits[:, -1, [yes, no]] after the full LM head over every position

Usage::

    python bench/sft_step.py                       # tiny model and a Qwen3-0.6B-shaped model, CPU
    python bench/sft_step.py --models tiny --steps 5
    python bench/sft_step.py --device cuda --dtype bf16 --models 0.6b --group 8 --seq 512
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import machine

from rerankctl.losses import infonce_loss
from rerankctl.models.scoring import full_logits_scores, yes_no_scores
from rerankctl.models.tiny import QWEN3_0_6B_SHAPE, qwen3_config

YES, NO = 9693, 2152


def build(name: str, device: str, dtype):
    from transformers import AutoModelForCausalLM

    shape = QWEN3_0_6B_SHAPE if name == "0.6b" else {}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(qwen3_config(**shape), dtype=dtype).to(device)
    return model.train()


def step(model, ids, attn, score_fn) -> None:
    scores = score_fn(model, ids, attn, YES, NO).float().view(1, -1)
    labels = torch.zeros_like(scores)
    labels[0, 0] = 1
    loss = infonce_loss(scores, labels)
    loss.backward()
    model.zero_grad(set_to_none=True)


def measure(model, group: int, seq: int, steps: int, device: str, score_fn) -> float:
    ids = torch.randint(0, 150000, (group, seq), device=device)
    attn = torch.ones_like(ids)
    step(model, ids, attn, score_fn)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(model, ids, attn, score_fn)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return group * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "0.6b"], choices=["tiny", "0.6b"])
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print(f"machine: {machine()}")
    print(f"group {args.group} x seq {args.seq}, {args.steps} timed steps after one warm-up, {args.dtype}\n")
    print("| model | two-row head docs/s | full logits docs/s | speed-up |")
    print("|---|---:|---:|---:|")
    for name in args.models:
        model = build(name, args.device, dtype)
        fast = measure(model, args.group, args.seq, args.steps, args.device, yes_no_scores)
        slow = measure(model, args.group, args.seq, args.steps, args.device, full_logits_scores)
        print(f"| {name} | {fast:.4g} | {slow:.4g} | {fast / slow:.2f}x |", flush=True)
        del model


if __name__ == "__main__":
    main()
