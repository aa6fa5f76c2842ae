"""Benchmark: does RL after SFT raise held-out NDCG@10 where SFT has plateaued? (issue 19)

    nice -n 10 python bench/rl_gain.py [--seeds 0 1 2] [--threads 1] [--rl-steps 150] [--parallel 3]

The task (``synth_rerank(graded=True)``): every query's documents are graded 3 (all four asked
attributes), 2 (three), 1 (two) or 0 (another object). SFT sees the binary view of the same records
(only grade 3 relevant; the `tiny` preset's InfoNCE), so nothing in its loss orders the negatives
among themselves, which graded NDCG@10 on held-out queries rewards. RL then trains on the graded
records with a graded reward.

Per seed (the seed draws the tiny model's weights, the data and all sampling), in a fresh
RERANKCTL_HOME: SFT (the `tiny` preset, 375 steps), then from the same SFT model

* ``sft+`` the control: SFT continued for as many steps as RL gets (does SFT plateau?);
* each RL combination below, ``--rl-steps`` steps of the `tiny_rl` preset with its overrides.

Prints held-out NDCG@10 (200 graded eval queries) before and after, the eval curve and wall time as
Markdown, and per combination the mean gain over seeds, its seed-to-seed std and gain / std.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

COMBOS = {
    "pl-dapo": {"loss_type": "dapo"},
    "pl-grpo-mu2": {"loss_type": "grpo", "num_iterations": 2},
    "pl-dr_grpo": {"loss_type": "dr_grpo"},
    "pw-grpo": {"loss_type": "grpo", "policy": "pointwise", "temperature": 1.0, "reward_type": "rank_based"},
    "pw-reinforce": {
        "loss_type": "reinforce",
        "policy": "pointwise",
        "temperature": 1.0,
        "reward_type": "ndcg_based",
    },
    "dpo": {"loss_type": "dpo", "learning_rate": 2e-4},
}

CHILD = r"""
import json, sys, time
from pathlib import Path
from rerankctl.config.presets import resolve_config
from rerankctl.config.rl import RLConfig
from rerankctl.config.sft import SFTConfig
from rerankctl.data.io import write_jsonl
from rerankctl.data.synth import synth_rerank
from rerankctl.train.rl_runner import run_rl
from rerankctl.train.sft_runner import run_sft

seed, rl_steps, combos = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
work, sft_steps = Path(sys.argv[4]), int(sys.argv[5])
files = {
    "binary": synth_rerank(3000, seed, split="train"),
    "graded": synth_rerank(3000, seed, split="train", graded=True),
    "eval": synth_rerank(200, seed, split="eval", graded=True),
}
for name, rows in files.items():
    write_jsonl(work / f"{name}.jsonl", rows)
out = {}
start = time.perf_counter()
sft_over = {"seed": seed, "run_name": "sft", "data": str(work / "binary.jsonl"),
            "eval_data": str(work / "eval.jsonl"), "output": str(work / "sft"), "save_steps": 10000}
if sft_steps:
    sft_over["max_steps"] = sft_steps
sft = run_sft(resolve_config(SFTConfig, preset="tiny", overrides=sft_over, command="train sft"))
out["sft"] = {"baseline": sft.baseline["ndcg@10"], "final": sft.final["ndcg@10"], "steps": sft.global_step,
              "seconds": time.perf_counter() - start}
print("RESULT " + json.dumps({"sft": out["sft"]}), flush=True)
# control: SFT continued (same preset, constant lr at the preset's peak / 10) for rl_steps steps
start = time.perf_counter()
cont = {"seed": seed, "run_name": "sft+", "model": str(sft.final_dir), "data": str(work / "binary.jsonl"),
        "eval_data": str(work / "eval.jsonl"), "output": str(work / "sft+"), "save_steps": 10000,
        "max_steps": rl_steps, "eval_steps": 50, "learning_rate": 2e-4, "lr_scheduler": "constant", "warmup_ratio": 0.0}
r = run_sft(resolve_config(SFTConfig, preset="tiny", overrides=cont, command="train sft"))
print("RESULT " + json.dumps({"sft+": {"baseline": r.baseline["ndcg@10"], "final": r.final["ndcg@10"],
      "steps": r.global_step, "seconds": time.perf_counter() - start, "run": "sft+"}}), flush=True)
