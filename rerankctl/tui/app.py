"""`RerankctlApp`: the Textual dashboard over the run store and the GPUs.

Layout (fits 80x24): GPU panel on top, runs table, then the selected run's chart (metric
picker: ``m``, cycle: ``[``/``]``) next to its latest events. A timer starts a thread worker
every ``refresh_interval`` seconds; the worker asks the `DashboardModel` for what changed and
hands an immutable view back to the UI thread, so a slow disk never freezes the keyboard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from rerankctl.gpu.snapshot import GpuSource
from rerankctl.tui.model import DashboardModel, DashboardView
from rerankctl.tui.screens import CompareScreen, GpuScreen, LeaderboardScreen, MetricPicker, RunScreen
from rerankctl.tui.widgets import EventsPanel, GpuPanel, MetricChart, RunsTable

DASHBOARD_ACTIONS = {
    "pick_metric", "cycle_metric", "open_run", "toggle_mark", "compare", "leaderboard", "gpus",
}  # fmt: skip


class RerankctlApp(App):
    """The dashboard. ``store_path`` None means the default store; ``gpu_source`` None means NVML.

    Args:
        store_path: the SQLite run store to read.
        gpu_source: a `GpuSource` (the fake one in tests); default NVML (or ``RERANKCTL_FAKE_GPUS``).
        refresh_interval: seconds between refreshes.
        clock: the wall clock used for ETAs and durations (fixed in snapshot tests).
    """

    TITLE = "rerankctl"
    CSS = """
    #bottom { height: 2fr; min-height: 8; }
    #chart-pane { width: 2fr; }
    #events { width: 1fr; min-width: 24; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("m", "pick_metric", "Metric"),
        Binding("left_square_bracket", "cycle_metric(-1)", "Prev metric", show=False),
        Binding("right_square_bracket", "cycle_metric(1)", "Next metric", show=False),
        Binding("enter", "open_run", "Run", show=True, priority=False),
        Binding("space", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("l", "leaderboard", "Evals"),
        Binding("g", "gpus", "GPUs"),
        Binding("r", "refresh_now", "Refresh", show=False),
    ]

    def __init__(
        self,
        store_path: str | Path | None = None,
        gpu_source: GpuSource | None = None,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        from rerankctl.store import RunStore

        if gpu_source is None:
            from rerankctl.gpu.fake import default_source

            gpu_source = default_source()
        self.store = RunStore.open(store_path)
        self.model = DashboardModel(self.store, gpu_source, clock=clock)
        self.refresh_interval = refresh_interval
        self.view: DashboardView | None = None
        self.selected: str | None = None
        self.metric: str | None = None
        self.marked: set[str] = set()
        self.refreshes = 0
        self.first_view_at: float | None = None
        self.started_at = time.perf_counter()
        self.sub_title = Path(self.store.path).name

    def compose(self) -> ComposeResult:
        yield Header()
        yield GpuPanel(id="gpus")
        yield RunsTable(id="runs")
        with Horizontal(id="bottom"):
            with Vertical(id="chart-pane"):
                yield MetricChart(id="chart")
            yield EventsPanel(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self._dash(RunsTable).focus()
        self.refresh_data()
        self.set_interval(self.refresh_interval, self.refresh_data)

    def on_unmount(self) -> None:
        self.store.close()

    def _dash(self, widget_type):
        """A dashboard widget, whichever screen is on top (refreshes go on under other screens)."""
        return self.screen_stack[0].query_one(widget_type)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Dashboard keys work (and show in the footer) only on the dashboard itself."""
        return not (action in DASHBOARD_ACTIONS and len(self.screen_stack) > 1)

    # ---------------------------------------------------------------- reading
    def refresh_data(self) -> None:
        """Start a refresh unless one is still running (a slow refresh must not pile up)."""
        if not any(w.group == "refresh" and w.is_running for w in self.workers):
            self._refresh_worker(self.selected, self.metric)

    @work(thread=True, group="refresh")
    def _refresh_worker(self, selected: str | None, metric: str | None) -> None:
        view = self.model.refresh(selected, metric)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._apply, view)

    def _apply(self, view: DashboardView) -> None:
        self.view = view
        self.refreshes += 1
        if self.first_view_at is None:
            self.first_view_at = time.perf_counter()
        self._dash(GpuPanel).show(view.gpu_ok, view.gpu_message, view.gpus, view.gpu_history)
        table = self._dash(RunsTable)
        table.show(view.rows, self.marked)
        if self.selected is None and view.selected is not None:
            self.selected = view.selected
        if view.selected != self.selected:
            return  # the selection moved while this view was read; the next refresh follows it
        self.metric = view.key
        run = next((r for r in view.rows if r.id == view.selected), None)
        chart = self._dash(MetricChart)
        if run is None:
            chart.plot_series({}, "no runs yet")
        else:
            chart.plot_series({run.name: view.points}, f"{run.name}: {view.key or 'no metrics'}")
            last = view.points[-1] if view.points else None
            chart.border_subtitle = f"step {last[0]}" if last else ""
        self._dash(EventsPanel).show(view.events)

    # ---------------------------------------------------------------- events
    def on_data_table_row_highlighted(self, event: RunsTable.RowHighlighted) -> None:
        if event.data_table.id != "runs" or event.row_key is None:
            return
        run_id = event.row_key.value
        if run_id != self.selected:
            self.selected = run_id
            self._refresh_worker(self.selected, self.metric)

    def on_data_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        if event.data_table.id == "runs":
            self.action_open_run()

    # --------------------------------------------------------------- actions
    def action_refresh_now(self) -> None:
        self.refresh_data()

    def action_pick_metric(self) -> None:
        if self.view is None or not self.view.keys:
            self.notify("the selected run has no metrics yet", severity="warning")
            return

        def chosen(key: str | None) -> None:
            if key:
                self.set_metric(key)

        self.push_screen(MetricPicker(self.view.keys, self.metric), chosen)

    def set_metric(self, key: str) -> None:
        self.metric = key
        self._refresh_worker(self.selected, key)

    def action_cycle_metric(self, delta: int) -> None:
        keys = self.view.keys if self.view else []
        if keys:
            i = keys.index(self.metric) if self.metric in keys else 0
            self.set_metric(keys[(i + delta) % len(keys)])

    def action_toggle_mark(self) -> None:
        run_id = self._dash(RunsTable).current_run
        if run_id is None:
            return
        self.marked.symmetric_difference_update({run_id})
        if self.view is not None:
            self._dash(RunsTable).show(self.view.rows, self.marked)

    def action_open_run(self) -> None:
        run_id = self._dash(RunsTable).current_run
        if run_id is not None and len(self.screen_stack) == 1:
            self.push_screen(RunScreen(run_id))

    def action_compare(self) -> None:
        order = [r.id for r in self.view.rows] if self.view else []
        ids = [r for r in order if r in self.marked]
        current = self._dash(RunsTable).current_run
        if len(ids) < 2 and current is not None and current not in ids:
            ids.append(current)
        if len(ids) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        self.push_screen(CompareScreen(ids, self.metric))

    def action_leaderboard(self) -> None:
        self.push_screen(LeaderboardScreen())

    def action_gpus(self) -> None:
        self.push_screen(GpuScreen())
