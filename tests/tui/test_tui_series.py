"""The dashboard's pure helpers, against hand-computed values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from rerankctl.tui.series import (
    bar,
    downsample,
    ema,
    fmt_duration,
    fmt_value,
    leaderboard,
    sparkline,
    total_steps,
)


def test_ema_debiased():
    # w=0.5: s1 = 0.5*1 / (1-0.5) = 1; s2 = (0.25 + 1) / 0.75 = 1.6667; s3 = (0.625 + 1.5) / 0.875 = 2.428571
    assert ema([1, 2, 3], 0.5) == pytest.approx([1.0, 5 / 3, 2.125 / 0.875])
    assert ema([4, 5], 0.0) == [4, 5]
    out = ema([1.0, math.nan, 3.0], 0.5)
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == pytest.approx((0.25 + 1.5) / 0.75)
    with pytest.raises(ValueError):
        ema([1], 1.0)


def test_downsample_bucket_means():
    pts = [(i, float(i)) for i in range(10)]
    assert downsample(pts, 20) == pts
    # inner points 1..8 into 2 buckets: steps 1-4 (mean 2.5, middle step 3), 5-8 (mean 6.5, step 7)
    assert downsample(pts, 4) == [(0, 0.0), (3, 2.5), (7, 6.5), (9, 9.0)]
    assert len(downsample([(i, 1.0) for i in range(100_000)], 400)) == 400


def test_sparkline_bar_and_formatting():
    assert sparkline([0, 50, 100, None], 4) == "▁▅█ "
    assert sparkline([100], 3) == "  █"
    assert bar(50, 4) == "██░░"
    assert bar(56.25, 2) == "█▏"  # 9 eighths of 16
    assert bar(None, 5) == " N/A "
    assert [fmt_duration(s) for s in (42, 725, 11220, 90000, None)] == [
        "42s",
        "12m05s",
        "3h07m",
        "1d01h",
        "-",
    ]
    assert [fmt_value(v) for v in (0.27812, 1234567.0, 0.0001, None, math.nan)] == [
        "0.2781",
        "1.23e+06",
        "1.00e-04",
        "-",
        "nan",
    ]


def test_total_steps_from_config():
    assert total_steps({"max_steps": 1000}) == 1000
    assert total_steps({"training": {"num_training_steps": 50}}) == 50
    assert total_steps({"max_steps": -1, "lr": 1}) is None


def test_leaderboard_pivot():
    def E(model, ds, metric, value):
        return SimpleNamespace(model=model, run_id=None, dataset=ds, metric=metric, value=value)

    rows = [
        E("a", "d1", "ndcg@10", 0.5),
        E("a", "d2", "ndcg@10", 0.7),
        E("b", "d1", "ndcg@10", 0.9),
        E("c", "d1", "ndcg@10", 0.1),
        E("c", "d1", "ndcg@10", 0.8),
        E("c", "d2", "ndcg@10", 0.8),  # re-run wins
        E("a", "d1", "map", 0.2),
    ]
    datasets, ranked = leaderboard(rows, "ndcg@10")
    assert datasets == ["d1", "d2"]
    assert [(m, round(mean, 4)) for m, _, mean in ranked] == [("c", 0.8), ("a", 0.6), ("b", 0.9)]
    assert leaderboard(rows, "map")[1] == [("a", {"d1": 0.2}, 0.2)]
