"""Dashboard widgets: GPU panel, runs table, metric chart, events list."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from rerankctl.gpu.render import short_name
from rerankctl.gpu.snapshot import GIB, GpuSnapshot
from rerankctl.tui.model import RunRow
from rerankctl.tui.series import bar, fmt_duration, fmt_value, sparkline

STATUS_STYLE = {"running": "bold green", "completed": "cyan", "failed": "bold red", "killed": "yellow"}
LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


def gpu_line(s: GpuSnapshot, history: list[float | None], width: int) -> Text:
    """One GPU in one line: index, name, util bar, memory bar, temperature, power, util history."""
    t = Text(no_wrap=True, overflow="crop")
    t.append(f"{s.index} ", style="bold")
    t.append(f"{short_name(s.name)[:14]:<14} ")
    util_style = "green" if (s.util or 0) < 50 else "yellow" if (s.util or 0) < 90 else "red"
    t.append(bar(s.util, 8), style=util_style)
    t.append(f" {'N/A' if s.util is None else f'{s.util:3.0f}%'} ")
    t.append("mem ", style="dim")
    t.append(bar(s.mem_percent, 6), style="magenta")
    mem = "N/A" if s.mem_used is None else f"{s.mem_used / GIB:4.1f}G"
    t.append(f" {mem:>5} ")
    t.append(f"{'N/A' if s.temperature is None else f'{s.temperature:.0f}°C':>4} ")
    t.append(f"{'N/A' if s.power is None else f'{s.power:.0f}W':>4} ")
    if s.processes:
        t.append(f"{len(s.processes)}p ", style="dim")
    spark_width = max(width - t.cell_len, 0)
    if spark_width:
        t.append(sparkline(history, spark_width), style="green")
    return t


class GpuPanel(Widget):
    """One line per GPU, or the reason there are none; laid out at render time for the real width."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; max-height: 10; border: round $primary-darken-1; padding: 0 1; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "GPUs"
        self._data: tuple[bool, str, list[GpuSnapshot], dict[int, list]] = (False, "reading GPUs...", [], {})

    def show(self, ok: bool, message: str, gpus: list[GpuSnapshot], history: dict[int, list]) -> None:
        self._data = (ok, message, gpus, history)
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        ok, _, gpus, _ = self._data
        return len(gpus) if ok and gpus else 1

    def render(self) -> Text:
        ok, message, gpus, history = self._data
        if not ok or not gpus:
            return Text(message, style="dim")
        width = max(self.content_size.width, 40)
        return Text("\n").join(gpu_line(s, history.get(s.index, []), width) for s in gpus)


RUN_COLUMNS = [("mark", " "), ("name", "Run"), ("kind", "Kind"), ("status", "Status"), ("step", "Step"),
               ("loss", "Loss"), ("rate", "it/s"), ("eta", "ETA")]  # fmt: skip


def _cells(row: RunRow, marked: bool) -> list:
    rate = "-" if row.rate is None else (f"{row.rate:.2f}" if row.rate < 100 else f"{row.rate:.0f}")
    return [
        Text("●" if marked else " ", style="bold magenta"),
        row.name,
        row.kind,
        Text(row.status, style=STATUS_STYLE.get(row.status, "")),
        "-" if row.step is None else str(row.step),
        fmt_value(row.loss),
        rate,
        fmt_duration(row.eta),
    ]


class RunsTable(DataTable):
    """The runs table; row keys are run ids. Updates in place so the cursor stays on its run."""

    DEFAULT_CSS = """
    RunsTable { height: 1fr; min-height: 4; border: round $primary-darken-1; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.border_title = "Runs"
        for key, label in RUN_COLUMNS:
            self.add_column(label, key=key)
        self._order: list[str] = []
        self._shown: dict[str, list] = {}

    def show(self, rows: list[RunRow], marked: set[str]) -> None:
        order = [r.id for r in rows]
        cells = {r.id: _cells(r, r.id in marked) for r in rows}
        if order != self._order:
            keep = (
                self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value if self.row_count else None
            )
            self.clear()
            for run_id in order:
                self.add_row(*cells[run_id], key=run_id)
            self._order = order
            if keep in order:
                self.move_cursor(row=order.index(keep), animate=False)
        else:
            for run_id in order:
                old = self._shown.get(run_id)
                for i, ((col, _), value) in enumerate(zip(RUN_COLUMNS, cells[run_id], strict=True)):
                    if old is None or str(old[i]) != str(value):
                        self.update_cell(run_id, col, value)
        self._shown = cells
        self.border_subtitle = f"{len(rows)} runs"

    @property
    def current_run(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value


class MetricChart(PlotextPlot):
    """A plotext line chart of one or more (step, value) series."""

    DEFAULT_CSS = """
    MetricChart { border: round $primary-darken-1; height: 1fr; min-height: 6; }
    """

    def plot_series(self, series: dict[str, list[tuple[int, float]]], title: str, ylabel: str = "") -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xlabel("step")
        drawn = 0
        for label, points in series.items():
            pts = [(s, v) for s, v in points if v is not None and not math.isnan(v)]
            if not pts:
                continue
            xs = [s for s, _ in pts]
            ys = [v for _, v in pts]
            plt.plot(xs, ys, marker="braille", label=label if len(series) > 1 else None)
            drawn += 1
        if not drawn:
            plt.title("no data yet")
        self.border_title = title
        self.refresh()


class EventsPanel(Static):
    """The latest log lines of the selected run, newest last (times in UTC, so snapshots are stable)."""

    DEFAULT_CSS = """
    EventsPanel { border: round $primary-darken-1; height: 1fr; padding: 0 1; overflow-y: auto; }
    """

    def show(self, events: list, limit: int = 30) -> None:
        self.border_title = "Events"
        if not events:
            self.update(Text("no events", style="dim"))
            return
        lines = []
        for e in events[-limit:]:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(time.strftime("%H:%M:%S ", time.gmtime(e.time)), style="dim")
            if e.step is not None:
                line.append(f"[{e.step}] ", style="dim")
            line.append(e.message, style=LEVEL_STYLE.get(e.level, ""))
            lines.append(line)
        text = Text("\n").join(lines)
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.update(text)
