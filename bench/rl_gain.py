"""Benchmark: does RL after SFT raise held-out NDCG@10 once SFT has plateaued? (issue 19)

    python bench/rl_gain.py [--seeds 0 1 2] [--sft-steps 1500] [--extra-steps 3000] [--task coarse]

The defaults are the measured setting (bench/RESULTS.md, "RL gain after SFT", session 6): coarse-label
SFT to a plateau (1500 steps), then 3000 steps of pl-dapo vs 3000 more steps of SFT (``sft+``); about
35 min for three seeds at once on two idle cores (estimated from the per-run times: SFT ~330 s, sft+
~510 s, pl-dapo 860-1170 s; the script was not run end to end at these defaults). At 300 RL steps
(sessions 3-4) the gain was inside the noise: this small model sits on a plateau for 300-1400 RL steps before the graded order is learnt.

The task (``synth_rerank(graded=True)``): each query's 8-9 documents are graded 3 (all four asked
attributes), 2 (three), 1 (two) or 0 (another object). SFT is pointwise BCE on a *binary* view of
the same records; RL then trains on the graded records with an NDCG reward. Two binary views:

* ``--task coarse`` (default): every document about the asked object (grades 1-3) is relevant, as
  coarse topical or click labels would have it (``rerankctl.data.synth.coarse_view``). Nothing in
  SFT's loss says that a document repeating more of the asked attributes ranks higher, which graded
  NDCG@10 rewards: RL has room, the SFT loss does not optimise the reward.
* ``--task strict``: only grade 3 relevant. Measured: little room, because a model that learns
  "all four attributes" from token overlap already scores three above two (bench/results/rl.md).

Per seed (the seed draws the tiny model's weights, the data and all sampling), in a fresh
RERANKCTL_HOME:

* ``sft``: the `tiny` preset with ``loss_type=bce``, ``--sft-steps`` steps (linear decay; one pass
  over ``8 x sft-steps`` training queries), evaluated every 50 steps. The plateau is measured: the
  held-out gain over its last 30 % of steps is printed beside the curve.
* ``sft+``, the control: the SFT model trained on for ``--extra-steps`` more steps, same loss and
  data, constant learning rate ``--sft-plus-lr``. If RL only beats ``sft``, its gain may be more
  training; the gain that counts is ``RL - sft+``.
* each RL combination, ``--extra-steps`` steps of the `tiny_rl` preset with its overrides, from the
  same SFT model, on the graded view of the same training queries.

Prints Markdown: per run and seed the held-out NDCG@10 (200 graded queries) before/after and its
curve; per combination over seeds the mean of ``RL - sft`` and ``RL - sft+`` (paired per seed),
their seed-to-seed std and mean / std (the issue's goal: >= 3).
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

# RL combinations (overrides of the tiny_rl preset). The settings of "pl-dapo" came from a search on
# seed 100 (seed 101 checked), never on the reported seeds (bench/results/rl.md, "Session 3").
COMBOS = {
    "pl-dapo": {"loss_type": "dapo", "learning_rate": 2e-3, "batch_size": 8},
    "pl-grpo-mu2": {"loss_type": "grpo", "num_iterations": 2, "learning_rate": 2e-3, "batch_size": 8},
    "pl-dr_grpo": {"loss_type": "dr_grpo", "learning_rate": 2e-3, "batch_size": 8},
    "pw-grpo": {
        "loss_type": "grpo",
        "policy": "pointwise",
        "temperature": 1.0,
        "reward_type": "ndcg_based",
        "learning_rate": 5e-4,
        "batch_size": 8,
    },
    "dpo": {"loss_type": "dpo", "learning_rate": 1e-3, "dpo_beta": 1.0},
}

CHILD = r"""
import json, sys, time
from pathlib import Path
from rerankctl.config.presets import resolve_config
from rerankctl.config.rl import RLConfig
from rerankctl.config.sft import SFTConfig
from rerankctl.data.io import write_jsonl
from rerankctl.data.synth import coarse_view, synth_rerank
from rerankctl.train.rl_runner import run_rl
from rerankctl.train.sft_runner import run_sft

