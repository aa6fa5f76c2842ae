"""End-of-run summaries printed by the training commands."""

from __future__ import annotations

from typing import Any

KEYS = ("ndcg@10", "ndcg@5", "ndcg@1", "mrr", "map")


def print_sft_summary(result: Any, console: Any) -> None:
    from rich.table import Table

    if result.baseline or result.final:
        table = Table(title="held-out ranking quality", title_justify="left")
        table.add_column("metric")
        table.add_column("untrained", justify="right")
        table.add_column("trained", justify="right")
        table.add_column("change", justify="right")
        for key in KEYS:
            if key in result.final:
                before = result.baseline.get(key)
                after = result.final[key]
                change = f"{after - before:+.4f}" if before is not None else ""
                table.add_row(key, f"{before:.4f}" if before is not None else "-", f"{after:.4f}", change)
        console.print(table)
    console.print(
        f"run [bold]{result.run_id or '-'}[/]: {result.global_step} steps in {result.train_seconds:.1f}s; "
        f"model saved to [bold]{result.final_dir}[/]"
    )
