"""Headless dashboard tests with App.run_test() and Pilot: select, switch metric, compare, screens."""

from __future__ import annotations

import math

import pytest
from tui_fixtures import RUNS, loss_at, make_app, settle

from rerankctl.tui.screens import CompareScreen, LeaderboardScreen, MetricPicker, RunScreen
from rerankctl.tui.widgets import MetricChart, RunsTable

pytestmark = pytest.mark.asyncio


def series_of(name, key, step=10):
    last = RUNS[name][4]
    return [(s, loss_at(name, s)) for s in range(0, last + 1, step)] if key == "loss" else None


async def test_select_run_switch_metric_open_compare(demo_store):
    path, ids = demo_store
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(RunsTable)
        # Newest first; the running run is selected and its loss is charted.
        assert [table.get_row_at(i)[1] for i in range(table.row_count)] == [
            "sft-qwen3-4b-lora",
            "reward-bt-hh",
            "sft-qwen3-0.6b-base",
        ]
        row = table.get_row_at(0)
        assert (str(row[3]), row[4], row[5]) == ("running", "300", "0.278")
        # 300 steps in 610 s (fixed clock) -> 0.49 it/s; 700 steps left -> 1423 s
        assert (row[6], row[7]) == ("0.49", "23m43s")
        assert app.selected == ids["sft-qwen3-4b-lora"] and app.metric == "loss"
        assert app.view.points == series_of("sft-qwen3-4b-lora", "loss")
        assert app.query_one(MetricChart).border_title == "sft-qwen3-4b-lora: loss"

        # Select the second run with the keyboard.
        await pilot.press("down")
        await settle(pilot, 2)
        assert app.selected == ids["reward-bt-hh"]
        assert app.view.keys == ["accuracy", "eval/ndcg@10", "loss", "lr"]
        assert app.view.points == series_of("reward-bt-hh", "loss")
        assert app.query_one(MetricChart).border_title == "reward-bt-hh: loss"
        assert [e.message for e in app.view.events][-1] == "CUDA out of memory"

        # Switch metric through the picker: highlighted on "loss" (index 2), two up is "accuracy".
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MetricPicker)
        await pilot.press("up", "up", "enter")
        await settle(pilot, 3)
        assert app.metric == "accuracy"
        assert app.view.points[-1] == (120, round(0.5 + 0.3 * (1 - math.exp(-120 / 50)), 6))
        assert app.query_one(MetricChart).border_title == "reward-bt-hh: accuracy"
        await pilot.press("right_square_bracket")  # cycle to the next key
        await settle(pilot, 4)
        assert app.metric == "eval/ndcg@10"
        assert app.view.points == [(100, 0.62)]

        # Mark two runs and compare them.
        await pilot.press("space", "down", "space", "c")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.run_ids == [ids["reward-bt-hh"], ids["sft-qwen3-0.6b-base"]]
        assert screen.key == "eval/ndcg@10"
        assert screen.raw == {
            "reward-bt-hh": [(100, 0.62)],
            "sft-qwen3-0.6b-base": [(s, round(0.6 + s / 5000, 6)) for s in (100, 200, 300, 400, 500)],
        }
        # Pick loss in the compare screen; smoothing 0.8 is applied to the drawn curves.
        await pilot.press("m")
        await pilot.pause()
        keys = app.screen.keys
        await pilot.press(*["down"] * (keys.index("loss") - keys.index("eval/ndcg@10")), "enter")
        await settle(pilot)
        assert screen.key == "loss"
        assert screen.raw["sft-qwen3-0.6b-base"] == series_of("sft-qwen3-0.6b-base", "loss")
        smooth = screen.smoothed()["reward-bt-hh"]
        values = [v for _, v in series_of("reward-bt-hh", "loss")]
        expected, acc = [], 0.0
        for n, x in enumerate(values, 1):
            acc = 0.8 * acc + 0.2 * x
            expected.append(acc / (1 - 0.8**n))
        assert [round(v, 9) for _, v in smooth] == [round(v, 9) for v in expected]
        await pilot.press("s")
        assert screen.smoothing == 0.9
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)


async def test_compare_needs_two_runs(demo_store):
    path, _ = demo_store
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")  # nothing marked: only the highlighted run
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("space", "c")  # the marked run is also the highlighted one
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("down", "c")  # marked + highlighted
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen) and len(app.screen.run_ids) == 2


async def test_run_screen_and_leaderboard(demo_store):
    path, ids = demo_store
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down")
        await settle(pilot, 2)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen) and screen.run_id == ids["sft-qwen3-0.6b-base"]
        charts = screen.query(".run-curve")
        assert sorted(c.border_title for c in charts) == ["eval/ndcg@10", "loss", "lr"]
        config = str(screen.query_one("#config").render())
        assert '"max_steps": 500' in config and '"loss_type": "listnet"' in config
        artifacts = screen.query_one("#artifacts")
        assert [artifacts.get_row_at(i)[1] for i in range(artifacts.row_count)] == [
            "100",
            "200",
            "300",
            "400",
            "500",
        ]
        await pilot.press("escape", "l")
        await settle(pilot)
        board = app.screen
        assert isinstance(board, LeaderboardScreen) and board.metric == "ndcg@10"
        table = board.query_one("#leaderboard")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        # two-dataset models by mean first, then the run evaluated on one dataset
        assert [(r[1], r[2]) for r in rows] == [
            ("qwen3-reranker-4b", "0.5403"),
            ("qwen3-reranker-0.6b", "0.4871"),
            ("sft-qwen3-0.6b-base", "0.6501"),
        ]
        await pilot.press("m")
        assert board.metric == "map"
        assert table.row_count == 1 and table.get_row_at(0)[1] == "qwen3-reranker-4b"


async def test_empty_store_and_no_gpu(tmp_path):
    from rerankctl.gpu.fake import FakeGpuSource

    app = make_app(tmp_path / "empty.db", gpu_source=FakeGpuSource(driver=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.view.rows == [] and app.view.selected is None
        assert "no NVIDIA driver found" in str(app.query_one("#gpus").render())
        await pilot.press("m", "c", "enter")
        await pilot.pause()
        assert len(app.screen_stack) == 1
