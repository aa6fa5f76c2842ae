"""`rerankctl train rl`: GRPO / DAPO / Dr.GRPO / DPO on top of an SFT reranker.

Its options are the fields of :class:`rerankctl.config.rl.RLConfig` (cli/_options.py builds them).
"""

from __future__ import annotations

import typer

from rerankctl.cli._distributed import launch_if_asked
from rerankctl.cli._options import register_config_command

DOC = """RL after SFT: GRPO, DAPO, Dr.GRPO, REINFORCE or DPO for a yes/no reranker (ranking or yes/no policy).

[bold]rerankctl train rl --preset tiny_rl --sft-model RUN/final[/] continues a `train sft --preset tiny` run.
"""


def run(cfg) -> None:
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.rl_runner import run_rl

    result = run_rl(cfg, console=Console(stderr=True))
    _print_summary(result, Console())


def _print_summary(result, console) -> None:
    """Held-out metrics of the SFT model (before RL) and after RL, then where the model went."""
    from rich.table import Table

    if result.final:
        table = Table(title="held-out ranking quality", title_justify="left")
        for name, justify in (
            ("metric", "left"),
            ("SFT", "right"),
            ("after RL", "right"),
            ("change", "right"),
        ):
            table.add_column(name, justify=justify)
        for key in ("ndcg@10", "ndcg@5", "ndcg@1", "mrr", "map"):
            if key in result.final:
                before, after = result.baseline.get(key), result.final[key]
                table.add_row(
                    key,
                    "-" if before is None else f"{before:.4f}",
                    f"{after:.4f}",
                    "" if before is None else f"{after - before:+.4f}",
                )
        console.print(table)
    console.print(
        f"run [bold]{result.run_id or '-'}[/]: {result.global_step} steps in {result.train_seconds:.1f}s; "
        f"model saved to [bold]{result.final_dir}[/]"
    )


def register(train_app: typer.Typer) -> None:
    from rerankctl.config.rl import RLConfig

    register_config_command(train_app, "rl", RLConfig, command="train rl", run=run, doc=DOC)
