"""Plain progress lines for evaluation against endpoints (torch-free)."""

from __future__ import annotations

import io

from rerankctl.progress_lines import PlainCounter, clock


def test_clock():
    assert clock(0) == "0:00:00" and clock(61.4) == "0:01:01" and clock(3725) == "1:02:05"


def test_a_line_per_tenth_with_eta(monkeypatch):
    now = iter(float(t) for t in range(0, 1000, 10))  # start at 0, each call 10 s later
    monkeypatch.setattr("rerankctl.progress_lines.time.monotonic", lambda: next(now))
    out = io.StringIO()
    counter = PlainCounter("reranking http://x", 100, stream=out)
    for _ in range(4):
        counter.advance(25)  # 25, 50, 75, 100 docs: one line each (several tenths at once print once)
    counter.advance(0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "reranking http://x 25/100 docs (25%) | elapsed 0:00:10 | eta 0:00:30"
    assert lines[-1].startswith("reranking http://x 100/100 docs (100%)") and lines[-1].endswith(
        "eta 0:00:00"
    )
    assert len(lines) == 4


def test_small_steps_print_at_most_ten_lines():
    out = io.StringIO()
    counter = PlainCounter("r", 1000, stream=out)
    for _ in range(1000):
        counter.advance(1)
    assert len(out.getvalue().splitlines()) == 10
