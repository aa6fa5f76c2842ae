"""Metric curves of runs: a terminal plot (plotext) or an image file (matplotlib)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rerankctl.errors import DependencyError, UsageError

IMAGE_FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class Curve:
    """One line of a plot: ``label`` and its points (NaN/inf points dropped)."""

    label: str
    steps: list[int]
    values: list[float]

    @classmethod
    def from_series(cls, label: str, series: Sequence[tuple[int, float]]) -> Curve:
        points = [(s, v) for s, v in series if math.isfinite(v)]
        return cls(label, [p[0] for p in points], [p[1] for p in points])


def terminal_plot(
    curves: Sequence[Curve], title: str, width: int = 100, height: int = 25, color: bool = True
) -> str:
    """The curves drawn with Unicode characters, as a string (ANSI colours when ``color``)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    for curve in curves:
        plt.plot(curve.steps, curve.values, label=curve.label)
    plt.title(title)
    plt.xlabel("step")
    text = plt.build()
    plt.clear_figure()
    text = text.rstrip("\n")
    return text if color else plt.uncolorize(text)


def image_bytes(curves: Sequence[Curve], title: str, fmt: str) -> bytes:
    """The curves as a PNG, SVG or PDF image, drawn with matplotlib (no global pyplot state)."""
    if fmt not in IMAGE_FORMATS:
        raise UsageError(
            f"cannot write a .{fmt} image", hint=f"use one of: {', '.join('.' + f for f in IMAGE_FORMATS)}"
        )
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise DependencyError(
            "writing plot images needs matplotlib, which is not installed",
            hint="pip install 'rerankctl[plot]' (or leave out -o for a terminal plot)",
        ) from exc
    fig = Figure(figsize=(8, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for curve in curves:
        ax.plot(curve.steps, curve.values, label=curve.label, linewidth=1.2)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()
