"""Secondary screens: metric picker, run details, compare, eval leaderboard, GPU details.

Each screen reads through the app's `DashboardModel` in a thread worker and updates its widgets
with ``call_from_thread``, so no screen blocks the UI on SQLite.
"""

from __future__ import annotations

import json
import math
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, OptionList, Static, TabbedContent, TabPane

from rerankctl.tui.series import ema, fmt_value, leaderboard
from rerankctl.tui.widgets import EventsPanel, MetricChart

SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)


class MetricPicker(ModalScreen[str | None]):
    """Choose one metric key from a list; dismisses with the key (or None on escape)."""

    DEFAULT_CSS = """
    MetricPicker { align: center middle; }
    MetricPicker > OptionList { width: 40; max-height: 16; border: round $accent; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, keys: list[str], current: str | None) -> None:
        super().__init__()
        self.keys = keys
        self.current = current

    def compose(self) -> ComposeResult:
        options = OptionList(*self.keys, id="metric-options")
        options.border_title = "Metric"
        yield options

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.keys:
            options.highlighted = self.keys.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.keys[event.option_index])


class RunScreen(Screen):
    """One run: all its curves, its config, artifacts and events."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="run-tabs"):
            with TabPane("Curves", id="tab-curves"):
                yield VerticalScroll(id="curves")
            with TabPane("Config", id="tab-config"):
                yield VerticalScroll(Static(id="config"))
            with TabPane("Artifacts", id="tab-artifacts"):
                yield DataTable(id="artifacts", cursor_type="row")
            with TabPane("Events", id="tab-events"):
                yield EventsPanel(id="run-events")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="run-screen")
    def load(self) -> None:
        details = self.app.model.run_details(self.run_id)
        self.app.call_from_thread(self._show, details)

    def _show(self, details: dict) -> None:
        run = details["run"]
        self.title = f"{run.name} ({run.kind}, {run.status})"
        curves = self.query_one("#curves", VerticalScroll)
        curves.remove_children()
        charts = []
        for key, points in details["curves"].items():
            chart = MetricChart(classes="run-curve")
            chart.styles.height = 12
            charts.append((chart, key, points))
        if charts:
            curves.mount_all([c for c, _, _ in charts])
            for chart, key, points in charts:
                chart.plot_series({key: points}, key)
        else:
            curves.mount(Static("no metrics logged", classes="dim"))
        lines = [
            f"id: {run.id}",
            f"kind: {run.kind}   status: {run.status}",
            f"output: {run.output_dir or '-'}",
            f"tags: {', '.join(run.tags) or '-'}",
        ]
        if run.error:
            lines.append(f"error: {run.error}")
        lines += ["", "config:", json.dumps(run.config, indent=2, sort_keys=True, default=str)]
        if run.summary:
            lines += ["", "summary:", json.dumps(run.summary, indent=2, sort_keys=True, default=str)]
        self.query_one("#config", Static).update(Text("\n".join(lines)))
        table = self.query_one("#artifacts", DataTable)
        table.clear(columns=True)
        table.add_columns("Kind", "Step", "Path")
        for a in details["artifacts"]:
            table.add_row(a.kind, "-" if a.step is None else str(a.step), a.path)
        self.query_one("#run-events", EventsPanel).show(details["events"], limit=50)


