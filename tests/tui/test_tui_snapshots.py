"""Snapshot tests of the dashboard at 80x24 (pytest-textual-snapshot; update with --snapshot-update).

The store, the fake GPUs and the clock are all fixed (see conftest.py), so the pictures are the
same on every run.
"""

from __future__ import annotations

from tui_fixtures import make_app, settle


def _steps(*keys):
    async def run_before(pilot):
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await pilot.pause()

    return run_before


def test_dashboard(snap_compare, demo_store):
    path, _ = demo_store
    assert snap_compare(make_app(path), terminal_size=(80, 24), run_before=_steps())


def test_dashboard_other_run_and_metric(snap_compare, demo_store):
    path, _ = demo_store
    # second run (reward-bt-hh), then the next metric after loss: lr
    assert snap_compare(
        make_app(path), terminal_size=(80, 24), run_before=_steps("down", "right_square_bracket")
    )


def test_compare_screen(snap_compare, demo_store):
    path, _ = demo_store
    assert snap_compare(
        make_app(path), terminal_size=(80, 24), run_before=_steps("space", "down", "down", "c")
    )


def test_run_screen_config_tab(snap_compare, demo_store):
    path, _ = demo_store
    assert snap_compare(make_app(path), terminal_size=(80, 24), run_before=_steps("enter", "right"))


def test_leaderboard(snap_compare, demo_store):
    path, _ = demo_store
    assert snap_compare(make_app(path), terminal_size=(80, 24), run_before=_steps("l"))
