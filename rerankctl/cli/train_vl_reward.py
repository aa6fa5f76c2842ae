"""`rerankctl train vl-reward`: a Qwen2-VL / Qwen2.5-VL reward model with an MLP score head.

Its options are the fields of :class:`rerankctl.config.vl_reward.VLRewardConfig` (cli/_options.py builds them).
"""

from __future__ import annotations

import os

import typer

from rerankctl.cli._distributed import launch_if_asked
from rerankctl.cli._options import register_config_command

DOC = """Train a vision-language reward model (Qwen2-VL + MLP head, scores from --score-min to --score-max).

[bold]--preset tiny_vl_reward[/] runs on a CPU with built-in synthetic images.
"""


def check(cfg, overrides):
    if cfg.load_weights_only and not cfg.resume:
        from rerankctl.errors import UsageError

        raise UsageError(
            "--load-weights-only needs --resume", hint="pass --resume checkpoint_step_N (or latest)"
        )
    return cfg


def run(cfg) -> None:
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.vl_reward import run_vl_reward, summary_lines

    result = run_vl_reward(cfg, console=Console(stderr=True))
    if os.environ.get("RANK", "0") == "0":  # the summary once, from global rank 0
        for line in summary_lines(result):
            typer.echo(line)


def register(train_app: typer.Typer) -> None:
    from rerankctl.config.vl_reward import VLRewardConfig

    register_config_command(
        train_app, "vl-reward", VLRewardConfig, command="train vl-reward", run=run, doc=DOC, finish=check
    )