class CompareScreen(Screen):
    """Overlaid, EMA-smoothed curves of two or more runs for one metric."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("m", "pick_metric", "Metric"),
        Binding("s", "smoothing(1)", "Smoother"),
        Binding("S", "smoothing(-1)", "Rougher"),
    ]

    def __init__(self, run_ids: list[str], key: str | None) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.key = key
        self.smoothing_index = 2  # 0.8: smooth enough to see the trend of a noisy loss
        self.keys: list[str] = []
        self.raw: dict[str, list[tuple[int, float]]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield MetricChart(id="compare-chart")
        yield Static(id="compare-legend")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @property
    def smoothing(self) -> float:
        return SMOOTHING[self.smoothing_index]

    @work(thread=True, exclusive=True, group="compare")
    def load(self) -> None:
        model = self.app.model
        keys = sorted({k for r in self.run_ids for k in model.keys(r)})
        key = self.key if self.key in keys else (keys[0] if keys else None)
        raw = model.compare(self.run_ids, key) if key else {}
        self.app.call_from_thread(self._loaded, keys, key, raw)

    def _loaded(self, keys: list[str], key: str | None, raw: dict) -> None:
        self.keys, self.key, self.raw = keys, key, raw
        self.redraw()

    def smoothed(self) -> dict[str, list[tuple[int, float]]]:
        """The curves as drawn: EMA over the full series, then downsampled."""
        from rerankctl.tui.series import downsample

        out = {}
        for name, points in self.raw.items():
            steps = [s for s, _ in points]
            values = ema([v for _, v in points], self.smoothing)
            out[name] = downsample(list(zip(steps, values, strict=True)), 400)
        return out

    def redraw(self) -> None:
        title = f"compare: {self.key or 'no common metric'} (EMA {self.smoothing:g})"
        self.query_one(MetricChart).plot_series(self.smoothed(), title)
        legend = Text(no_wrap=True, overflow="ellipsis")
        for name, points in self.raw.items():
            last = points[-1][1] if points else math.nan
            legend.append(f"{name}: last {fmt_value(last)} @ {points[-1][0] if points else '-'}   ")
        self.query_one("#compare-legend", Static).update(legend)

    def action_smoothing(self, delta: int) -> None:
        self.smoothing_index = min(max(self.smoothing_index + delta, 0), len(SMOOTHING) - 1)
        self.redraw()

    def action_pick_metric(self) -> None:
        def chosen(key: str | None) -> None:
            if key:
                self.key = key
                self.load()

        self.app.push_screen(MetricPicker(self.keys, self.key), chosen)


class LeaderboardScreen(Screen):
    """Evaluation results (`evals` table): models by datasets for one metric, best mean first."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("m", "next_metric", "Next metric")]
    DEFAULT_CSS = """
    LeaderboardScreen > DataTable { border: round $primary-darken-1; height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []
        self.metric: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="leaderboard", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="leaderboard")
    def load(self) -> None:
        rows = self.app.model.evals()
        self.app.call_from_thread(self._loaded, rows)

    def metrics(self) -> list[str]:
        return sorted({r.metric for r in self.rows})

    def _loaded(self, rows: list) -> None:
        self.rows = rows
        metrics = self.metrics()
        if self.metric not in metrics:
            self.metric = next((m for m in ("ndcg@10", "ndcg_at_10", "map", "mrr") if m in metrics), None)
            self.metric = self.metric or (metrics[0] if metrics else None)
        self.redraw()

    def redraw(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        names = {}
        for run in self.app.model.runs.values():
            names[run.id] = run.name
        datasets, ranked = leaderboard(
            self.rows, self.metric or "", lambda r: r.model or names.get(r.run_id, r.run_id)
        )
        table.border_title = f"Leaderboard: {self.metric or 'no evals yet'}"
        table.border_subtitle = "m: next metric"
        table.add_columns("#", "Model", "Mean", *datasets)
        for i, (model, values, mean) in enumerate(ranked, 1):
            table.add_row(str(i), model, fmt_value(mean), *(fmt_value(values.get(d)) for d in datasets))

    def action_next_metric(self) -> None:
        metrics = self.metrics()
        if metrics:
            i = metrics.index(self.metric) if self.metric in metrics else -1
            self.metric = metrics[(i + 1) % len(metrics)]
            self.redraw()


class GpuScreen(Screen):
    """Every GPU with its processes (the `rerankctl gpu` table), refreshed with the dashboard."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Vertical(Static(id="gpu-table"))
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(max(self.app.refresh_interval, 0.5), self.redraw)

    def redraw(self) -> None:
        from rerankctl.gpu.render import render_gpus

        view = self.app.view
        static = self.query_one("#gpu-table", Static)
        if view is None or not view.gpu_ok:
            static.update(view.gpu_message if view else "reading GPUs...")
        else:
            static.update(render_gpus(view.gpus))
        self.sub_title = time.strftime("%H:%M:%S UTC", time.gmtime(self.app.model.clock()))
