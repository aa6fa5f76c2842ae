"""Several models at once: parallel evaluation, failures kept per model, GPU placement."""

from __future__ import annotations

import threading

import pytest

from rerankctl.eval.multi import (
    ModelEvalError,
    evaluate_multiple_models,
    evaluate_with_gpu_balance,
    plan_gpus,
)
from rerankctl.gpu.fake import FakeGpuSource
from rerankctl.gpu.snapshot import GIB, GpuSnapshot


def by_length(query, docs):
    return [float(len(d)) for d in docs]


def shortest_first(query, docs):
    return [-float(len(d)) for d in docs]


def test_two_models_run_at_the_same_time_and_keep_their_own_scores():
    barrier = threading.Barrier(2, timeout=10)

    def gated(fn):
        def score(query, docs):
            barrier.wait()  # both models must be scoring at once, or this times out
            return fn(query, docs)

        return score

    seen = []
    out = evaluate_multiple_models(
        {"long": gated(by_length), "short": gated(shortest_first)},
        ["MockRerankingTask"],
        model_workers=2,
        workers=1,
        on_result=lambda model, score: seen.append((model, score.task)),
    )
    assert not out.errors
    assert out.results["long"]["MockRerankingTask"].main_score == pytest.approx(0.75)
    assert out.results["short"]["MockRerankingTask"].main_score == pytest.approx(0.75)
    # Same MAP, different rankings: length puts q1's relevant document first, shortest-first q2's.
    assert out.results["long"]["MockRerankingTask"].metrics["precision_at_1"] == pytest.approx(0.5)
    assert sorted(seen) == [("long", "MockRerankingTask"), ("short", "MockRerankingTask")]


def test_a_failing_model_is_named_and_the_rest_is_kept():
    def broken(query, docs):
        raise ConnectionError("http://127.0.0.1:1/v1/rerank refused")

    out = evaluate_multiple_models(
        {"good": by_length, "http://127.0.0.1:1": broken},
        ["MockRerankingTask", "MockMultilingualRerankingTask"],
        model_workers=2,
    )
    assert set(out.results["good"]) == {"MockRerankingTask", "MockMultilingualRerankingTask"}
    assert out.results["http://127.0.0.1:1"] == {}
    assert (
        "refused" in out.errors["http://127.0.0.1:1"]
        and "MockRerankingTask" in out.errors["http://127.0.0.1:1"]
    )
    with pytest.raises(ModelEvalError) as err:
        out.raise_for_errors()
    assert "http://127.0.0.1:1" in err.value.message and "2 task result(s)" in err.value.hint


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_forked_models_give_the_thread_results_and_run_at_the_same_time(tmp_path):
    import multiprocessing
    import os

    # Both children must be scoring at once, or the barrier (shared over fork) times out.
    barrier = multiprocessing.get_context("fork").Barrier(2, timeout=10)

    def gated(fn):
        def score(query, docs):
            barrier.wait()
            return fn(query, docs)

        return score

    pids: dict[str, int] = {}
    forked = evaluate_multiple_models(
        {"long": gated(by_length), "short": gated(shortest_first)},
        ["MockRerankingTask"],
        model_workers=2,
        workers=1,
        processes=True,
        on_result=lambda model, score: pids.setdefault(model, os.getpid()),
    )
    threaded = evaluate_multiple_models(
        {"long": by_length, "short": shortest_first}, ["MockRerankingTask"], model_workers=2, processes=False
    )
    assert not forked.errors
    for model in ("long", "short"):
        assert (
            forked.results[model]["MockRerankingTask"].metrics
            == threaded.results[model]["MockRerankingTask"].metrics
        )
    assert set(pids.values()) == {os.getpid()}  # on_result runs in this process, not in the children


def test_a_forked_model_that_fails_or_dies_is_named():
    import os

    def broken(query, docs):
        raise ConnectionError("refused")

    def dies(query, docs):
        os._exit(7)  # as if killed: no answer comes back

    out = evaluate_multiple_models(
        {"good": by_length, "broken": broken, "dies": dies},
        ["MockRerankingTask", "MockMultilingualRerankingTask"],
        model_workers=2,
        processes=True,
    )
    assert set(out.results["good"]) == {"MockRerankingTask", "MockMultilingualRerankingTask"}
    assert "refused" in out.errors["broken"] and "MockRerankingTask" in out.errors["broken"]
    assert "exit code 7" in out.errors["dies"]


