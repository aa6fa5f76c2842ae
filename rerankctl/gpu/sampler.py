"""A background thread that writes GPU samples into the run store while a run trains.

Monitoring must never hurt training: without a GPU the sampler does nothing, and any error
while reading or writing is logged once and swallowed. The thread is a daemon, so a training
process that exits without `stop` is not held open by it.

    with GpuSampler(writer, interval=5.0):
        trainer.train()

In a multi-process (accelerate) run, start it in the main process only, next to the only
`RunWriter`; pass ``gpu_indices`` to record just the GPUs the run uses.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from rerankctl.gpu.snapshot import GpuSource

log = logging.getLogger(__name__)


class SampleWriter(Protocol):
    """What the sampler needs from a run writer (``rerankctl.store`` ``RunWriter``)."""

    def log_gpu_samples(self, samples: list[dict[str, Any]]) -> Any: ...


class GpuSampler:
    """Sample every ``interval`` seconds from ``source`` (default: NVML) into ``writer``.

    Args:
        writer: anything with ``log_gpu_samples(list[dict])``.
        interval: seconds between samples (the first sample is taken at start).
        source: a `GpuSource`; default `rerankctl.gpu.fake.default_source()`.
        gpu_indices: only these GPUs (e.g. the ones the run trains on); default all.
    """

    def __init__(
        self,
        writer: SampleWriter,
        interval: float = 5.0,
        source: GpuSource | None = None,
        gpu_indices: list[int] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds (got {interval})")
        self.writer = writer
        self.interval = float(interval)
        self._source = source
        self.gpu_indices = set(gpu_indices) if gpu_indices is not None else None
        self.samples_written = 0
        self.errors = 0
        self.active = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> GpuSampler:
        """Start sampling in a daemon thread; a no-op (``active`` stays False) without a GPU."""
        if self._thread is not None:
            return self
        try:
            if self._source is None:
                from rerankctl.gpu.fake import default_source

                self._source = default_source()
            ok, message = self._source.status()
        except Exception as exc:  # noqa: BLE001 - never crash training over monitoring
            ok, message = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            log.info("GPU sampling off: %s", message)
            return self
        self.active = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="rerankctl-gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def sample_once(self) -> int:
        """Take and write one sample now; returns the number of GPU rows written (0 on error)."""
        try:
            snapshots = self._source.snapshot_all() if self._source is not None else []
            rows = [
                s.to_sample() for s in snapshots if self.gpu_indices is None or s.index in self.gpu_indices
            ]
            if rows:
                self.writer.log_gpu_samples(rows)
            self.samples_written += len(rows)
            return len(rows)
        except Exception as exc:  # noqa: BLE001 - a closed store or a lost GPU must not stop training
            self.errors += 1
            if self.errors == 1:
                log.warning("GPU sampling failed (further errors are not shown): %s", exc)
            return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.active = False

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
