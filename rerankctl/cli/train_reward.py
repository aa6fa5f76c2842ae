"""`rerankctl train reward`: a Bradley-Terry reward model (Qwen3 backbone + value head).

Its options are the fields of :class:`rerankctl.config.reward.RewardConfig` (cli/_options.py builds them).
"""

from __future__ import annotations

import typer

from rerankctl.cli._distributed import launch_if_asked
from rerankctl.cli._options import register_config_command

DOC = """Train a Bradley-Terry reward model: [bold]-log σ(r_chosen − r_rejected − margin)[/].

Writes [bold]final_model/[/], [bold]best_model_step_N/[/], [bold]checkpoint_step_N/[/] and
[bold]evaluation_report.json[/] (+ .md, histogram PNG). [bold]--preset tiny_reward[/] runs on a CPU in
about a minute.
"""


def run(cfg) -> None:
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.reward import run_reward
    from rerankctl.train.reward_report import print_reward_summary
    from rerankctl.train.reward_store import is_main_process

    result = run_reward(cfg, console=Console(stderr=True))
    if is_main_process():
        print_reward_summary(result)


def register(train_app: typer.Typer) -> None:
    from rerankctl.config.reward import RewardConfig, apply_size

    register_config_command(
        train_app, "reward", RewardConfig, command="train reward", run=run, doc=DOC, finish=apply_size
    )
