"""The GPU sampler writing into the real run store from its own thread."""

from __future__ import annotations

import time

from rerankctl.gpu.fake import FakeGpuSource
from rerankctl.gpu.sampler import GpuSampler
from rerankctl.store import RunStore


def test_sampler_rows_land_in_the_store(tmp_path):
    store = RunStore.open(tmp_path / "runs.db")
    writer = store.create_run(kind="sft", config={}, name="sampled")
    with GpuSampler(writer, interval=0.02, source=FakeGpuSource(2)) as sampler:
        deadline = time.monotonic() + 10
        while sampler.samples_written < 6 and time.monotonic() < deadline:
            writer.log_metrics(1, {"loss": 1.0})  # the training loop logs concurrently
            time.sleep(0.01)
    writer.finish()
    rows = store.gpu_samples_since(0)
    assert len(rows) == sampler.samples_written >= 6
    assert {r.run_id for r in rows} == {writer.id}
    first = [r for r in rows[:2]]
    # tick 0 of the fake: GPU 0 at 88% with 61440 MiB used, GPU 1 at 3% with 1024 MiB; 700 W limit
    assert [(r.gpu_index, r.util, r.mem_used) for r in first] == [
        (0, 88.0, 61440 * 2**20),
        (1, 3.0, 1024 * 2**20),
    ]
    assert all(r.power_limit == 700.0 and r.name == "NVIDIA H100 80GB HBM3" for r in rows)
    assert sampler.errors == 0
    store.close()


def test_sampler_survives_a_finished_writer(tmp_path):
    store = RunStore.open(tmp_path / "runs.db")
    writer = store.create_run(kind="sft", config={}, name="done")
    writer.finish()
    sampler = GpuSampler(writer, interval=1.0, source=FakeGpuSource(1))
    # A finished writer ignores rows (or raises): either way the sampler must not.
    assert sampler.sample_once() in (0, 1)
    assert store.gpu_samples_since(0) == []
    store.close()
