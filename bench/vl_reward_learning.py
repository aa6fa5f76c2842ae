"""Benchmark: does the `tiny_vl_reward` preset learn, for more than one seed? (issue 20, item 5)

    python bench/vl_reward_learning.py [--seeds 42 0 1] [--threads 2] [--set key=value ...]

Runs the preset exactly as `rerankctl train vl-reward --preset tiny_vl_reward` does, once per
seed (the seed draws the synthetic images, the split, the head's initialisation and the data
order), each in a fresh RERANKCTL_HOME, and prints validation accuracy before and after, the
evaluation curve and the wall time as a Markdown table. ``--set`` overrides preset keys (for
trying recipes: ``--set lr=1e-3 --set synth_size=800``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys
from rerankctl.config.presets import resolve_config
from rerankctl.config.vl_reward import VLRewardConfig
from rerankctl.train.vl_reward import run_vl_reward
overrides = json.loads(sys.argv[2])
overrides.update(seed=int(sys.argv[1]), run_name="bench")
cfg = resolve_config(VLRewardConfig, preset="tiny_vl_reward", overrides=overrides, command="train vl-reward")
r = run_vl_reward(cfg)
print("RESULT " + json.dumps({"baseline": r.baseline["accuracy"], "final": r.final["accuracy"],
                              "loss0": r.baseline["loss"], "loss1": r.final["loss"]}))
"""


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_seed(seed: int, threads: int, overrides: dict) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"rerankctl-bench-vl-{seed}-"))
    env = dict(os.environ, RERANKCTL_HOME=str(home), OMP_NUM_THREADS=str(threads))
    from _common import run_learning_child

    return run_learning_child(
        CHILD, [str(seed), json.dumps(overrides)], home, env, "eval_accuracy", f"seed {seed}", cwd=home
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1])
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preset override")
    args = parser.parse_args()
    overrides = {k: _value(v) for k, _, v in (s.partition("=") for s in args.set)}
    load = os.getloadavg()[0]
    rows = []
    for seed in args.seeds:
        rows.append((seed, run_seed(seed, args.threads, overrides)))
        print(f"seed {seed}: {rows[-1][1]}", file=sys.stderr, flush=True)

    import torch

    sets = "".join(f" --set {s}" for s in args.set)
    print("## `train vl-reward --preset tiny_vl_reward` across seeds (bench/vl_reward_learning.py)\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} torch threads, load average before: {load:.1f}")  # fmt: skip
    print(f"- command: `python bench/vl_reward_learning.py --seeds {' '.join(map(str, args.seeds))} "
          f"--threads {args.threads}{sets}`\n")  # fmt: skip
    print(
        "| seed | val accuracy before | after | loss before → after | wall s | eval curve (step: accuracy) |"
    )
    print("|---:|---:|---:|---|---:|---|")
    for seed, r in rows:
        curve = ", ".join(f"{s}: {v:.2f}" for s, v in r["curve"])
        print(f"| {seed} | {r['baseline']:.3f} | **{r['final']:.3f}** | {r['loss0']:.4f} → {r['loss1']:.4f} | "
              f"{r['wall']:.0f} | {curve} |")  # fmt: skip
    finals = [r["final"] for _, r in rows]
    print(f"\n- lowest accuracy after training {min(finals):.3f}, mean {sum(finals) / len(finals):.3f}")


if __name__ == "__main__":
    main()
