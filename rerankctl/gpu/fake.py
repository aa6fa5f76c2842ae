"""A deterministic `GpuSource` for tests, snapshots and demos on machines without a GPU.

Testing hook: setting ``RERANKCTL_FAKE_GPUS`` makes every rerankctl command read GPUs from this
fake instead of NVML (see `default_source`):

* ``RERANKCTL_FAKE_GPUS=2``: two fake H100s (``0`` = a driver with no GPUs);
* ``RERANKCTL_FAKE_GPUS=nodriver``: behave like a machine without the NVIDIA driver.

It is a testing hook, not a feature: it exists because no GPU exists on the machines that run
the test suite, and nothing but tests and the TUI snapshots should set it.
"""

from __future__ import annotations

import os
import threading

from rerankctl.gpu.snapshot import MIB, GpuProcess, GpuSnapshot, GpuSource

FAKE_ENV = "RERANKCTL_FAKE_GPUS"

# An H100 80GB HBM3 reports 81559 MiB total through NVML.
_H100_TOTAL = 81559 * MIB
# Per-device pattern (cycled): (base utilisation %, memory used MiB, has a training process).
_PATTERN = [(92, 61440, True), (3, 1024, False), (45, 40960, True), (0, 512, False)]


class FakeGpuSource:
    """Fake GPUs whose readings are a pure function of a tick counter.

    Args:
        count: number of fake H100s (ignored when ``devices`` is given).
        driver: False behaves like a machine without the NVIDIA driver.
        devices: exact snapshots to return (for tests that need precise numbers).
        advance: whether each `snapshot_all` call moves the tick on (live-looking readings);
            False freezes the readings, which snapshot tests need.
    """

    def __init__(
        self,
        count: int = 2,
        *,
        driver: bool = True,
        devices: list[GpuSnapshot] | None = None,
        advance: bool = True,
    ) -> None:
        self.driver = driver
        self.devices = list(devices) if devices is not None else None
        self.count = len(self.devices) if self.devices is not None else max(int(count), 0)
        self.advance = advance
        self.tick = 0
        self._lock = threading.Lock()

    def status(self) -> tuple[bool, str]:
        if not self.driver:
            return False, "no NVIDIA driver found: NVML could not be loaded (fake)"
        if self.count == 0:
            return False, "no NVIDIA GPU found (driver fake)"
        return True, f"NVIDIA driver fake, {self.count} GPU{'s' if self.count != 1 else ''}"

    def snapshot_all(self) -> list[GpuSnapshot]:
        if not self.driver:
            return []
        if self.devices is not None:
            return list(self.devices)
        with self._lock:
            tick = self.tick
            if self.advance:
                self.tick += 1
        return [self._device(i, tick) for i in range(self.count)]

    @staticmethod
    def _device(index: int, tick: int) -> GpuSnapshot:
        base_util, mem_mib, busy = _PATTERN[index % len(_PATTERN)]
        # A small deterministic wobble so bars and sparklines move when the tick advances.
        wobble = ((tick * 7 + index * 3) % 9) - 4 if busy else 0
        util = float(min(max(base_util + wobble, 0), 100))
        mem_used = (mem_mib + (tick % 4) * 256 * busy) * MIB
        processes = []
        if busy:
            processes = [
                GpuProcess(
                    pid=4242 + index,
                    user="alice",
                    mem_used=mem_used - 512 * MIB,
                    command="python -m rerankctl train sft --preset qwen3_4b_lora",
                )
            ]
        return GpuSnapshot(
            index=index,
            name="NVIDIA H100 80GB HBM3",
            uuid=f"GPU-fake-{index:04d}-0000-0000-000000000000",
            util=util,
            mem_used=mem_used,
            mem_total=_H100_TOTAL,
            temperature=float(31 + round(util * 0.4)),
            power=float(69 + round(util * 6.2)),
            power_limit=700.0,
            fan=None,  # passively cooled SXM boards report no fan: shown as N/A
            processes=processes,
        )


def source_from_env(value: str | None = None) -> FakeGpuSource | None:
    """The fake source ``RERANKCTL_FAKE_GPUS`` asks for, or None when it is unset/empty."""
    value = os.environ.get(FAKE_ENV, "") if value is None else value
    value = value.strip().lower()
    if not value:
        return None
    if value in ("nodriver", "none", "no-driver"):
        return FakeGpuSource(0, driver=False)
    try:
        return FakeGpuSource(int(value))
    except ValueError:
        from rerankctl.errors import UsageError

        raise UsageError(
            f"{FAKE_ENV}={value!r} is not a GPU count", hint="use a number such as 2, or 'nodriver'"
        ) from None


def default_source() -> GpuSource:
    """NVML, unless the ``RERANKCTL_FAKE_GPUS`` testing hook is set."""
    fake = source_from_env()
    if fake is not None:
        return fake
    from rerankctl.gpu.nvml import NvmlSource

    return NvmlSource()
