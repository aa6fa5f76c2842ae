"""GPU monitoring and picking over NVML; reads never raise, no GPU is a normal state.

Nothing here imports pynvml, psutil or torch at import time.
"""

from rerankctl.gpu.fake import FAKE_ENV, FakeGpuSource, default_source
from rerankctl.gpu.nvml import NvmlSource, nvml_status, snapshot_all
from rerankctl.gpu.pick import GpuPickError, cuda_visible_devices, pick_gpus, resolve_gpus
from rerankctl.gpu.sampler import GpuSampler
from rerankctl.gpu.snapshot import GpuProcess, GpuSnapshot, GpuSource

__all__ = [
    "FAKE_ENV",
    "FakeGpuSource",
    "GpuPickError",
    "GpuProcess",
    "GpuSampler",
    "GpuSnapshot",
    "GpuSource",
    "NvmlSource",
    "cuda_visible_devices",
    "default_source",
    "nvml_status",
    "pick_gpus",
    "resolve_gpus",
    "snapshot_all",
]
