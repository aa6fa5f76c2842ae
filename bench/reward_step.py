"""Reward-model training step: one forward (chosen+rejected concatenated) vs two forwards,
and peak memory with and without gradient checkpointing, on a Qwen3-0.6B-shaped model.

Each configuration runs in a fresh subprocess (so peak RSS is its own), builds the
random 0.6B-shaped reward model, runs ``--warmup`` untimed steps and ``--steps`` timed
forward+backward steps (no optimizer: the optimizer is identical in every variant).

Memory: on CUDA, ``torch.cuda.max_memory_allocated``; on CPU, the process's peak RSS
minus its RSS after the model was built (= activations + gradients + allocator slack).

Usage::

    python bench/reward_step.py                    # CPU defaults: 2 pairs x 128 tokens, 1 timed step
    python bench/reward_step.py --pairs 8 --seq 512 --device cuda --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModel

    from rerankctl.losses import bradley_terry_loss
    from rerankctl.models.reward import RewardModel
    from rerankctl.models.tiny import QWEN3_0_6B_SHAPE, qwen3_config

    torch.manual_seed(0)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    backbone = AutoModel.from_config(qwen3_config(**QWEN3_0_6B_SHAPE), dtype=torch.float32)
    model = RewardModel(backbone).to(args.device).train()
    if args.checkpointing:
        model.activation_checkpointing_enable()
    gen = torch.Generator().manual_seed(1)
    shape = (args.pairs, args.seq)
    chosen = torch.randint(0, 150000, shape, generator=gen).to(args.device)
    rejected = torch.randint(0, 150000, shape, generator=gen).to(args.device)
    mask = torch.ones(shape, dtype=torch.long, device=args.device)
    cuda = args.device.startswith("cuda")

    def step() -> None:
        if args.mode == "one":
            rewards = model(input_ids=torch.cat([chosen, rejected]), attention_mask=torch.cat([mask, mask]))[
                "rewards"
            ]
            r_c, r_r = rewards[: args.pairs], rewards[args.pairs :]
        else:
            r_c = model(input_ids=chosen, attention_mask=mask)["rewards"]
            r_r = model(input_ids=rejected, attention_mask=mask)["rewards"]
        bradley_terry_loss(r_c, r_r).backward()
        model.zero_grad(set_to_none=False)  # keep grad buffers: every variant pays for them once

    base = rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / args.steps
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if cuda else peak_rss_mb() - base
    return {"seconds_per_step": seconds, "pairs_per_s": args.pairs / seconds, "peak_mb": peak}


def run_config(args: argparse.Namespace, mode: str, checkpointing: bool) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--mode",
        mode,
        "--pairs",
        str(args.pairs),
        "--seq",
        str(args.seq),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ]
    if checkpointing:
        cmd.append("--checkpointing")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--mode", choices=("one", "two"), default="one")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    rows = {}
    for mode, ckpt in (("one", False), ("two", False), ("one", True)):
        rows[(mode, ckpt)] = run_config(args, mode, ckpt)
    one, two, gc = rows[("one", False)], rows[("two", False)], rows[("one", True)]
    import torch

    print(f"### Reward step, Qwen3-0.6B-shaped model ({args.device})\n")
    print(
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
        f"{args.pairs} pairs x {args.seq} tokens, {args.warmup} warmup + {args.steps} timed step(s), fwd+bwd"
    )
    print(
        f"- command: `python bench/reward_step.py --pairs {args.pairs} --seq {args.seq} --steps {args.steps} "
        f"--device {args.device}`\n"
    )
    print("| variant | s/step | pairs/s | peak memory (MB) |\n|---|---|---|---|")
    for name, row in (
        ("one forward (chosen+rejected concatenated)", one),
        ("two forwards", two),
        ("one forward + gradient checkpointing", gc),
    ):
        print(f"| {name} | {row['seconds_per_step']:.2f} | {row['pairs_per_s']:.3g} | {row['peak_mb']:.0f} |")
    print(f"\n- one vs two forwards: {one['pairs_per_s'] / two['pairs_per_s']:.2f}x pairs/s")
    print(
        f"- gradient checkpointing: peak memory {gc['peak_mb'] / one['peak_mb']:.2f}x, "
        f"time per step {gc['seconds_per_step'] / one['seconds_per_step']:.2f}x"
    )


if __name__ == "__main__":
    main()
