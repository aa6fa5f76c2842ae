"""Training-step throughput: the two-row yes/no head vs transformers' LM-head logits.

Every variant runs the same forward + backward of one group (``--group`` documents of
``--seq`` tokens) through a listwise loss; they differ only in how the score is read:

* two-row head: rerankctl's ``YesNoHead`` (``install_yes_no_head``, what ``train sft`` trains
  with): last hidden state · (W_yes − W_no), its backward a 2-row gradient of the tied embedding;
* ``logits_to_keep=1`` (the honest baseline, issue 15): ``model(..., logits_to_keep=1)``, the full
  151,936-row LM head at the last position only, then ``logit_yes − logit_no`` (what
  sentence-transformers' ``LogitScore`` does);
* full logits (for reference only, no real trainer does this): the LM head at *every* position.

The headline ratio is the two-row head vs ``logits_to_keep=1``; the old 26x figure was vs full
logits at every position.

Usage::

    python bench/sft_step.py                       # tiny model and a Qwen3-0.6B-shaped model, CPU
    python bench/sft_step.py --models tiny --steps 5
    python bench/sft_step.py --device cuda --dtype bf16 --models 0.6b --group 8 --seq 512
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import machine

from rerankctl.losses import infonce_loss
from rerankctl.models.scoring import full_logits_scores
from rerankctl.models.tiny import QWEN3_0_6B_SHAPE, qwen3_config
from rerankctl.models.yes_no_head import forward_scores, install_yes_no_head

YES, NO = 9693, 2152


def build(name: str, device: str, dtype, two_row: bool = False):
    from transformers import AutoModelForCausalLM

    shape = QWEN3_0_6B_SHAPE if name == "0.6b" else {}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(qwen3_config(**shape), dtype=dtype).to(device)
    if two_row:
        install_yes_no_head(model, YES, NO)
    return model.train()


def two_row_scores(model, ids, attn, yes, no):
    return forward_scores(model, ids, attn)


def keep_one_scores(model, ids, attn, yes, no):
    """transformers' own cheap path: the LM head at the last position only."""
    logits = model(input_ids=ids, attention_mask=attn, logits_to_keep=1, use_cache=False).logits
    last = logits[:, -1, :].to(torch.float32)
    return last[:, yes] - last[:, no]


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are medians")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print(f"machine: {machine()}")
    print(
        f"group {args.group} x seq {args.seq}, {args.rounds} interleaved rounds of {args.steps} timed steps "
        f"after one warm-up, {args.dtype}\n"
    )
    print(
        "| model | two-row head docs/s | `logits_to_keep=1` docs/s | **two-row / keep=1** "
        "| full logits (every position) docs/s | two-row / full |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        plain = build(name, args.device, dtype)
        ours = build(name, args.device, dtype, two_row=True)
        rates: dict[str, list[float]] = {"two": [], "keep1": [], "full": []}
        variants = {
            "two": (ours, two_row_scores),
            "keep1": (plain, keep_one_scores),
            "full": (plain, full_logits_scores),
        }
        for r in range(args.rounds):  # interleaved, order alternating: the machine's load drifts
            for key in list(variants) if r % 2 == 0 else list(variants)[::-1]:
                model, fn = variants[key]
                rates[key].append(measure(model, args.group, args.seq, args.steps, args.device, fn))
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(
            f"| {name} | {med['two']:.4g} | {med['keep1']:.4g} | **{med['two'] / med['keep1']:.2f}x** "
            f"| {med['full']:.4g} | {med['two'] / med['full']:.2f}x |",
            flush=True,
        )
        del plain, ours


if __name__ == "__main__":
    main()
