"""The NVML wrapper: reads never raise, N/A is None, units are converted, no driver is explained."""

from __future__ import annotations

import getpass
import os
from types import SimpleNamespace

import pynvml
import pytest

from rerankctl.gpu import nvml
from rerankctl.gpu.snapshot import GpuSnapshot

# Every NVML function the wrapper reads per device.
DEVICE_READS = [
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
]


@pytest.fixture(autouse=True)
def fresh_nvml(monkeypatch):
    """Each test starts from an uninitialised wrapper; nvmlShutdown never touches a real driver."""
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: None)
    nvml.reset()
    yield
    nvml.reset()


def _raise(code):
    def fn(*args, **kwargs):
        raise pynvml.NVMLError(code)

    return fn


def _fake_driver(monkeypatch, count=1):
    """A driver that initialises and reports ``count`` devices; per-device reads are set by the test."""
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: count)
    monkeypatch.setattr(pynvml, "nvmlSystemGetDriverVersion", lambda: b"550.54.15")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: ("handle", i))


def test_every_read_failing_gives_none_and_never_raises(monkeypatch):
    _fake_driver(monkeypatch, count=2)
    for name in DEVICE_READS:
        monkeypatch.setattr(pynvml, name, _raise(pynvml.NVML_ERROR_NOT_SUPPORTED))
    snaps = nvml.snapshot_all()
    assert snaps == [GpuSnapshot(index=0), GpuSnapshot(index=1)]
    for s in snaps:
        for field in (
            "name",
            "uuid",
            "util",
            "mem_used",
            "mem_total",
            "temperature",
            "power",
            "power_limit",
            "fan",
        ):
            assert getattr(s, field) is None, field
        assert s.processes == []
        assert s.mem_free is None and s.mem_percent is None
    assert nvml.nvml_status() == (True, "NVIDIA driver 550.54.15, 2 GPUs")


@pytest.mark.parametrize(
    "code", [pynvml.NVML_ERROR_GPU_IS_LOST, pynvml.NVML_ERROR_UNKNOWN, pynvml.NVML_ERROR_NO_PERMISSION]
)
def test_lost_gpu_handle_gives_empty_snapshot(monkeypatch, code):
    _fake_driver(monkeypatch)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", _raise(code))
    assert nvml.snapshot(0) == GpuSnapshot(index=0)


def test_non_nvml_exceptions_are_swallowed_too(monkeypatch):
    _fake_driver(monkeypatch)
    monkeypatch.setattr(
        pynvml,
        "nvmlDeviceGetName",
        lambda h: (_ for _ in ()).throw(UnicodeDecodeError("utf-8", b"", 0, 1, "x")),
    )
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", _raise(pynvml.NVML_ERROR_UNKNOWN))
    assert nvml.device_count() == 0
    assert nvml.snapshot_all() == []
    assert nvml.snapshot(0).name is None


def test_values_and_units(monkeypatch):
    _fake_driver(monkeypatch)
    me = os.getpid()
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: b"NVIDIA A100-SXM4-80GB")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUUID", lambda h: "GPU-1234")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUtilizationRates", lambda h: SimpleNamespace(gpu=37, memory=12))
    monkeypatch.setattr(
        pynvml,
        "nvmlDeviceGetMemoryInfo",
        lambda h: SimpleNamespace(used=3 * 1024**3, total=12 * 1024**3, free=0),
    )
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTemperature", lambda h, sensor: 55 if sensor == 0 else -1)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetPowerUsage", lambda h: 123456)  # milliwatts
    monkeypatch.setattr(pynvml, "nvmlDeviceGetEnforcedPowerLimit", _raise(pynvml.NVML_ERROR_NOT_SUPPORTED))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetPowerManagementLimit", lambda h: 400000)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetFanSpeed", _raise(pynvml.NVML_ERROR_NOT_SUPPORTED))
    monkeypatch.setattr(
        pynvml,
        "nvmlDeviceGetComputeRunningProcesses",
        lambda h: [
            SimpleNamespace(pid=me, usedGpuMemory=2 * 1024**3),
            SimpleNamespace(pid=999_999_999, usedGpuMemory=None),
        ],
    )
    # The same pid as a graphics process must not be listed twice.
    monkeypatch.setattr(
        pynvml,
        "nvmlDeviceGetGraphicsRunningProcesses",
        lambda h: [SimpleNamespace(pid=me, usedGpuMemory=None)],
    )
    s = nvml.snapshot(0)
    assert s.name == "NVIDIA A100-SXM4-80GB"
    assert s.uuid == "GPU-1234"
    assert s.util == 37.0
    assert (s.mem_used, s.mem_total, s.mem_free) == (3 * 1024**3, 12 * 1024**3, 9 * 1024**3)
    assert s.mem_percent == 25.0
    assert s.temperature == 55.0
    assert s.power == pytest.approx(123.456)
    assert s.power_limit == 400.0  # fell back to the management limit
    assert s.fan is None
    assert [p.pid for p in s.processes] == [me, 999_999_999]
    mine, gone = s.processes
    assert mine.mem_used == 2 * 1024**3
    assert mine.user == getpass.getuser()
    assert "python" in mine.command.lower() or "pytest" in mine.command.lower()
    # A process that no longer exists keeps its pid; user and command are N/A.
    assert (gone.user, gone.mem_used, gone.command) == (None, None, None)
    assert s.to_sample() == {
        "gpu_index": 0,
        "name": "NVIDIA A100-SXM4-80GB",
        "util": 37.0,
        "mem_used": 3 * 1024**3,
        "mem_total": 12 * 1024**3,
        "temperature": 55.0,
        "power": pytest.approx(123.456),
        "power_limit": 400.0,
    }


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver found: NVML could not be loaded"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver is not loaded: NVML could not be initialised"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML could not be initialised: Unknown Error"),
    ],
)
def test_init_failure_is_a_status_not_an_exception(monkeypatch, error, message):
    calls = []

    def init():
        calls.append(1)
        raise pynvml.NVMLError(error)

    monkeypatch.setattr(pynvml, "nvmlInit", init)
    assert nvml.nvml_status() == (False, message)
    assert nvml.snapshot_all() == []
    assert nvml.snapshot(3) == GpuSnapshot(index=3)
    assert nvml.driver_version() is None
    assert calls == [1], "initialisation is attempted once, lazily"


def test_no_devices(monkeypatch):
    _fake_driver(monkeypatch, count=0)
    assert nvml.nvml_status() == (False, "no NVIDIA GPU found (driver 550.54.15)")
    assert nvml.snapshot_all() == []


def test_initialisation_is_lazy(monkeypatch):
    called = []
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: called.append(1))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 0)
    nvml.NvmlSource()
    assert called == []
    nvml.device_count()
    nvml.snapshot_all()
    assert called == [1]


def test_importing_the_cli_module_does_not_import_pynvml_or_rich():
    import subprocess
    import sys

    code = "import sys, rerankctl.cli.gpu, rerankctl.gpu; print(sorted(m for m in ('pynvml', 'psutil', 'rich.table') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
