"""Peak memory of one SFT step as the group grows, with and without chunked scoring.

Each configuration runs in a fresh subprocess (peak RSS only ever grows) that loads the
model, builds one group of ``G`` documents, and runs one exact chunked (or unchunked)
forward/backward of a listwise loss. We report the process's peak RSS and the part of
it the step added over the loaded model.

Usage::

    python bench/memory_vs_group.py                  # groups 8..64, chunk 4 and unchunked
    python bench/memory_vs_group.py --hidden 256 --layers 4 --seq 256
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def child(group: int, chunk: int, seq: int, hidden: int, layers: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from rerankctl.losses import infonce_loss
    from rerankctl.models.scoring import yes_no_scores
    from rerankctl.models.tiny import qwen3_config
    from rerankctl.train.chunked import chunked_backward

    torch.manual_seed(0)
    cfg = qwen3_config(
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=max(2, hidden // 64),
        num_key_value_heads=max(1, hidden // 128),
        head_dim=64,
    )
    model = AutoModelForCausalLM.from_config(cfg).train()
    ids = torch.randint(0, 150000, (group, seq))
    attn = torch.ones_like(ids)
    labels = torch.zeros(1, group)
    labels[0, 0] = 1

    def score(i, a):
        return yes_no_scores(model, i, a, 9693, 2152)

    def loss_fn(s):
        return infonce_loss(s.view(1, -1), labels)

    # Warm the allocator with a 1-document step so both configurations start from the same state.
    loss_fn_small = lambda s: s.sum()  # noqa: E731
    chunked_backward(score, ids[:1], attn[:1], loss_fn_small, 1)
    model.zero_grad(set_to_none=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if chunk:
        chunked_backward(score, ids, attn, loss_fn, chunk)
    else:
        loss_fn(score(ids, attn)).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak / 1024, "step_mb": (peak - before) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.seq, args.hidden, args.layers)
        return
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from _common import machine

    print(f"machine: {machine()}")
    print(
        f"model: Qwen3 architecture, hidden {args.hidden}, {args.layers} layers, vocab 151936; seq {args.seq}\n"
    )
    rows = {}
    for chunk in (args.chunk, 0):
        for group in args.groups:
            cmd = [
                sys.executable,
                __file__,
                "--seq",
                str(args.seq),
                "--hidden",
                str(args.hidden),
                "--layers",
                str(args.layers),
                "--child",
                str(group),
                str(chunk),
            ]
            out = (
                subprocess.run(cmd, capture_output=True, text=True, check=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            rows[(chunk, group)] = json.loads(out)
    print(f"| group | chunk {args.chunk}: peak MB | step MB | unchunked: peak MB | step MB |")
    print("|---:|---:|---:|---:|---:|")
    for group in args.groups:
        c, u = rows[(args.chunk, group)], rows[(0, group)]
        print(
            f"| {group} | {c['peak_mb']:.0f} | {c['step_mb']:.0f} | {u['peak_mb']:.0f} | {u['step_mb']:.0f} |"
        )
    lo, hi = min(args.groups), max(args.groups)
    ratio = rows[(args.chunk, hi)]["peak_mb"] / rows[(args.chunk, lo)]["peak_mb"]
    ratio_u = rows[(0, hi)]["peak_mb"] / rows[(0, lo)]["peak_mb"]
    print(
        f"\npeak RSS ratio group {hi} / group {lo}: chunk {args.chunk} = {ratio:.2f}x (target <= 1.3x); unchunked = {ratio_u:.2f}x"
    )


if __name__ == "__main__":
    main()
