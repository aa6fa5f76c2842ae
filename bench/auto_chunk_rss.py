"""Peak RSS of `train sft` with default flags (`--chunk-size auto`) on a 30-layer Qwen3 (issue 18).

The issue: `train sft --model SmolLM2-135M --lora --n-docs 8 --max-length 256` (batch 4, no
--chunk-size) was OOM-killed at 22.5 GB on a 24 GB machine. This builds a random Qwen3 of the
same depth and width as SmolLM2-135M (30 layers, hidden 576, 9 heads / 3 KV heads, MLP 1536;
the Qwen3 vocabulary), writes 4 × 8 documents of ~256 tokens per step, runs `rerankctl train sft`
with default flags (LoRA, batch 4, `--chunk-size auto`) in a child process and reports its peak
RSS (ru_maxrss) and the chunk auto chose. Target: < 8 GB.

    nice -n 10 python bench/auto_chunk_rss.py [--steps 1] [--chunk-size N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--chunk-size", default=None, help="pass an explicit --chunk-size (default: auto)")
    parser.add_argument("--timeout", type=float, default=1500)
    args = parser.parse_args()
    from rerankctl.models.tiny import build_tiny_qwen3

    with tempfile.TemporaryDirectory(prefix="auto-chunk-") as folder:
        root = Path(folder)
        model = build_tiny_qwen3(
            root / "model", seed=0, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
            num_attention_heads=9, num_key_value_heads=3, head_dim=64,
        )  # fmt: skip
        words = [
            "the",
            "quick",
            "brown",
            "fox",
            "jumps",
            "over",
            "the",
            "lazy",
            "dog",
            "near",
            "a",
            "river",
            "bank",
            "in",
            "spring",
        ]
        doc = " ".join(words * 16)  # ~230 tokens: with the template every row is cut to 256
        with open(root / "train.jsonl", "w", encoding="utf-8") as handle:
            for i in range(4 * args.steps):
                record = {
                    "query": f"query {i}",
                    "pos": [f"{i} {doc}"],
                    "neg": [f"{i} {j} {doc}" for j in range(7)],
                }
                handle.write(json.dumps(record) + "\n")
        cmd = [sys.executable, "-m", "rerankctl", "train", "sft", "--model", str(model)]
        cmd += ["--data", str(root / "train.jsonl"), "--n-docs", "8", "--max-length", "256"]
        cmd += ["--max-steps", str(args.steps), "--output", str(root / "out")]
        if args.chunk_size is not None:
            cmd += ["--chunk-size", str(args.chunk_size)]
        env = dict(os.environ, RERANKCTL_HOME=str(root / "home"))
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        plan = [
            line for line in proc.stderr.splitlines() + proc.stdout.splitlines() if "chunk_size auto" in line
        ]
    from _common import machine

    print(
        f"30 layers x hidden 576, 4 x 8 docs x 256 tokens, {args.steps} step(s), chunk {args.chunk_size or 'auto'}"
    )
    print("plan:", plan[0] if plan else "(explicit)")
    print(f"exit {proc.returncode}; wall {wall:.0f} s; peak RSS {peak_mb:,.0f} MB")
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
    print(f"machine: {machine()}")
    print("target peak RSS < 8 GB:", "met" if proc.returncode == 0 and peak_mb < 8192 else "NOT met")


if __name__ == "__main__":
    main()
