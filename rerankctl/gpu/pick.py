"""Choosing GPUs: `rerankctl gpu pick`, training ``--gpus auto`` and evaluation load balancing.

The rule: among GPUs with at least ``min_free_mem_gib`` free, take the ones with the most free
memory, ties broken by the lowest utilisation, then the lowest index (so the result is stable).
"""

from __future__ import annotations

from rerankctl.errors import DependencyError, UsageError
from rerankctl.gpu.snapshot import GIB, GpuSnapshot, GpuSource


class GpuPickError(DependencyError):
    """The GPUs asked for do not exist or are too busy (exit code 1)."""


def rank_gpus(snapshots: list[GpuSnapshot], min_free_mem_gib: float = 0.0) -> list[GpuSnapshot]:
    """Eligible GPUs, best first (most free memory, then lowest utilisation, then index).

    A GPU whose free memory cannot be read is eligible only when no minimum is asked for, and
    sorts after every GPU with a known amount; unknown utilisation sorts as fully busy.
    """
    need = min_free_mem_gib * GIB
    eligible = [s for s in snapshots if (s.mem_free is not None and s.mem_free >= need) or need <= 0]

    def key(s: GpuSnapshot) -> tuple[float, float, int]:
        free = s.mem_free if s.mem_free is not None else -1
        util = s.util if s.util is not None else 101.0
        return (-free, util, s.index)

    return sorted(eligible, key=key)


def pick_gpus(n: int = 1, min_free_mem_gib: float = 0.0, source: GpuSource | None = None) -> list[int]:
    """Indices of the ``n`` best GPUs (see the module docstring), in that order.

    Raises:
        UsageError: ``n`` < 1 or a negative memory requirement.
        GpuPickError: no GPU can be read, or fewer than ``n`` meet the requirement.
    """
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})")
    if min_free_mem_gib < 0:
        raise UsageError(f"--min-free-mem must be >= 0 GiB (got {min_free_mem_gib})")
    if source is None:
        from rerankctl.gpu.fake import default_source

        source = default_source()
    ok, message = source.status()
    if not ok:
        raise GpuPickError(
            f"cannot pick GPUs: {message}", hint="run on a machine with NVIDIA GPUs, or use CPU"
        )
    snapshots = source.snapshot_all()
    ranked = rank_gpus(snapshots, min_free_mem_gib)
    if len(ranked) < n:
        detail = ", ".join(
            f"GPU {s.index}: {s.mem_free / GIB:.1f} GiB free"
            if s.mem_free is not None
            else f"GPU {s.index}: N/A"
            for s in snapshots
        )
        raise GpuPickError(
            f"asked for {n} GPU{'s' if n != 1 else ''} with >= {min_free_mem_gib:g} GiB free, "
            f"but only {len(ranked)} of {len(snapshots)} qualify ({detail})",
            hint="lower -n or --min-free-mem, or wait for other jobs to finish",
        )
    return [s.index for s in ranked[:n]]


def cuda_visible_devices(indices: list[int]) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value for ``indices`` ("2,0")."""
    return ",".join(str(i) for i in indices)


def resolve_gpus(
    spec: str | None, n: int = 1, min_free_mem_gib: float = 0.0, source: GpuSource | None = None
):
    """Turn a ``--gpus`` value into indices: ``"auto"`` picks ``n``; ``"0,2"`` is taken as given.

    Returns an empty list for ``None``/``""``/``"cpu"`` (run without GPUs).

    Raises:
        UsageError: a malformed list ("0,x").
        GpuPickError: ``auto`` cannot be satisfied.
    """
    if spec is None or spec.strip().lower() in ("", "cpu", "none"):
        return []
    spec = spec.strip().lower()
    if spec == "auto":
        return pick_gpus(n, min_free_mem_gib, source)
    try:
        indices = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--gpus {spec!r}: expected 'auto' or comma-separated indices like '0,1'") from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise UsageError(f"--gpus {spec!r}: indices must be distinct and non-negative")
    return indices
