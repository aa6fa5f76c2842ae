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
