"""`rerankctl train sft`: fine-tune a Qwen3 yes/no reranker with a listwise loss.

Its options are the fields of :class:`rerankctl.config.sft.SFTConfig` (cli/_options.py builds them).
"""

from __future__ import annotations

import typer

from rerankctl.cli._distributed import launch_if_asked
from rerankctl.cli._options import register_config_command

DOC = """Fine-tune a Qwen3 yes/no reranker on query groups with a listwise loss.

[bold]rerankctl train sft --preset tiny[/] trains a tiny model on built-in data in ~2 minutes on a CPU.
"""


def run(cfg) -> None:
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.sft_runner import is_main_process, run_sft
    from rerankctl.train.summary import print_sft_summary

    result = run_sft(cfg, console=Console(stderr=True))
    if is_main_process():
        print_sft_summary(result, console=Console())


def register(train_app: typer.Typer) -> None:
    from rerankctl.config.sft import SFTConfig

    register_config_command(train_app, "sft", SFTConfig, command="train sft", run=run, doc=DOC)
