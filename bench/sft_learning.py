"""Benchmark: does the `tiny` SFT preset learn, for more than one seed? (issue 5: NDCG@10 +0.2)

    python bench/sft_learning.py [--seeds 42 0 1 7] [--threads 2]

Runs the preset exactly as `rerankctl train sft --preset tiny` does, once per seed (the seed
draws the tiny model's random weights, the synthetic data and the sampling), each in a fresh
RERANKCTL_HOME, and prints held-out NDCG@10 before and after, the eval curve and wall time as
a Markdown table. Seeds run one after the other so wall times are comparable.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

CHILD = """
import json, sys
from rerankctl.config.presets import resolve_config
from rerankctl.config.sft import SFTConfig
from rerankctl.train.sft_runner import run_sft
cfg = resolve_config(SFTConfig, preset="tiny", overrides={"seed": int(sys.argv[1]), "run_name": "bench"},
                     command="train sft")
r = run_sft(cfg)
print("RESULT " + json.dumps({"baseline": r.baseline["ndcg@10"], "final": r.final["ndcg@10"],
                              "steps": r.global_step, "train_seconds": r.train_seconds}))
"""


def run_seed(seed: int, threads: int) -> dict:

    home = Path(tempfile.mkdtemp(prefix=f"rerankctl-bench-sft-{seed}-"))
    env = dict(os.environ, RERANKCTL_HOME=str(home), OMP_NUM_THREADS=str(threads))
    from _common import run_learning_child

    return run_learning_child(CHILD, [str(seed)], home, env, "eval_ndcg@10", f"seed {seed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 7])
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    args = parser.parse_args()
    rows = [(seed, run_seed(seed, args.threads)) for seed in args.seeds]

    import torch

    print("## `train sft --preset tiny` across seeds (bench/sft_learning.py)\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} torch threads, load average before: {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"- command: `python bench/sft_learning.py --seeds {' '.join(map(str, args.seeds))} "
          f"--threads {args.threads}`\n")  # fmt: skip
    print(
        "| seed | NDCG@10 untrained | trained | gain | steps | train s | wall s | eval curve (step: NDCG@10) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for seed, r in rows:
        curve = ", ".join(f"{s}: {v:.2f}" for s, v in r["curve"])
        print(f"| {seed} | {r['baseline']:.3f} | {r['final']:.3f} | **{r['final'] - r['baseline']:+.3f}** | "
              f"{r['steps']} | {r['train_seconds']:.0f} | {r['wall']:.0f} | {curve} |")  # fmt: skip
    gains = [r["final"] - r["baseline"] for _, r in rows]
    print(f"\n- smallest gain {min(gains):+.3f}, mean {sum(gains) / len(gains):+.3f} (target >= +0.2)")


if __name__ == "__main__":
    main()
