"""Shared bookkeeping of a training run in the run store: final status, summary, GPU sampling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any


@contextmanager
def run_status(writer: Any, store: Any = None) -> Iterator[None]:
    """Close the run ``failed`` (with the error) or ``killed`` (Ctrl-C) when the body raises.

    A body that returns normally finishes the run itself (it knows the summary); the store
    is closed either way. ``writer`` and ``store`` are ``None`` on non-main processes.
    """
    try:
        yield
    except KeyboardInterrupt:
        if writer is not None:
            writer.finish("killed", error="interrupted by the user (Ctrl-C)")
        raise
    except BaseException as exc:
        if writer is not None:
            writer.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if store is not None:
            store.close()


def finish_completed(
    writer: Any, final_dir: Any, step: int, train_seconds: float, baseline: dict, final: dict
) -> None:
    """Record the final model, the before/after metrics as the run summary, and ``completed``."""
    if writer is None:
        return
    writer.log_artifact("final", str(final_dir), step=step)
    summary = {"train_seconds": round(train_seconds, 2), "global_step": step}
    summary.update({f"baseline_{k}": v for k, v in baseline.items()})
    summary.update({f"final_{k}": v for k, v in final.items()})
    writer.set_summary(summary)
    writer.finish("completed")


def gpu_sampling(writer: Any):
    """Sample GPU use into the run store while training (main process only; a no-op without GPUs)."""
    if writer is None:
        return nullcontext()
    from rerankctl.gpu.sampler import GpuSampler

    return GpuSampler(writer, interval=5.0)


def evaluate_then_train(trainer: Any, prompt: Any, eval_groups: list, cfg: Any, writer: Any, resume: Any):
    """Score the untrained model on the held-out groups (logged at step 0), then train.

    Returns ``(baseline metrics, training seconds)``. A resumed run skips the baseline: its
    step-0 model is no longer the one being resumed.
    """
    import time

    from rerankctl.train.sft import rank_eval_groups

    baseline: dict[str, float] = {}
    if eval_groups and resume is None:
        baseline = rank_eval_groups(
            trainer.model,
            prompt,
            eval_groups,
            prompt.yes_id,
            prompt.no_id,
            batch_size=cfg.eval_batch_size,
            device=trainer.args.device,
            cache=trainer,
        )
        if writer is not None:
            writer.log_metrics(0, {f"eval_{k}": v for k, v in baseline.items()})
    started = time.perf_counter()
    with gpu_sampling(writer):
        trainer.train(resume_from_checkpoint=resume)
    return baseline, time.perf_counter() - started
