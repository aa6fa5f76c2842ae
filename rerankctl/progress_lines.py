"""Plain progress lines for logs (no terminal): torch-free pieces shared by training and evaluation.

A redrawing bar writes nothing useful to a file, a pipe or a CI log; these write a line now and then
(every tenth of the work) with the count, elapsed time and an estimate of the rest.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def clock(seconds: float) -> str:
    """``h:mm:ss`` (what rich's elapsed/remaining columns show)."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class PlainCounter:
    """Counts work done and prints ``DESC 400/4000 docs (10%) | elapsed 0:00:12 | eta 0:01:48`` every tenth."""

    def __init__(
        self, description: str, total: int, unit: str = "docs", stream: Any = None, steps: int = 10
    ) -> None:
        self.description = description
        self.total = max(0, int(total))
        self.unit = unit
        self.stream = stream
        self.steps = steps
        self.done = 0
        self.start = time.monotonic()
        self.printed = 0  # how many tenths have been printed

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.total <= 0:
            return
        reached = min(self.steps, self.done * self.steps // self.total)
        if reached > self.printed:
            self.printed = reached
            elapsed = time.monotonic() - self.start
            left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            line = (
                f"{self.description} {self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%)"
                f" | elapsed {clock(elapsed)} | eta {clock(left)}"
            )
            print(line, file=self.stream or sys.stderr, flush=True)
