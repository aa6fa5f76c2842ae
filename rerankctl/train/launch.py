"""Multi-process training: re-run the same command under ``torch.distributed.run``.

``--gpus 0,1,2,3`` sets ``CUDA_VISIBLE_DEVICES`` and starts one process per GPU;
``--gpus auto`` picks free GPUs through NVML; ``--gpus cpu:N`` starts N CPU
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
    if spec == "auto":
        from rerankctl.gpu.pick import pick_gpus

        devices = [str(i) for i in pick_gpus(0)]
        if not devices:
            raise UsageError(
                "--gpus auto: no usable GPU found", hint="run `rerankctl gpu` to see what NVML reports"
            )
        return devices, len(devices)
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if not devices or not all(d.isdigit() for d in devices):
        raise UsageError(f"--gpus {spec}: expected a list like 0,1,2,3, 'auto' or cpu:N")
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
