"""The one wrapper over NVML (package ``nvidia-ml-py``, module ``pynvml``).

In the style of nvitop: NVML is imported and initialised lazily, on the first read, once per
process; every read returns a value or ``None`` (shown as N/A) and never raises. A machine
without the NVIDIA driver, without GPUs, or without ``pynvml`` is a normal state that
`nvml_status` explains in one line.

GPU indices are NVML's (PCI bus order). CUDA numbers devices the same way only when
``CUDA_DEVICE_ORDER=PCI_BUS_ID``; `rerankctl gpu pick` says so in its help.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from rerankctl.gpu.snapshot import GpuProcess, GpuSnapshot

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, Any] = {"tried": False, "module": None, "error": None}

# pynvml error codes -> the sentence a user sees. Numbers are NVML's (nvml.h), so this table
# needs no pynvml import.
_INIT_MESSAGES = {
    12: "no NVIDIA driver found: NVML could not be loaded",  # NVML_ERROR_LIBRARY_NOT_FOUND
    9: "NVIDIA driver is not loaded: NVML could not be initialised",  # NVML_ERROR_DRIVER_NOT_LOADED
    4: "no permission to read the NVIDIA driver (NVML_ERROR_NO_PERMISSION)",
    18: "NVIDIA driver/library version mismatch: reboot or reload the driver",  # LIB_RM_VERSION_MISMATCH
}


def _decode(value: Any) -> Any:
    """NVML returns bytes from older bindings and str from newer ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _init() -> Any | None:
    """Import and initialise pynvml once; return the module, or None (the reason is kept)."""
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if _state["tried"]:
            return _state["module"]
        try:
            import pynvml
        except ImportError:
            _state["error"] = (
                "nvidia-ml-py is not installed, so GPUs cannot be read (pip install nvidia-ml-py)"
            )
        else:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                code = getattr(exc, "value", None)
                _state["error"] = _INIT_MESSAGES.get(code, f"NVML could not be initialised: {exc}")
            except Exception as exc:  # noqa: BLE001 - a broken binding must not stop the program
                _state["error"] = f"NVML could not be initialised: {type(exc).__name__}: {exc}"
            else:
                _state["module"] = pynvml
        _state["tried"] = True
        return _state["module"]


def reset() -> None:
    """Forget the initialisation state (tests; also lets a long-lived process retry after a driver load)."""
    with _lock:
        module = _state["module"]
        if module is not None:
            # Shutting down a broken NVML is best effort.
            with contextlib.suppress(Exception):
                module.nvmlShutdown()
        _state.update(tried=False, module=None, error=None)


