"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import platform
import subprocess


def machine() -> str:
    """One line describing where a benchmark ran."""
    cpu = platform.processor() or platform.machine()
    try:
        model = subprocess.run(
            ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo"], capture_output=True, text=True
        ).stdout
        cpu = model.split(":", 1)[1].strip() if ":" in model else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads, load {load:.1f}"


def run_learning_child(
    code: str, args: list[str], home, env: dict, metric: str, label: str, cwd=None
) -> dict:
    """Run ``python -c code *args`` in a fresh ``RERANKCTL_HOME``; its ``RESULT {json}`` line plus the
    run store's ``metric`` curve (step, value) and the wall time."""
    import json
    import sqlite3
    import sys
    import time
    from pathlib import Path

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=cwd
    )
    wall = time.perf_counter() - start
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(line.removeprefix("RESULT "))
    db = sqlite3.connect(Path(home) / "runs.db")
    curve = db.execute(
        "SELECT step, value FROM metrics WHERE key = ? ORDER BY step, id", (metric,)
    ).fetchall()
    out["curve"] = list(dict(curve).items())
    out["wall"] = wall
    return out
