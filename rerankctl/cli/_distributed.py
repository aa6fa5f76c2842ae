"""The distributed options of every `train` command, declared once.

``@distributed_options`` adds ``--gpus``, ``--nnodes``, ``--node-rank``, ``--master-addr``,
``--master-port``, ``--accelerate-config``, ``--deepspeed`` and ``--fsdp`` to a command and hands
the command one ``distributed`` dict of config overrides (``distributed.<field>`` keys), so the
four trainers cannot drift apart. Help texts are the config fields' descriptions (``config/distributed_text.py``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from rerankctl.config.distributed_text import DESCRIPTIONS

PANEL = "Several GPUs / machines"

# (parameter name, flag, type)
_OPTIONS: list[tuple[str, str, Any]] = [
    ("gpus", "--gpus", str | None),
    ("nnodes", "--nnodes", int | None),
    ("node_rank", "--node-rank", int | None),
    ("master_addr", "--master-addr", str | None),
    ("master_port", "--master-port", int | None),
    ("accelerate_config", "--accelerate-config", str | None),
    ("deepspeed", "--deepspeed", str | None),
    ("fsdp", "--fsdp", bool | None),
]

_METAVARS = {
    "gpus": "LIST|auto|cpu:N",
    "nnodes": "N",
    "node_rank": "RANK",
    "master_addr": "HOST",
    "master_port": "PORT",
    "accelerate_config": "FILE",
    "deepspeed": "zero2|zero3|FILE",
}


def _parameter(name: str, flag: str, kind: Any) -> inspect.Parameter:
    help_text = DESCRIPTIONS[name]
    if kind == (bool | None):
        option = typer.Option(flag, help=help_text, rich_help_panel=PANEL, show_default=False)
    else:
        option = typer.Option(
            flag, help=help_text, rich_help_panel=PANEL, metavar=_METAVARS[name], show_default=False
        )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, option]
    )


def distributed_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the distributed options to ``command``, which receives them as ``distributed=``."""
    import typing

    signature = inspect.signature(command)
    # The command's own annotations are strings (postponed evaluation) naming its module's globals:
    # resolve them there, since Typer evaluates the wrapper's against this module.
    resolved = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=resolved.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != "distributed"
    ]
    extra = [_parameter(name, flag, kind) for name, flag, kind in _OPTIONS]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides = {f"distributed.{name}": kwargs.pop(name, None) for name, _, _ in _OPTIONS}
        return command(*args, distributed=overrides, **kwargs)

    # Typer reads the signature and the type hints; give it both with the added parameters.
    hints = {p.name: p.annotation for p in [*own, *extra]}
    if "return" in resolved:
        hints["return"] = resolved["return"]
    wrapper.__annotations__ = hints
    wrapper.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
    del wrapper.__wrapped__  # typing.get_type_hints must read the wrapper's own annotations
    return wrapper


def launch_if_asked(cfg: Any) -> None:
    """Start the workers of a distributed run and exit with their code, when the flags ask for one.

    Inside a worker (``RANK`` set by the launcher) nothing is started again.
    """
    import os

    dist = cfg.distributed
    if not dist.launches or "RANK" in os.environ:
        return
    import sys

    from rerankctl.train.launch import relaunch_distributed

    raise typer.Exit(relaunch_distributed(dist, sys.argv[1:]))