seed, extra, combos = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
work, sft_steps, plus_lr, task = Path(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
n_train = 8 * sft_steps  # one SFT pass at the tiny preset's batch of 8 queries
graded = synth_rerank(n_train, seed, split="train", graded=True)
if task == "coarse":  # the same graded records, every document about the asked object relevant
    binary = coarse_view(graded)
    sft_over = {"n_docs": 0, "n_pos": 0}  # every document of the query, its own positive ratio
else:  # strict: only the grade-3 documents relevant (the binary view of synth_rerank)
    binary = synth_rerank(n_train, seed, split="train")
    sft_over = {}
files = {"binary": binary, "graded": graded, "eval": synth_rerank(200, seed, split="eval", graded=True)}
for name, rows in files.items():
    write_jsonl(work / f"{name}.jsonl", rows)
common = {"seed": seed, "eval_data": str(work / "eval.jsonl"), "save_steps": 100000, "eval_steps": 50}

def report(name, r, start):
    print("RESULT " + json.dumps({name: {"baseline": r.baseline["ndcg@10"], "final": r.final["ndcg@10"],
          "steps": r.global_step, "seconds": time.perf_counter() - start}}), flush=True)

start = time.perf_counter()
sft = run_sft(resolve_config(SFTConfig, preset="tiny", command="train sft", overrides={
    **common, "run_name": "sft", "data": str(work / "binary.jsonl"), "output": str(work / "sft"),
    "loss_type": "bce", "max_steps": sft_steps, **sft_over}))
report("sft", sft, start)
start = time.perf_counter()
r = run_sft(resolve_config(SFTConfig, preset="tiny", command="train sft", overrides={
    **common, "run_name": "sft+", "model": str(sft.final_dir), "data": str(work / "binary.jsonl"),
    "output": str(work / "sft+"), "loss_type": "bce", "max_steps": extra, "learning_rate": plus_lr,
    "lr_scheduler": "constant", "warmup_ratio": 0.0, **sft_over}))
report("sft+", r, start)
for name, over in combos.items():
    start = time.perf_counter()
    r = run_rl(resolve_config(RLConfig, preset="tiny_rl", command="train rl", overrides={
        **common, "run_name": name, "sft_model": str(sft.final_dir), "data": str(work / "graded.jsonl"),
        "output": str(work / name), "max_steps": extra, **over}))
    report(name, r, start)
"""


def curves(home: Path) -> dict[str, list[tuple[int, float]]]:
    """Held-out NDCG@10 per run name, one point per step (the final evaluation repeats the last)."""
    db = sqlite3.connect(home / "runs.db")
    out = {}
    for run_id, name in db.execute("SELECT id, name FROM runs"):
        rows = db.execute(
            "SELECT step, value FROM metrics WHERE run_id = ? AND key = 'eval_ndcg@10' ORDER BY step, id",
            (run_id,),
        ).fetchall()
        out[name] = sorted(dict(rows).items())
    return out


def run_seed(seed: int, args) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"rerankctl-bench-rlgain-{seed}-"))
    env = dict(os.environ, RERANKCTL_HOME=str(home), OMP_NUM_THREADS=str(args.threads))
    combos = {k: COMBOS[k] for k in args.combos}
    argv = [str(seed), str(args.extra_steps), json.dumps(combos), str(home), str(args.sft_steps)]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv, str(args.sft_plus_lr), args.task],
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
    results["_home"] = str(home)
    try:
        results["_curves"] = curves(home)
    except sqlite3.Error:
        results["_curves"] = {}
    return results


def plateau(curve: list[tuple[int, float]], frac: float = 0.3) -> float:
    """Held-out NDCG@10 gained over the last ``frac`` of the steps (end value - value at that point)."""
    if len(curve) < 2:
        return float("nan")
    last = curve[-1][0]
    before = [v for s, v in curve if s <= last * (1 - frac)]
    return curve[-1][1] - (before[-1] if before else curve[0][1])


def stats(values: list[float]) -> str:
    if len(values) < 2:
        return f"| {values[0]:+.4f} | - | - |" if values else "| - | - | - |"
    mean, sd = statistics.mean(values), statistics.stdev(values)
    return f"| {mean:+.4f} | {sd:.4f} | {mean / max(sd, 1e-9):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=3, help="seeds run at once (one process each)")
    parser.add_argument("--sft-steps", type=int, default=1500)
    parser.add_argument("--extra-steps", type=int, default=3000, help="steps of sft+ and of each RL run")
    parser.add_argument("--sft-plus-lr", type=float, default=2e-4, help="constant lr of the sft+ control")
    parser.add_argument("--combos", nargs="+", default=["pl-dapo"], choices=list(COMBOS))
    parser.add_argument(
        "--task",
        choices=["coarse", "strict"],
        default="coarse",
        help="SFT's binary labels: coarse = any document about the asked object (grades 1-3) relevant; "
        "strict = only grade 3 (all four attributes)",
    )
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
            curve = ", ".join(f"{s}: {v:.3f}" for s, v in res["_curves"].get(name, []))
            print(
                f"| {name} | {seed} | {r['baseline']:.4f} | {r['final']:.4f} | {r['final'] - r['baseline']:+.4f} "
                f"| {r['steps']} | {r['seconds']:.0f} | {curve} |"
            )
    print("\nSFT plateau (held-out NDCG@10 gained over the last 30 % of the SFT steps):")
    for seed, res in per_seed.items():
        print(f"* seed {seed}: {plateau(res['_curves'].get('sft', [])):+.4f}")
    print("\n| run | vs | mean gain | seed-to-seed std | mean / std |")
    print("|---|---|---|---|---|")
    for name in names[1:]:
        for ref in ("sft", "sft+") if name != "sft+" else ("sft",):
            gains = [
                res[name]["final"] - res[ref]["final"]
                for res in per_seed.values()
                if name in res and ref in res
            ]
            print(f"| {name} | {ref} " + stats(gains))


if __name__ == "__main__":
    main()
