"""Multi-process and multi-machine training: the same command re-run as workers of one run.

``--gpus 0,1,2,3`` sets ``CUDA_VISIBLE_DEVICES`` and starts one process per GPU;
``--gpus auto`` takes every idle GPU and ``auto:N`` the N freest (through NVML); ``--gpus cpu:N``
starts N CPU processes over gloo (the distributed path, testable without a GPU). ``--nnodes``,
``--node-rank``, ``--master-addr`` and ``--master-port`` join several machines into one run (each
machine runs the same command with its own ``--node-rank``).

The workers are started by torch's elastic agent (``torch.distributed.run``), in this process, the
way ``accelerate launch`` starts multi-GPU jobs; with ``--accelerate-config FILE`` the user's
accelerate configuration starts them instead (``accelerate launch --config_file FILE``). Every
worker runs the ordinary command; accelerate inside the Hugging Face Trainer reads the
``RANK``/``WORLD_SIZE`` environment and wraps the model (DDP, or FSDP / DeepSpeed from
``--fsdp`` / ``--deepspeed``). Only global rank 0 writes the run store, checkpoints and ``final/``.
The agent's own failure report (a traceback per worker) is folded into one error line: each
worker has already printed its own error.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rerankctl.errors import UsageError

# Flags that only tell the launcher what to start; the workers must not see them (they would
# launch again). --deepspeed and --fsdp stay: the workers' TrainingArguments need them.
LAUNCHER_FLAGS = (
    "--gpus",
    "--nnodes",
    "--node-rank",
    "--master-addr",
    "--master-port",
    "--accelerate-config",
)


def strip_launcher_flags(argv: list[str]) -> list[str]:
    """``argv`` without the launcher-only flags and their values (``--flag v`` or ``--flag=v``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in LAUNCHER_FLAGS:
            skip = True
            continue
        if arg.split("=", 1)[0] in LAUNCHER_FLAGS:
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


def preflight(dist: Any) -> tuple[list[str] | None, int]:
    """Checks before any worker starts; returns ``(cuda devices or None for CPU, processes here)``."""
    import importlib.util

    if dist.gpus:
        devices, nproc = parse_gpus(dist.gpus)
    else:  # --nnodes or --accelerate-config without --gpus: every GPU of this machine
        from rerankctl.gpu import default_source

        count = len(default_source().snapshot_all())
        if count == 0 and not dist.accelerate_config:
            raise UsageError(
                "no GPU seen on this machine (NVML) and no --gpus given",
                hint="say how many processes to start here: --gpus 0,1 or --gpus cpu:N",
            )
        devices, nproc = [str(i) for i in range(count)], max(count, 1)
    if dist.fsdp and devices is None:
        raise UsageError("--fsdp needs CUDA GPUs", hint="on the CPU, --gpus cpu:N runs DDP over gloo")
    if dist.deepspeed:
        if devices is None:
            raise UsageError(
                "--deepspeed needs CUDA GPUs", hint="on the CPU use --gpus cpu:N (DDP) or --fsdp"
            )
        if importlib.util.find_spec("deepspeed") is None:
            raise UsageError(
                "--deepspeed: the deepspeed package is not installed",
                hint="pip install 'rerankctl[deepspeed]' (needs CUDA), or use --fsdp",
            )
    return devices, nproc


def worker_env(devices: list[str] | None) -> dict[str, str]:
    """The environment of every worker: its GPUs, or accelerate's MULTI_CPU mode."""
    env = dict(os.environ)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""
        # Without this the Trainer in each CPU worker saw DistributedType.NO and world size 1:
        # copies of one run, not one run. With it accelerate sets up MULTI_CPU over gloo.
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def torchrun_args(dist: Any, nproc: int, argv: list[str]) -> list[str]:
    """Arguments of ``torch.distributed.run`` for ``nproc`` workers of ``rerankctl argv``."""
    args = [f"--nproc-per-node={nproc}"]
    if dist.nnodes == 1 and dist.master_port is None:
        args.append("--standalone")  # a free port of its own: two runs on one machine never collide
    else:
        args += [
            f"--nnodes={dist.nnodes}",
            f"--node-rank={dist.node_rank}",
            f"--master-addr={dist.master_addr or '127.0.0.1'}",
            f"--master-port={dist.master_port or 29500}",
        ]
    return [*args, "-m", "rerankctl", *strip_launcher_flags(argv)]


def accelerate_args(dist: Any, devices: list[str] | None, nproc: int, argv: list[str]) -> list[str]:
    """Arguments of ``accelerate launch`` with the user's ``--accelerate-config`` file."""
    args = ["--config_file", dist.accelerate_config]
    if dist.gpus:
        args += ["--num_processes", str(nproc * dist.nnodes)]
        if devices is not None:
            args += ["--gpu_ids", ",".join(devices)]
        else:
            args.append("--cpu")
    if dist.nnodes > 1:
        args += ["--num_machines", str(dist.nnodes), "--machine_rank", str(dist.node_rank)]
        args += ["--main_process_ip", dist.master_addr, "--main_process_port", str(dist.master_port or 29500)]
    return [*args, "-m", "rerankctl", *strip_launcher_flags(argv)]


def relaunch_distributed(dist: Any, argv: list[str]) -> int:
    """Run the command ``argv`` (without the program name) as the workers of one distributed run.

    Returns the exit code: 0, the first failed worker's code, or 130 on Ctrl-C.
    """
    devices, nproc = preflight(dist)
    env = worker_env(devices)
    if dist.accelerate_config:
        import subprocess

        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *accelerate_args(dist, devices, nproc, argv),
        ]
        return subprocess.call(cmd, env=env)
    return _run_elastic(torchrun_args(dist, nproc, argv), env, nproc, nproc * dist.nnodes)


def _run_elastic(args: list[str], env: dict[str, str], nproc: int, world: int) -> int:
    """torch's elastic agent in this process, with its failure report folded into one line."""
    import logging
    import signal

    os.environ.clear()
    os.environ.update(env)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    for name in ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # The agent installs its own SIGTERM/SIGHUP/SIGINT handlers and leaves them behind; put ours back.
    kept = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    }
    try:
        run(parse_args(args))
    except KeyboardInterrupt:
        return 130
    except ChildFailedError as failed:
        rank, failure = failed.get_first_failure()
        code = failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1
        how = f"exit code {failure.exitcode}" if failure.exitcode >= 0 else f"signal {-failure.exitcode}"
        sys.stderr.write(
            f"rerankctl: error: worker rank {rank} of {world} stopped ({how}); "
            "its own error is printed above\n"
            "  hint: RERANKCTL_DEBUG=1 shows each worker's traceback\n"
        )
        return code
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)
    return 0
