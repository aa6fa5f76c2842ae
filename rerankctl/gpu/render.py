"""Rich renderings of GPU snapshots (`rerankctl gpu` and the dashboard's GPU screen).

rich is imported inside the functions: the CLI imports this module only when it prints.
"""

from __future__ import annotations


def text_bar(percent: float | None, width: int = 10) -> str:
    """A text bar "████░░░░░░ 42%" (N/A when unknown)."""
    if percent is None:
        return "N/A"
    filled = round(max(0.0, min(percent, 100.0)) / 100 * width)
    return f"{'█' * filled}{'░' * (width - filled)} {percent:3.0f}%"


def short_name(name: str | None) -> str:
    """The name without the vendor: "NVIDIA H100 80GB HBM3" -> "H100 80GB HBM3"."""
    if name is None:
        return "N/A"
    return name[7:] if name.startswith("NVIDIA ") else name


def render_gpus(snapshots):
    """A rich renderable that fits 80 columns: one row per GPU, then one row per process."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    from rerankctl.gpu.snapshot import GIB, fmt_mem, fmt_na

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("GPU", "Name", "Util", "Memory", "Temp", "Power", "Fan"):
        table.add_column(col, no_wrap=True, min_width=3)
    for s in snapshots:
        if s.mem_used is None or s.mem_total is None:
            mem = "N/A"
        else:
            mem = f"{s.mem_used / GIB:.1f}/{s.mem_total / GIB:.1f}G {s.mem_percent:3.0f}%"
        power = f"{fmt_na(s.power, '{:.0f}')}/{fmt_na(s.power_limit, '{:.0f}')}W"
        table.add_row(
            str(s.index),
            short_name(s.name),
            text_bar(s.util, width=8),
            mem,
            fmt_na(s.temperature, "{:.0f}°C"),
            power,
            fmt_na(s.fan, "{:.0f}%"),
        )
    procs = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, expand=True)
    for col in ("GPU", "PID", "User", "GPU mem", "Command"):
        procs.add_column(col, no_wrap=True, overflow="ellipsis", ratio=1 if col == "Command" else None)
    n_procs = 0
    for s in snapshots:
        for p in s.processes:
            n_procs += 1
            procs.add_row(str(s.index), str(p.pid), fmt_na(p.user), fmt_mem(p.mem_used), fmt_na(p.command))
    if n_procs == 0:
        return Group(table, "No GPU processes.")
    return Group(table, procs)
