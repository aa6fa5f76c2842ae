"""`rerankctl tui`: the live dashboard (GPUs, runs, curves, events, compare, eval leaderboard)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tui(
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="Run store to read (default: $RERANKCTL_HOME/runs.db).", show_default=False
        ),
    ] = None,
    refresh: Annotated[float, typer.Option("--refresh", min=0.1, help="Seconds between refreshes.")] = 1.0,
) -> None:
    """Watch GPUs and training runs live in the terminal (works over SSH, from 80x24).

    Keys: arrows select a run, enter opens it, m picks the metric ([ and ] cycle), space marks
    runs and c compares them, l shows the eval leaderboard, g the GPU processes, q quits.
    """
    from rerankctl.tui.app import RerankctlApp

    RerankctlApp(store_path=store, refresh_interval=refresh).run()


def register(app: typer.Typer) -> None:
    """Add the ``tui`` command to the root app."""
    app.command("tui")(tui)
