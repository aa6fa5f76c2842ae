"""Plain data describing GPUs: one `GpuSnapshot` per device, one `GpuProcess` per process on it.

Every measured field may be ``None``, which means "not available" (N/A): NVML reports many
values as unsupported on some boards (fan speed on passively cooled data-centre GPUs, power on
some MIG slices), and a monitoring tool must show the rest instead of failing.

Units: memory in bytes, utilisation and fan speed in percent, temperature in degrees Celsius,
power in watts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class GpuProcess:
    """One process holding memory on a GPU."""

    pid: int
    user: str | None = None
    mem_used: int | None = None
    command: str | None = None


@dataclass(frozen=True)
class GpuSnapshot:
    """The state of one GPU at one moment; ``None`` means N/A."""

    index: int
    name: str | None = None
    uuid: str | None = None
    util: float | None = None
    mem_used: int | None = None
    mem_total: int | None = None
    temperature: float | None = None
    power: float | None = None
    power_limit: float | None = None
    fan: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)

    @property
    def mem_free(self) -> int | None:
        """Free memory in bytes, or None when either side is unknown."""
        if self.mem_used is None or self.mem_total is None:
            return None
        return max(self.mem_total - self.mem_used, 0)

    @property
    def mem_percent(self) -> float | None:
        """Used memory as a percentage of the total."""
        if self.mem_used is None or not self.mem_total:
            return None
        return 100.0 * self.mem_used / self.mem_total

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``rerankctl gpu --json`` prints per device)."""
        data = asdict(self)
        data["mem_free"] = self.mem_free
        return data

    def to_sample(self) -> dict[str, Any]:
        """The row the run store's ``log_gpu_samples`` expects."""
        return {
            "gpu_index": self.index,
            "name": self.name,
            "util": self.util,
            "mem_used": self.mem_used,
            "mem_total": self.mem_total,
            "temperature": self.temperature,
            "power": self.power,
            "power_limit": self.power_limit,
        }


@runtime_checkable
class GpuSource(Protocol):
    """Where GPU snapshots come from: NVML on a real machine, a fake in tests."""

    def status(self) -> tuple[bool, str]:
        """``(True, description)`` when GPUs can be read, else ``(False, why not)``; never raises."""
        ...

    def snapshot_all(self) -> list[GpuSnapshot]:
        """One snapshot per visible GPU (empty without driver or GPU); never raises."""
        ...


def fmt_na(value: Any, fmt: str = "{}", na: str = "N/A") -> str:
    """Format ``value`` with ``fmt``, or ``na`` when it is None."""
    return na if value is None else fmt.format(value)


def fmt_mem(value: int | None, na: str = "N/A") -> str:
    """Bytes as GiB with one decimal ("12.3 GiB")."""
    return na if value is None else f"{value / GIB:.1f} GiB"