def _read(fn: Callable[..., Any], *args: Any) -> Any | None:
    """Call one NVML function; any failure (not supported, GPU lost, binding too old) is None."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the contract: reads never raise
        log.debug("NVML read %s failed: %s", getattr(fn, "__name__", fn), exc)
        return None


def _get(nv: Any, name: str, *args: Any) -> Any | None:
    """Read ``nv.<name>(*args)`` when the binding has it; None otherwise."""
    fn = getattr(nv, name, None)
    return None if fn is None else _read(fn, *args)


def device_count() -> int:
    """Number of GPUs NVML sees (0 without driver)."""
    nv = _init()
    if nv is None:
        return 0
    count = _get(nv, "nvmlDeviceGetCount")
    return int(count) if isinstance(count, int) else 0


def driver_version() -> str | None:
    """The NVIDIA driver version, or None."""
    nv = _init()
    return None if nv is None else _decode(_get(nv, "nvmlSystemGetDriverVersion"))


def nvml_status() -> tuple[bool, str]:
    """``(ok, message)``: whether GPUs can be read and a one-line explanation. Never raises."""
    nv = _init()
    if nv is None:
        return False, str(_state["error"])
    count = device_count()
    version = driver_version() or "N/A"
    if count == 0:
        return False, f"no NVIDIA GPU found (driver {version})"
    return True, f"NVIDIA driver {version}, {count} GPU{'s' if count != 1 else ''}"


def _percent(value: Any) -> float | None:
    return None if value is None else float(value)


def _milliwatts(value: Any) -> float | None:
    return None if value is None else float(value) / 1000.0


def _process_info(pid: int, mem_used: int | None) -> GpuProcess:
    """User and command of ``pid`` from psutil; None where the process is gone or hidden."""
    user = command = None
    try:
        import psutil

        proc = psutil.Process(pid)
        with proc.oneshot():
            try:
                user = proc.username()
            except Exception:  # noqa: BLE001 - another user's process may be unreadable
                user = None
            try:
                cmdline = proc.cmdline()
                command = " ".join(cmdline) if cmdline else proc.name()
            except Exception:  # noqa: BLE001
                command = None
    except Exception:  # noqa: BLE001 - process exited, other PID namespace (containers), no psutil
        pass
    return GpuProcess(pid=pid, user=user, mem_used=mem_used, command=command)


def _processes(nv: Any, handle: Any) -> list[GpuProcess]:
    """Compute and graphics processes on one device, merged by pid."""
    merged: dict[int, int | None] = {}
    for name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        for info in _get(nv, name, handle) or []:
            pid = getattr(info, "pid", None)
            if not isinstance(pid, int):
                continue
            mem = getattr(info, "usedGpuMemory", None)
            mem = int(mem) if isinstance(mem, int) else None
            if merged.get(pid) is None:
                merged[pid] = mem
    return [_process_info(pid, mem) for pid, mem in sorted(merged.items())]


def snapshot(index: int, with_processes: bool = True) -> GpuSnapshot:
    """The snapshot of GPU ``index``; every field that cannot be read is None."""
    nv = _init()
    handle = None if nv is None else _get(nv, "nvmlDeviceGetHandleByIndex", index)
    if handle is None:
        return GpuSnapshot(index=index)
    util = _get(nv, "nvmlDeviceGetUtilizationRates", handle)
    mem = _get(nv, "nvmlDeviceGetMemoryInfo", handle)
    temp_sensor = getattr(nv, "NVML_TEMPERATURE_GPU", 0)
    limit = _get(nv, "nvmlDeviceGetEnforcedPowerLimit", handle)
    if limit is None:
        limit = _get(nv, "nvmlDeviceGetPowerManagementLimit", handle)
    return GpuSnapshot(
        index=index,
        name=_decode(_get(nv, "nvmlDeviceGetName", handle)),
        uuid=_decode(_get(nv, "nvmlDeviceGetUUID", handle)),
        util=_percent(getattr(util, "gpu", None)),
        mem_used=getattr(mem, "used", None),
        mem_total=getattr(mem, "total", None),
        temperature=_percent(_get(nv, "nvmlDeviceGetTemperature", handle, temp_sensor)),
        power=_milliwatts(_get(nv, "nvmlDeviceGetPowerUsage", handle)),
        power_limit=_milliwatts(limit),
        fan=_percent(_get(nv, "nvmlDeviceGetFanSpeed", handle)),
        processes=_processes(nv, handle) if with_processes else [],
    )


def snapshot_all(with_processes: bool = True) -> list[GpuSnapshot]:
    """One snapshot per GPU; empty without driver or GPU. Never raises."""
    try:
        return [snapshot(i, with_processes) for i in range(device_count())]
    except Exception as exc:  # noqa: BLE001 - belt and braces: monitoring never takes a program down
        log.debug("NVML snapshot failed: %s", exc)
        return []


class NvmlSource:
    """The real `GpuSource`: NVML through this module."""

    def __init__(self, with_processes: bool = True) -> None:
        self.with_processes = with_processes

    def status(self) -> tuple[bool, str]:
        return nvml_status()

    def snapshot_all(self) -> list[GpuSnapshot]:
        return snapshot_all(self.with_processes)
