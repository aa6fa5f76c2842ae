"""Shared bookkeeping of a training run: output lock, run store row, final status, GPU sampling.

:func:`begin_training` does the pre-flight every trainer shares, in an order that leaves
nothing behind when it fails: lock the output directory (a second live run into it is
refused), find the checkpoint to resume from, then open the run in the store, or, for a
training resumed from a checkpoint of its own output directory, reopen the run that wrote it
(same id, an event marking the resume, its metrics continuing from the checkpoint's step).

:meth:`TrainingSession.status` then guards the training: SIGTERM and SIGHUP become
:class:`~rerankctl.errors.Terminated`, so a stopped run is recorded ``killed`` with the signal
named in its events (instead of ``failed``/"process died"); Ctrl-C is recorded ``killed`` and
re-raised as :class:`~rerankctl.errors.Interrupted` carrying the line that says how to resume.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rerankctl.errors import Interrupted, Terminated

_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def checkpoint_step(checkpoint: str | os.PathLike) -> int:
    """The global step a checkpoint was saved at (its trainer_state.json, else its folder name)."""
    import json

    state = Path(checkpoint) / "trainer_state.json"
    try:
        return int(json.loads(state.read_text("utf-8"))["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        match = re.search(r"(\d+)$", Path(checkpoint).name)
        return int(match.group(1)) if match else 0


class TrainingSession:
    """The output lock, run store and writer of one training (all ``None`` off the main process)."""

    def __init__(self, output_dir: Path, lock: Any, store: Any, writer: Any, resume: str | None) -> None:
        self.output_dir = output_dir
        self.lock = lock
        self.store = store
        self.writer = writer
        self.resume = resume
        self.continued = False  # True when an existing run of the store was reopened

    @property
    def run_id(self) -> str | None:
        return self.writer.id if self.writer is not None else None

    def resume_hint(self) -> str:
        return (
            f"interrupted; to continue this training, run the same command with "
            f"--resume latest --output {self.output_dir}"
        )

    def close(self) -> None:
        """Release the lock and close the store (idempotent)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.store is not None:
            self.store.close()
            self.store = None

    @contextmanager
    def status(self) -> Iterator[TrainingSession]:
        """Close the run ``failed`` (with the error) or ``killed`` (Ctrl-C, SIGTERM, SIGHUP) when
        the body raises; a body that returns normally finishes the run itself (it knows the
        summary). The lock and the store are released either way."""
        writer = self.writer
        try:
            with stop_signals_raise():
                yield self
        except Terminated as exc:
            if writer is not None:
                writer.log_event(f"killed by {exc.signame}", level="error")
                writer.finish("killed", error=f"killed by {exc.signame}")
            raise
        except KeyboardInterrupt as exc:
            if writer is not None:
                writer.log_event("interrupted by the user (Ctrl-C)", level="warning")
                writer.finish("killed", error="interrupted by the user (Ctrl-C)")
            if isinstance(exc, Interrupted):
                raise
            # Printed here: Typer turns a KeyboardInterrupt into a bare exit 130 before the CLI's
            # own handler could say anything.
            print(self.resume_hint(), file=sys.stderr, flush=True)
            raise Interrupted(self.resume_hint(), printed=True) from None
        except BaseException as exc:
            if writer is not None:
                writer.finish("failed", error=f"{type(exc).__name__}: {exc}")
                self._discard_if_preflight(exc)
            raise
        finally:
            self.close()

    def _discard_if_preflight(self, exc: BaseException) -> None:
        """Delete a new run that failed on bad input before its first training step.

        A usage or input error (exit 2: a bad flag combination, a missing model or data file)
        found while setting up is not a training that ran; a failed row for it would bury the
        real runs in ``rerankctl runs``. A resumed run keeps its row (it has a history).
        """
        from rerankctl.errors import EXIT_USAGE, RerankctlError

        if self.continued or self.store is None or self.writer is None:
            return
        if not isinstance(exc, RerankctlError) or exc.exit_code != EXIT_USAGE:
            return
        if self.store.last_step(self.writer.id):
            return  # it trained some steps: keep the record of them
        self.store.delete_run(self.writer.id)


def begin_training(
    kind: str,
    *,
    config: dict,
    name: str,
    output_dir: str | os.PathLike,
    tags: tuple | list = (),
    store_path: str | None = None,
    resolve_resume: Callable[[], tuple[str | None, str | None]] | None = None,
) -> TrainingSession:
    """Lock ``output_dir``, resolve the checkpoint to resume, open (or reopen) the run.

    ``resolve_resume() -> (checkpoint or None, note or None)`` runs under the lock (it may
    clean up unfinished saves); its note (the partial checkpoints it skipped) is printed as one
    stderr line and logged as an event. Any failure here releases the lock and leaves no run.
    """
    from rerankctl.store import RunStore
    from rerankctl.train.output_lock import OutputLock

    output_dir = Path(output_dir)
    main = is_main_process()
    lock = OutputLock.acquire(output_dir) if main else None
    store = None
    try:
        resume, note = resolve_resume() if resolve_resume is not None else (None, None)
        if note and main:
            print(note, file=sys.stderr)
        session = TrainingSession(output_dir, lock, None, None, resume)
        if not main:
            return session
        store = RunStore.open(store_path)
        session.store = store
        previous = store.run_for_output(kind, output_dir) if resume and _inside(resume, output_dir) else None
        if previous is not None:
            step = checkpoint_step(resume)
            writer, dropped = store.continue_run(previous.id, step, config)
            session.continued = True
            message = f"resumed from {Path(resume).name} (step {step}) by pid {os.getpid()}"
            if dropped:
                message += f"; {dropped} metric rows logged after step {step} dropped (those steps run again)"
            if name and name != previous.name:
                message += f"; run name {name!r} ignored: a resumed training keeps its run {previous.name!r}"
            writer.log_event(message, step=step)
        else:
            writer = store.create_run(
                kind=kind, config=config, name=name, output_dir=str(output_dir), tags=tuple(tags)
            )
            if resume:
                writer.log_event(f"started from checkpoint {resume}", step=checkpoint_step(resume))
        session.writer = writer
        if lock is not None and lock.stale_message():
            writer.log_event(lock.stale_message(), level="warning")
        if note:
            writer.log_event(note, level="warning")
        writer.flush()  # committed now: a kill in the first seconds must not lose the resume event
        return session
    except BaseException:
        if lock is not None:
            lock.release()
        if store is not None:
            store.close()
        raise


def _inside(checkpoint: str, output_dir: Path) -> bool:
    try:
        return Path(checkpoint).resolve().parent == output_dir.resolve()
    except OSError:
        return False


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    Their default action kills the process on the spot: the run would stay ``running`` until
    the store marks it failed ("process died"), with nothing saying a signal stopped it.
    Outside the main thread (signal handlers can only be set there) this does nothing. A signal
    the process ignores is left ignored: under ``nohup`` (SIGHUP ignored) logging out must not stop
    the run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise Terminated(signum)

    saved = {}
    for sig_name in _STOP_SIGNALS:
        sig = getattr(signal, sig_name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            saved[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


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
