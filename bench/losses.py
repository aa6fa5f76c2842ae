"""Benchmark: forward+backward time of every loss, and the vectorised batch metrics.

Usage::

    python bench/losses.py            # prints Markdown and writes bench/results/losses.md
    python bench/losses.py --quick    # fewer repeats

Figures: ``loss = fn(...); loss.backward()`` on random float32 groups of 64×50 and 256×100
(CPU, one torch thread), and ``compute_all_metrics_batch`` on 10,000 queries × 100 documents
(the issue's budget: under 1 s). Each figure is the best of N runs of the process's CPU
time (``time.process_time``), which other processes on a shared machine disturb far less
than wall time; the metrics row also gives the best wall time. The ratio to the pointwise
BCE in the same run is the steadier comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rerankctl.eval.metrics_batch import compute_all_metrics_batch  # noqa: E402
from rerankctl.losses import (  # noqa: E402
    LOSS_NAMES,
    LOSSES,
    bradley_terry_loss,
    build_loss,
    compute_doc_level_advantages,
    compute_doc_level_rewards,
    dapo_loss,
    dpo_loss,
    dr_grpo_loss,
    grpo_loss,
    margin_ranking_loss,
    reinforce_loss,
)

SHAPES = ((64, 50), (256, 100))


def timed(fn, repeats: int, clock=time.process_time) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def ranking_case(name: str, b: int, n: int):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(b, n, generator=g)
    labels = torch.zeros(b, n)
    labels[:, :3] = torch.randint(1, 4, (b, 3), generator=g).float()
    if name == "bce":
        labels = labels.clamp(max=1.0)
    lengths = torch.randint(n // 2, n + 1, (b,), generator=g)
    mask = torch.arange(n)[None, :] < lengths[:, None]
    teacher = torch.randn(b, n, generator=g)
    fn = build_loss(name, max_pairs=None)

    def run():
        s = scores.clone().requires_grad_(True)
        fn(s, labels, mask, teacher_scores=teacher).backward()

    return run


def rl_cases(b: int, n: int):
    g = torch.Generator().manual_seed(1)
    m = b * n
    old = -torch.rand(m, generator=g)
    cur = old + 0.1 * torch.randn(m, generator=g)
    groups = torch.arange(b).repeat_interleave(n)
    scores = torch.randn(b, n, generator=g)
    labels = (torch.rand(b, n, generator=g) < 0.2).float()

    def policy(fn):
        def run():
            lp = cur.clone().requires_grad_(True)
            rewards = compute_doc_level_rewards(scores, labels, "ndcg_based").reshape(-1)
            adv = compute_doc_level_advantages(rewards, groups)
            loss, _ = fn(lp, old, adv)
            loss.backward()

        return run

    def reinforce():
        lp = cur.clone().requires_grad_(True)
        reinforce_loss(lp, torch.randn(m, generator=g))[0].backward()

    half = m // 2

    def dpo():
        pc = cur[:half].clone().requires_grad_(True)
        pr = cur[half:].clone().requires_grad_(True)
        dpo_loss(pc, pr, old[:half], old[half:])[0].backward()

    def bt():
        c = cur[:half].clone().requires_grad_(True)
        bradley_terry_loss(c, old[half:], margin=0.1, center_rewards_coef=0.01).backward()

    def hinge():
        c = cur[:half].clone().requires_grad_(True)
        margin_ranking_loss(c, old[half:], 0.5).backward()

    return {
        "grpo (+rewards, advantages)": policy(grpo_loss),
        "dapo (+rewards, advantages)": policy(dapo_loss),
        "dr_grpo (+rewards, advantages)": policy(dr_grpo_loss),
        "reinforce": reinforce,
        "dpo (B·N/2 pairs)": dpo,
        "bradley_terry (B·N/2 pairs)": bt,
        "margin_ranking (B·N/2 pairs)": hinge,
    }


def metrics_case(q: int = 10_000, n: int = 100):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((q, n))
    relevance = (rng.random((q, n)) < 0.05) * rng.integers(1, 4, (q, n))
    mask = np.arange(n)[None, :] < rng.integers(n // 2, n + 1, q)[:, None]
    return lambda: compute_all_metrics_batch(scores, relevance, mask, ks=(1, 5, 10))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "losses.md"))
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    torch.set_num_threads(1)  # CPU time of one thread: comparable across runs and machines

    rows = []
    for name in LOSS_NAMES:
        label = name + (" (teacher)" if LOSSES[name].needs_teacher else "")
        rows.append((label, [timed(ranking_case(name, b, n), repeats) for b, n in SHAPES]))
    rl = [rl_cases(b, n) for b, n in SHAPES]
    for key in rl[0]:
        rows.append((key, [timed(case[key], repeats) for case in rl]))
    base = dict(rows)["bce"]
    metric_s = timed(metrics_case(), max(3, repeats // 3))
    metric_wall = timed(metrics_case(), max(3, repeats // 3), clock=time.perf_counter)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Losses and metrics benchmark",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"(1 thread), numpy {np.__version__}, Python {platform.python_version()}",
        f"- Command: `python bench/losses.py{' --quick' if args.quick else ''}` "
        f"(best of {repeats} runs after a warm-up, process CPU time; float32)",
        f"- Load average when it ran: {load:.2f} (the machine is shared with other work; compare ratios)",
        "",
        "## Forward + backward per batch",
        "",
        "Ranking losses take padded groups `[B, N]` (random lengths N/2..N, 3 graded positives).",
        "RL rows time rewards + group advantages + the policy loss over B·N documents.",
        "",
        "| loss | 64×50 (ms) | 256×100 (ms) | ×bce at 256×100 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, (small, large) in rows:
        lines.append(f"| {label} | {small * 1e3:.2f} | {large * 1e3:.2f} | {large / base[1]:.1f} |")
    verdict = "meets" if max(metric_s, metric_wall) < 1.0 else "MISSES"
    lines += [
        "",
        "## Batch metrics",
        "",
        "| what | CPU time | wall time | budget |",
        "| --- | ---: | ---: | --- |",
        f"| `compute_all_metrics_batch`, 10,000 queries × 100 docs, ks=(1, 5, 10) | {metric_s * 1e3:.0f} ms "
        f"| {metric_wall * 1e3:.0f} ms | < 1 s ({verdict}) |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=out.parent, delete=False, suffix=".tmp", encoding="utf-8"
    ) as fh:
        fh.write(text)
    os.replace(fh.name, out)
    return 0 if max(metric_s, metric_wall) < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