for name, extra in combos.items():
    start = time.perf_counter()
    over = {"seed": seed, "run_name": name, "sft_model": str(sft.final_dir), "data": str(work / "graded.jsonl"),
            "eval_data": str(work / "eval.jsonl"), "output": str(work / name), "save_steps": 10000,
            "max_steps": rl_steps, "eval_steps": 50, **extra}
    r = run_rl(resolve_config(RLConfig, preset="tiny_rl", overrides=over, command="train rl"))
    print("RESULT " + json.dumps({name: {"baseline": r.baseline["ndcg@10"], "final": r.final["ndcg@10"],
          "steps": r.global_step, "seconds": time.perf_counter() - start, "run": name}}), flush=True)
"""


def curves(home: Path) -> dict[str, str]:
    db = sqlite3.connect(home / "runs.db")
    out = {}
    for run_id, name in db.execute("SELECT id, name FROM runs"):
        rows = db.execute(
            "SELECT step, value FROM metrics WHERE run_id = ? AND key = 'eval_ndcg@10' ORDER BY step, id",
            (run_id,),
        ).fetchall()
        out[name] = ", ".join(f"{s}: {v:.3f}" for s, v in rows)
    return out


def run_seed(seed: int, args) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"rerankctl-bench-rlgain-{seed}-"))
    env = dict(os.environ, RERANKCTL_HOME=str(home), OMP_NUM_THREADS=str(args.threads))
    combos = {k: COMBOS[k] for k in args.combos}
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(seed),
            str(args.rl_steps),
            json.dumps(combos),
            str(home),
            str(args.sft_steps),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    results: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line.removeprefix("RESULT ")))
    if proc.returncode:
        print(f"seed {seed} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
    results["_wall"] = time.perf_counter() - start
    try:
        results["_curves"] = curves(home)
    except sqlite3.Error:
        results["_curves"] = {}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=3, help="seeds run at once (one process each)")
    parser.add_argument("--rl-steps", type=int, default=150)
    parser.add_argument(
        "--sft-steps", type=int, default=0, help="0 = the tiny preset's 375 (smoke runs: fewer)"
    )
    parser.add_argument("--combos", nargs="+", default=list(COMBOS), choices=list(COMBOS))
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    start = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as pool:
        per_seed = dict(zip(args.seeds, pool.map(lambda s: run_seed(s, args), args.seeds), strict=True))
    wall = time.perf_counter() - start
    if args.json:
        args.json.write_text(json.dumps(per_seed, indent=1))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load at end {os.getloadavg()[0]:.1f}; "
        f"{args.threads} thread(s) per seed, {args.parallel} seeds at once; total wall {wall / 60:.1f} min\n"
    )
    print("| run | seed | NDCG@10 start | end | gain | steps | s | eval curve (step: NDCG@10) |")
    print("|---|---|---|---|---|---|---|---|")
    names = ["sft", "sft+", *args.combos]
    for name in names:
        for seed, res in per_seed.items():
            r = res.get(name)
            if r is None:
                print(f"| {name} | {seed} | failed | | | | | |")
                continue
            curve = res["_curves"].get(name, "")
            print(
                f"| {name} | {seed} | {r['baseline']:.4f} | {r['final']:.4f} | {r['final'] - r['baseline']:+.4f} "
                f"| {r['steps']} | {r['seconds']:.0f} | {curve} |"
            )
    print("\n| run | mean gain | seed-to-seed std of the gain | gain / std | std of the end NDCG@10 |")
    print("|---|---|---|---|---|")
    for name in names[1:]:
        gains = [res[name]["final"] - res[name]["baseline"] for res in per_seed.values() if name in res]
        ends = [res[name]["final"] for res in per_seed.values() if name in res]
        if len(gains) < 2:
            print(f"| {name} | {f'{gains[0]:+.4f}' if gains else '-'} | - | - | - |")
            continue
        sd = statistics.stdev(gains)
        print(
            f"| {name} | {statistics.mean(gains):+.4f} | {sd:.4f} | {statistics.mean(gains) / max(sd, 1e-9):.1f} "
            f"| {statistics.stdev(ends):.4f} |"
        )


if __name__ == "__main__":
    main()
