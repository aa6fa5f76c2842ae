"""Follow-up of bench/rl_gain.py (issue 19): more RL from a finished run's SFT model of one seed.

python bench/results/rl_gain_followup.py SEED_HOME SEED   (SEED_HOME: a rerankctl-bench-rlgain-* dir)
"""

import json
import sys
import time
from pathlib import Path

from rerankctl.config.presets import resolve_config
from rerankctl.config.rl import RLConfig
from rerankctl.train.rl_runner import run_rl

work = Path(sys.argv[1])
seed = int(sys.argv[2])
combos = {
    "pl-dapo-250": {"loss_type": "dapo", "max_steps": 250},
    "dpo-lr1e-3-b1": {"loss_type": "dpo", "learning_rate": 1e-3, "dpo_beta": 1.0, "max_steps": 100},
}
for name, extra in combos.items():
    start = time.perf_counter()
    over = {
        "seed": seed,
        "run_name": name,
        "sft_model": str(work / "sft" / "final"),
        "data": str(work / "graded.jsonl"),
        "eval_data": str(work / "eval.jsonl"),
        "output": str(work / name),
        "save_steps": 10000,
        "eval_steps": 50,
        **extra,
    }
    r = run_rl(resolve_config(RLConfig, preset="tiny_rl", overrides=over, command="train rl"))
    print(
        "RESULT "
        + json.dumps(
            {
                name: {
                    "seed": seed,
                    "baseline": r.baseline["ndcg@10"],
                    "final": r.final["ndcg@10"],
                    "steps": r.global_step,
                    "seconds": time.perf_counter() - start,
                }
            }
        ),
        flush=True,
    )
