"""`rerankctl gpu`: show GPUs (table, JSON, watch) and pick free ones for CUDA_VISIBLE_DEVICES.

Testing hook: ``RERANKCTL_FAKE_GPUS=N`` (or ``nodriver``) replaces NVML with the deterministic
fake of `rerankctl.gpu.fake`; the test suite and the TUI snapshots use it, users never need it.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

gpu_app = typer.Typer(
    name="gpu",
    help="Show NVIDIA GPUs (utilisation, memory, temperature, power, processes) and pick free ones.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _source():
    from rerankctl.gpu.fake import default_source

    return default_source()


def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the snapshot as JSON.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh the table until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", "-n", min=0.1, help="Seconds between refreshes with --watch.")
    ] = 2.0,
    iterations: Annotated[
        int, typer.Option("--iterations", hidden=True, help="Stop --watch after this many refreshes (tests).")
    ] = 0,
) -> None:
    """Show the GPUs. Without an NVIDIA driver, prints why in one line and exits 0."""
    if ctx.invoked_subcommand is not None:
        return
    source = _source()
    ok, message = source.status()
    if as_json:
        snaps = source.snapshot_all() if ok else []
        typer.echo(json.dumps({"ok": ok, "message": message, "gpus": [s.to_dict() for s in snaps]}, indent=2))
        return
    if not ok:
        # No driver / no GPU is a normal state, not an error.
        typer.echo(message)
        return
    from rich.console import Console

    from rerankctl.gpu.render import render_gpus

    console = Console()
    if not watch:
        console.print(render_gpus(source.snapshot_all()))
        return
    from rich.live import Live

    done = 0
    try:
        with Live(render_gpus(source.snapshot_all()), console=console, auto_refresh=False) as live:
            while True:
                done += 1
                if iterations and done >= iterations:
                    break
                time.sleep(interval)
                live.update(render_gpus(source.snapshot_all()), refresh=True)
    except KeyboardInterrupt:
        pass


@gpu_app.command("pick")
def pick(
    n: Annotated[int, typer.Option("-n", "--count", help="How many GPUs to pick.")] = 1,
    min_free_mem: Annotated[
        float, typer.Option("--min-free-mem", help="Only GPUs with at least this much free memory (GiB).")
    ] = 0.0,
) -> None:
    """Print the CUDA_VISIBLE_DEVICES value of the N GPUs with the most free memory.

    Ties go to the lower utilisation. Indices are NVML's (PCI bus order): export
    CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers GPUs the same way. Exits 1 with a message
    when the request cannot be met or there is no GPU.

    Example: CUDA_VISIBLE_DEVICES=$(rerankctl gpu pick -n 2 --min-free-mem 20) rerankctl train sft ...
    """
    from rerankctl.gpu.pick import cuda_visible_devices, pick_gpus

    typer.echo(cuda_visible_devices(pick_gpus(n, min_free_mem, _source())))


gpu_app.callback()(show)


def register(app: typer.Typer) -> None:
    """Add the ``gpu`` group to the root app."""
    app.add_typer(gpu_app, name="gpu")
