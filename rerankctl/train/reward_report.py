"""Console summaries of reward-model runs and evaluations."""

from __future__ import annotations

from typing import Any

KEYS = ("accuracy", "kendall_tau", "margin_mean", "chosen_mean", "rejected_mean", "length_correlation")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def summary_lines(result: Any) -> list[str]:
    """Plain-text lines: the run, baseline -> final metrics, where things were written."""
    lines = []
    if result.run_id:
        lines.append(f"run {result.run_id}  (rerankctl runs show {result.run_id})")
    if result.final_dir is not None:
        lines.append(f"model: {result.final_dir}  ({result.global_step} steps, {result.train_seconds:.1f}s)")
    for key in KEYS:
        if key not in result.final and key not in result.baseline:
            continue
        if result.baseline:
            lines.append(f"{key:>20}: {_fmt(result.baseline.get(key))} -> {_fmt(result.final.get(key))}")
        else:
            lines.append(f"{key:>20}: {_fmt(result.final.get(key))}")
    if result.report is not None:
        lines.append(f"report: {result.report}")
    return lines


def print_reward_summary(result: Any) -> None:
    # Plain stdout: this layer sits below the CLI and must not depend on typer.
    for line in summary_lines(result):
        print(line, flush=True)