def test_endpoints_fork_other_models_use_threads():
    from rerankctl.eval.multi import _forkable
    from rerankctl.serve.client import APIReranker

    endpoint = APIReranker("http://127.0.0.1:1", use_cache=False)
    assert _forkable([endpoint, endpoint])
    assert not _forkable([endpoint, by_length])


def _gpus(*free_gib):
    return FakeGpuSource(
        devices=[GpuSnapshot(index=i, mem_used=int((80 - f) * GIB), mem_total=80 * GIB, util=10.0)
                 for i, f in enumerate(free_gib)],
        advance=False,
    )  # fmt: skip


def test_plan_uses_the_freest_gpus_first():
    slots, notes = plan_gpus(["a", "b"], source=_gpus(10, 70, 40))
    assert slots == ["cuda:1", "cuda:2"]
    assert "1 (70.0 GiB free)" in notes[0]
    slots, _ = plan_gpus(["a", "b", "c"], max_models_per_gpu=2, source=_gpus(10, 70, 40))
    assert slots == ["cuda:1", "cuda:2", "cuda:1", "cuda:2"]  # 3 models, 2 per GPU: two GPUs
    slots, notes = plan_gpus(["a"], source=FakeGpuSource(0, driver=False))
    assert slots == ["cpu"] and "CPU" in notes[0]


class Recorder:
    """A loader that records where each model went and how many share a device at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.devices: dict[str, str] = {}

    def __call__(self, path, device):
        with self.lock:
            self.devices[path] = device
            self.active[device] = self.active.get(device, 0) + 1
            self.peak[device] = max(self.peak.get(device, 0), self.active[device])
        recorder = self

        def score(query, docs):
            return by_length(query, docs)

        class Model:
            name = path

            def score_pairs(self, queries, docs, instruction=None, batch_size=32):
                import time

                time.sleep(0.05)  # hold the slot long enough for overlaps to show
                return [float(len(d)) for d in docs]

            def __del__(self):
                with recorder.lock:
                    recorder.active[device] -= 1

        return Model()


def test_gpu_balance_respects_max_models_per_gpu():
    rec = Recorder()
    out = evaluate_with_gpu_balance(
        ["m1", "m2", "m3", "m4"],
        ["MockRerankingTask"],
        max_models_per_gpu=1,
        source=_gpus(20, 60),
        loader=rec,
    )
    assert not out.errors
    assert all(out.results[m]["MockRerankingTask"].main_score == pytest.approx(0.75) for m in out.results)
    assert set(rec.devices.values()) == {"cuda:0", "cuda:1"}
    assert rec.peak == {"cuda:0": 1, "cuda:1": 1}
    assert out.placements == rec.devices


def test_gpu_balance_with_an_explicit_map_and_without_gpus():
    rec = Recorder()
    out = evaluate_with_gpu_balance(
        ["m1", "m2"], ["MockRerankingTask"], gpu_map={"m1": 3, "m2": 3}, max_models_per_gpu=1, loader=rec
    )
    assert out.placements == {"m1": "cuda:3", "m2": "cuda:3"} and rec.peak == {"cuda:3": 1}

    rec = Recorder()
    out = evaluate_with_gpu_balance(
        ["m1"], ["MockRerankingTask"], source=FakeGpuSource(0, driver=False), loader=rec
    )
    assert out.placements == {"m1": "cpu"} and "CPU" in out.notes[0]
    assert out.results["m1"]["MockRerankingTask"].main_score == pytest.approx(0.75)


def test_gpu_map_must_place_every_model():
    from rerankctl.errors import UsageError

    with pytest.raises(UsageError, match="m2"):
        evaluate_with_gpu_balance(["m1", "m2"], ["MockRerankingTask"], gpu_map={"m1": 0}, loader=Recorder())
