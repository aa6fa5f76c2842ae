"""`rerankctl train`: the training commands (sft, rl, reward, vl-reward).

Each trainer's command lives in its own module (``train_sft``, ``train_rl``,
``train_reward``, ``train_vl_reward``) exposing ``register(train_app)``. Each command's options are
built from its config model (cli/_options.py), which imports that config and converts ~80 options;
the group loads only the trainer that is invoked (`train sft --loss-type bogus` builds one
command, not four), and all of them for `train --help` and completion.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from rerankctl.cli._help import suggest

# command name -> module under rerankctl.cli (the order of `rerankctl train --help`)
TRAINERS: dict[str, str] = {
    "sft": "train_sft",
    "rl": "train_rl",
    "reward": "train_reward",
    "vl-reward": "train_vl_reward",
}


class LazyTrainGroup(TyperGroup):
    """The ``train`` group: a trainer's command is built when it is first looked up."""

    def _load(self, name: str) -> None:
        if name in self.commands or name not in TRAINERS:
            return
        module_name = f"rerankctl.cli.{TRAINERS[name]}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return
            raise
        holder = typer.Typer(rich_markup_mode=self.rich_markup_mode, pretty_exceptions_enable=False)
        holder.callback()(lambda: None)  # a callback keeps a one-command app a group
        module.register(holder)
        self.commands[name] = typer.main.get_command(holder).commands[name]

    def load_all(self) -> LazyTrainGroup:
        for name in TRAINERS:
            self._load(name)
        return self

    def list_commands(self, ctx: Any) -> list[str]:
        self.load_all()  # help and completion list every trainer with its own help line
        return [name for name in TRAINERS if name in self.commands]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        self._load(cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except typer._click.exceptions.UsageError as exc:
            if args:
                suggest(exc, args[0], list(TRAINERS))
            raise


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(
        cls=LazyTrainGroup,
        no_args_is_help=True,
        help="Train rerankers (sft, rl) and reward models (reward, vl-reward).",
    )
    app.add_typer(train_app, name="train")
