"""The root Typer app and the registration of the command groups.

Each command group lives in its own module under ``rerankctl.cli`` and exposes
``register(app)``. Modules here import only Typer and the standard library at
module level so that ``rerankctl --help`` and shell completion stay fast; the
heavy libraries are imported inside the command functions.
"""

from __future__ import annotations

import importlib
import os
from typing import Annotated, Optional

import typer

from rerankctl import __version__

# The order is the order of `rerankctl --help`.
GROUP_MODULES = ("data", "train", "eval", "rerank", "serve", "export", "gpu", "runs", "tui")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rerankctl {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
    home: Annotated[
        Optional[str],
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
    """Build the root app with every command group that is installed."""
    app = typer.Typer(
        name="rerankctl",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=True,
    )
    app.callback()(_root)
    for name in GROUP_MODULES:
        module_name = f"rerankctl.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A group that is not written yet does not appear; any other missing module is a bug.
            if exc.name == module_name:
                continue
            raise
        module.register(app)
    return app
