"""`rerankctl train`: the training commands (sft, rl, reward, vl-reward).

Each trainer's command lives in its own module (``train_sft``, ``train_rl``,
``train_reward``, ``train_vl_reward``) exposing ``register(train_app)``.
"""

from __future__ import annotations

import importlib

import typer

TRAINER_MODULES = ("train_sft", "train_rl", "train_reward", "train_vl_reward")


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(
        no_args_is_help=True, help="Train rerankers (sft, rl) and reward models (reward, vl-reward)."
    )
    found = False
    for name in TRAINER_MODULES:
        module_name = f"rerankctl.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(train_app)
        found = True
    if found:
        app.add_typer(train_app, name="train")
