"""The root Typer app, with command groups loaded lazily.

Each command group lives in its own module under ``rerankctl.cli`` and exposes
``register(app)``. Converting a Typer command tree into click commands is the
slow part of start-up (``train`` alone has a few hundred parameters), so the root
group lists the groups from the small table below and imports and converts a
group only when it is invoked or completed. ``rerankctl --help`` therefore loads
no group module at all, and ``rerankctl runs ls`` loads only ``cli/runs.py``.
"""

from __future__ import annotations

import importlib
import os
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from rerankctl import __version__
from rerankctl.cli._help import suggest

# name -> one-line help shown by `rerankctl --help` (a test checks it matches each group's own help).
# The order is the order of `rerankctl --help`.
GROUPS: dict[str, str] = {
    "data": "Validate, inspect, convert, split and generate data files.",
    "train": "Train rerankers (sft, rl) and reward models (reward, vl-reward).",
    "eval": "Evaluate rerankers (endpoints, local models) on MTEB reranking tasks or a local file.",
    "rerank": "Rank documents for a query with a local reranker.",
    "serve": "Serve a reranker over HTTP (Cohere/Jina/vLLM/TEI-compatible /rerank API).",
    "export": "Export a trained reranker as a standalone model directory (or import a GGUF model).",
    "gpu": "Show NVIDIA GPUs (utilisation, memory, temperature, power, processes) and pick free ones.",
    "runs": "List, inspect, compare, plot and export logged runs (addressed by id, id prefix or name).",
    "tui": "Watch GPUs and training runs live in the terminal (works over SSH, from 80x24).",
}


class _Placeholder(typer.core.TyperCommand):
    """What the root help lists for a group that is not loaded yet: its name and one line."""


class LazyGroup(TyperGroup):
    """A root group that imports a command group's module only when the group is used."""

    def _load(self, name: str) -> None:
        if name in self.commands or name not in GROUPS:
            return
        module = importlib.import_module(f"rerankctl.cli.{name}")
        holder = typer.Typer(rich_markup_mode=self.rich_markup_mode, pretty_exceptions_enable=False)
        holder.callback()(lambda: None)  # a callback keeps a one-command app a group
        module.register(holder)
        group = typer.main.get_command(holder)
        self.commands[name] = group.commands[name]

    def load_all(self) -> LazyGroup:
        """Load every group (for tests and tools that walk the whole command tree)."""
        for name in GROUPS:
            self._load(name)
            nested = self.commands.get(name)
            if hasattr(nested, "load_all"):  # a group that loads its own commands lazily (train)
                nested.load_all()
        return self

    def list_commands(self, ctx: Any) -> list[str]:
        loaded = [n for n in self.commands if n not in GROUPS]
        return [*GROUPS, *loaded]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in GROUPS:
            return _Placeholder(name=cmd_name, help=GROUPS[cmd_name], callback=None)
        return None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args:
            self._load(args[0])
        try:
            return super().resolve_command(ctx, args)
        except typer._click.exceptions.UsageError as exc:
            # suggest from the whole table, so `rerankctl trian sft` says "did you mean 'train'"
            if args:
                suggest(exc, args[0], list(GROUPS))
            raise


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rerankctl {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            envvar="RERANKCTL_HOME",
            help="Directory for the run store and caches (default: ~/.local/share/rerankctl).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train, serve and evaluate Qwen3 rerankers and reward models."""
    if home:
        # Children (trainers, accelerate workers) read the same home through the environment.
        os.environ["RERANKCTL_HOME"] = os.path.abspath(os.path.expanduser(home))


def build_app() -> typer.Typer:
    """The root app; its command groups load on first use."""
    from rerankctl.cli._help import install

    install()
    app = typer.Typer(
        name="rerankctl",
        cls=LazyGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=True,
    )
    app.callback()(_root)
    return app
