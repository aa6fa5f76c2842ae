"""Multi-process training: re-run the same command under ``torch.distributed.run``.

``--gpus 0,1,2,3`` sets ``CUDA_VISIBLE_DEVICES`` and starts one process per GPU;
``--gpus auto`` takes every idle GPU and ``auto:N`` the N freest (through NVML); ``--gpus cpu:N`` starts N CPU
processes that talk over gloo (useful to test the distributed path without a
GPU). Each process runs the ordinary command; the Hugging Face Trainer sees the
``RANK``/``WORLD_SIZE`` environment and wraps the model in DDP, and only rank 0
writes to the run store and draws progress.
"""

from __future__ import annotations

import os
import subprocess
import sys

from rerankctl.errors import UsageError


def _strip_gpus(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--gpus":
            skip = True
            continue
        if arg.startswith("--gpus="):
            continue
        out.append(arg)
    return out


def parse_gpus(spec: str) -> tuple[list[str] | None, int]:
    """``(cuda devices or None for CPU, number of processes)`` for a ``--gpus`` value."""
    spec = spec.strip()
    if spec.startswith("cpu:"):
        try:
            n = int(spec[4:])
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError(f"--gpus {spec}: expected cpu:N with N >= 1")
        return None, n
    if spec == "auto" or spec.startswith("auto:"):
        return _auto(spec)
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if not devices or not all(d.isdigit() for d in devices):
        raise UsageError(f"--gpus {spec}: expected a list like 0,1,2,3, 'auto' or cpu:N")
    check_gpus_exist(spec, devices)
    return devices, len(devices)


def check_gpus_exist(spec: str, devices: list[str]) -> None:
    """Pre-flight: every requested GPU index exists (NVML), before any worker starts.

    Without it a missing GPU surfaced as 150 lines of torchrun traceback from the workers.
    """
    from rerankctl.gpu import default_source

    visible = len(default_source().snapshot_all())
    missing = [d for d in devices if int(d) >= visible]
    if missing:
        seen = f"{visible} GPU{'s' if visible != 1 else ''}" if visible else "no GPU"
        raise UsageError(
            f"--gpus {spec}: NVML sees {seen} on this machine (asked for GPU {', '.join(missing)})",
            hint="run `rerankctl gpu` to see the GPUs; `--gpus cpu:N` runs N processes on the CPU",
        )


def _auto(spec: str) -> tuple[list[str], int]:
    """``auto``: every idle GPU (under 10 % of its memory in use); ``auto:N``: the N freest."""
    from rerankctl.gpu import pick_gpus, snapshot_all

    if ":" in spec:
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError(f"--gpus {spec}: expected auto:N with N >= 1")
    else:
        idle = [
            g
            for g in snapshot_all(with_processes=False)
            if g.mem_total and g.mem_used is not None and g.mem_used < 0.1 * g.mem_total
        ]
        n = len(idle)
        if n == 0:
            raise UsageError(
                "--gpus auto: no idle GPU found", hint="run `rerankctl gpu` to see what NVML reports"
            )
    devices = [str(i) for i in pick_gpus(n)]
    return devices, len(devices)


def relaunch_distributed(spec: str, argv: list[str]) -> int:
    """Run the command ``argv`` (without the program name) again as ``nproc`` processes.

    Returns the launcher's exit code.
    """
    devices, nproc = parse_gpus(spec)
    args = _strip_gpus(argv)
    env = dict(os.environ)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""
        # Without this the Trainer in each CPU worker saw DistributedType.NO and world size 1:
        # copies of one run, not one run. With it accelerate sets up MULTI_CPU over gloo.
        env["ACCELERATE_USE_CPU"] = "true"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "rerankctl",
        *args,
    ]
    return subprocess.call(cmd, env=env)
