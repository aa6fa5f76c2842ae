"""Pure helpers for the dashboard: smoothing, downsampling, sparklines, leaderboards, formatting."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

SPARK_CHARS = "▁▂▃▄▅▆▇█"
LOSS_KEYS = ("loss", "train/loss", "train_loss")
# Config keys that say how many optimiser steps a run will take (for the ETA).
TOTAL_STEP_KEYS = ("max_steps", "total_steps", "num_training_steps")


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard-style smoothing: ``s_t = w*s_{t-1} + (1-w)*x_t``, debiased so s_0 = x_0.

    ``weight`` 0 returns the values unchanged; NaN values are carried through without
    disturbing the running average.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out: list[float] = []
    last = 0.0
    n = 0
    for x in values:
        if x is None or math.isnan(x):
            out.append(math.nan)
            continue
        n += 1
        last = last * weight + (1.0 - weight) * x
        out.append(last / (1.0 - weight**n))
    return out


def downsample(points: Sequence[tuple[int, float]], max_points: int) -> list[tuple[int, float]]:
    """At most ``max_points`` points: bucket means of steps and values, first and last kept.

    A chart 80 cells wide cannot show 25,000 points; averaging buckets (rather than taking every
    k-th point) keeps the curve's level honest when it is noisy.
    """
    n = len(points)
    if n <= max_points or max_points < 3:
        return list(points)
    inner = points[1:-1]
    buckets = max_points - 2
    out = [points[0]]
    size = len(inner) / buckets
    for b in range(buckets):
        chunk = inner[int(b * size) : int((b + 1) * size)]
        vals = [v for _, v in chunk if not math.isnan(v)]
        if not chunk:
            continue
        step = chunk[len(chunk) // 2][0]
        out.append((step, sum(vals) / len(vals) if vals else math.nan))
    out.append(points[-1])
    return out


def sparkline(values: Iterable[float | None], width: int, lo: float = 0.0, hi: float = 100.0) -> str:
    """The last ``width`` values as block characters scaled to [lo, hi]; N/A as a space."""
    vals = list(values)[-width:]
    chars = []
    for v in vals:
        if v is None or math.isnan(v):
            chars.append(" ")
            continue
        frac = 0.0 if hi <= lo else (min(max(v, lo), hi) - lo) / (hi - lo)
        chars.append(SPARK_CHARS[min(int(frac * len(SPARK_CHARS)), len(SPARK_CHARS) - 1)])
    return "".join(chars).rjust(width)


def bar(percent: float | None, width: int) -> str:
    """A bar of ``width`` cells with eighth-block resolution; empty cells as light shade."""
    if percent is None or math.isnan(percent):
        return "N/A".center(width)
    eighths = round(min(max(percent, 0.0), 100.0) / 100.0 * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return text + "░" * (width - len(text))


def fmt_duration(seconds: float | None) -> str:
    """``"3h07m"``, ``"12m05s"``, ``"42s"``; ``"-"`` when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        return "-"
    s = int(round(seconds))
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def fmt_value(value: float | None) -> str:
    """A metric value in at most 7 characters."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    a = abs(value)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{value:.2e}"
    return f"{value:.4g}"


def total_steps(config: dict) -> int | None:
    """How many steps a run will take, from its config (top level or one table down)."""
    tables = [config] + [v for v in config.values() if isinstance(v, dict)]
    for table in tables:
        for key in TOTAL_STEP_KEYS:
            value = table.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return int(value)
    return None


def loss_key(keys: Iterable[str]) -> str | None:
    """The key that holds the training loss, if any."""
    keys = set(keys)
    return next((k for k in LOSS_KEYS if k in keys), None)


def leaderboard(evals: Iterable, metric: str, label=None) -> tuple[list[str], list[tuple[str, dict, float]]]:
    """Pivot eval rows of one ``metric`` into ``(datasets, [(model, {dataset: value}, mean)])``.

    Later rows for the same (model, dataset) replace earlier ones (a re-run evaluation wins).
    Models evaluated on more datasets come first (a mean over fewer datasets is not comparable),
    then the best mean; ``label(row)`` names a model (default: ``row.model`` or the run id).
    """
    label = label or (lambda row: row.model or row.run_id or "?")
    table: dict[str, dict[str, float]] = {}
    datasets: list[str] = []
    for row in evals:
        if row.metric != metric:
            continue
        if row.dataset not in datasets:
            datasets.append(row.dataset)
        table.setdefault(label(row), {})[row.dataset] = row.value
    rows = []
    for model, values in table.items():
        finite = [v for v in values.values() if not math.isnan(v)]
        rows.append((model, values, sum(finite) / len(finite) if finite else math.nan))
    rows.sort(key=lambda r: (-len(r[1]), math.isnan(r[2]), -r[2] if not math.isnan(r[2]) else 0.0, r[0]))
    return sorted(datasets), rows
