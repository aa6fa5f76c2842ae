"""GPU picking, the fake source, and the background sampler."""

from __future__ import annotations

import threading
import time

import pytest

from rerankctl.errors import UsageError
from rerankctl.gpu.fake import FakeGpuSource, source_from_env
from rerankctl.gpu.pick import GpuPickError, cuda_visible_devices, pick_gpus, rank_gpus, resolve_gpus
from rerankctl.gpu.sampler import GpuSampler
from rerankctl.gpu.snapshot import GIB, GpuSnapshot


def gpu(index, used_gib, util, total_gib=80):
    return GpuSnapshot(
        index=index, name="X", util=util, mem_used=int(used_gib * GIB), mem_total=total_gib * GIB
    )


FOUR = FakeGpuSource(
    devices=[
        gpu(0, 70, 90),  # 10 GiB free
        gpu(1, 20, 50),  # 60 GiB free
        gpu(2, 20, 10),  # 60 GiB free, less busy than 1
        gpu(3, 40, 0),  # 40 GiB free
    ]
)


def test_most_free_memory_first_then_lowest_util():
    assert pick_gpus(1, source=FOUR) == [2]
    assert pick_gpus(3, source=FOUR) == [2, 1, 3]
    assert pick_gpus(4, source=FOUR) == [2, 1, 3, 0]
    assert cuda_visible_devices(pick_gpus(2, source=FOUR)) == "2,1"


def test_min_free_memory_filters():
    assert pick_gpus(3, min_free_mem_gib=40, source=FOUR) == [2, 1, 3]
    with pytest.raises(GpuPickError) as info:
        pick_gpus(3, min_free_mem_gib=40.5, source=FOUR)
    msg = info.value.message
    assert "asked for 3 GPUs with >= 40.5 GiB free, but only 2 of 4 qualify" in msg
    assert "GPU 0: 10.0 GiB free" in msg and "GPU 3: 40.0 GiB free" in msg
    assert info.value.exit_code == 1


def test_unknown_memory_only_without_minimum():
    src = FakeGpuSource(devices=[GpuSnapshot(index=0), gpu(1, 79, 100)])
    assert pick_gpus(2, source=src) == [1, 0]  # known (1 GiB free) before unknown
    assert pick_gpus(1, min_free_mem_gib=0.5, source=src) == [1]
    with pytest.raises(GpuPickError):
        pick_gpus(2, min_free_mem_gib=0.5, source=src)


def test_equal_gpus_tie_break_on_index():
    src = FakeGpuSource(devices=[gpu(i, 10, 20) for i in (3, 1, 2, 0)])
    assert [s.index for s in rank_gpus(src.snapshot_all())] == [0, 1, 2, 3]


def test_no_driver_and_bad_arguments():
    with pytest.raises(GpuPickError, match="no NVIDIA driver found"):
        pick_gpus(1, source=FakeGpuSource(driver=False))
    with pytest.raises(GpuPickError, match="no NVIDIA GPU found"):
        pick_gpus(1, source=FakeGpuSource(0))
    with pytest.raises(UsageError):
        pick_gpus(0, source=FOUR)
    with pytest.raises(UsageError):
        pick_gpus(1, min_free_mem_gib=-1, source=FOUR)


def test_resolve_gpus():
    assert resolve_gpus("auto", n=2, source=FOUR) == [2, 1]
    assert resolve_gpus("0, 3") == [0, 3]
    assert resolve_gpus(None) == [] and resolve_gpus("cpu") == []
    for bad in ("0,x", "1,1", "-1"):
        with pytest.raises(UsageError):
            resolve_gpus(bad)


def test_fake_source_is_deterministic_and_env_hook():
    a, b = FakeGpuSource(3), FakeGpuSource(3)
    assert [a.snapshot_all() for _ in range(5)] == [b.snapshot_all() for _ in range(5)]
    frozen = FakeGpuSource(2, advance=False)
    assert frozen.snapshot_all() == frozen.snapshot_all()
    first = FakeGpuSource(1).snapshot_all()[0]
    # tick 0, device 0: base 92% - 4 wobble; 61440 MiB used; 81559 MiB total
    assert (first.util, first.mem_used, first.mem_total) == (88.0, 61440 * 1024**2, 81559 * 1024**2)
    assert (first.temperature, first.power, first.fan) == (66.0, 615.0, None)
    assert source_from_env("") is None
    assert source_from_env("2").count == 2
    assert source_from_env("nodriver").status()[0] is False
    with pytest.raises(UsageError):
        source_from_env("lots")


class ListWriter:
    def __init__(self, fail_every=0):
        self.batches = []
        self.calls = 0
        self.fail_every = fail_every
        self.threads = set()

    def log_gpu_samples(self, samples):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("database is locked")
        self.batches.append(samples)


def test_sampler_writes_samples_in_background():
    writer = ListWriter()
    with GpuSampler(writer, interval=0.02, source=FakeGpuSource(2)) as sampler:
        deadline = time.monotonic() + 5
        while len(writer.batches) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.active
    assert len(writer.batches) >= 3
    assert writer.threads == {"rerankctl-gpu-sampler"}
    assert [row["gpu_index"] for row in writer.batches[0]] == [0, 1]
    assert set(writer.batches[0][0]) == {
        "gpu_index",
        "name",
        "util",
        "mem_used",
        "mem_total",
        "temperature",
        "power",
        "power_limit",
    }
    assert writer.batches[0][0]["util"] == 88.0  # tick 0 of the fake
    n = len(writer.batches)
    time.sleep(0.1)
    assert len(writer.batches) == n, "no writes after stop"
    assert not sampler.active


def test_sampler_is_a_noop_without_gpu_and_survives_errors():
    writer = ListWriter()
    with GpuSampler(writer, interval=0.01, source=FakeGpuSource(driver=False)) as sampler:
        time.sleep(0.05)
        assert not sampler.active
    assert writer.calls == 0

    flaky = ListWriter(fail_every=2)
    sampler = GpuSampler(flaky, interval=0.01, source=FakeGpuSource(1), gpu_indices=[0])
    assert [sampler.sample_once() for _ in range(4)] == [1, 0, 1, 0]
    assert sampler.errors == 2 and sampler.samples_written == 2

    class Broken(FakeGpuSource):
        def status(self):
            raise OSError("boom")

    with GpuSampler(writer, source=Broken()) as s:
        assert not s.active
    with pytest.raises(ValueError):
        GpuSampler(writer, interval=0)
