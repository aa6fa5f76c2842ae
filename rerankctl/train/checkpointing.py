"""Atomic checkpoints for every trainer, and finding the checkpoint ``--resume latest`` means.

The stock ``Trainer._save_checkpoint`` writes ``checkpoint-N/`` file by file in place, so a
``kill -9`` (or an OOM kill, or a power cut) during a save leaves a folder with a config and a
temp file, and ``--resume latest`` then picks that folder and fails ("Can't find a valid
checkpoint"). :class:`AtomicCheckpointMixin` makes the save a transaction:

1. every process writes its part into ``.tmp-checkpoint-N/checkpoint-N/`` (the Trainer's own
   save, redirected through ``_get_output_dir``; the staging name is the same on every rank, so
   the collective saves of DDP/FSDP/DeepSpeed still meet in one folder);
2. after a barrier, the main process writes a ``.complete`` marker, ``fsync``\\ s every file and
   renames the folder to its final name (one atomic ``rename``), then rotates old checkpoints.

A folder named ``checkpoint-N`` therefore only ever exists complete. :func:`find_resumable`
takes the newest checkpoint with the marker (or, for checkpoints written before the marker
existed, with a ``trainer_state.json``), removes leftover staging folders and reports every
partial checkpoint it skipped.

:func:`save_final_atomically` does the same for ``final/`` (and ``final_model/``): the model is
written to ``.tmp-final/`` and renamed over the old one only once complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankctl.atomic import fsync_dir, publish_dir, write_file

COMPLETE_MARKER = ".complete"
STAGING_PREFIX = ".tmp-"
HF_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def mark_complete(folder: str | os.PathLike, **info: Any) -> None:
    """Write the marker that says ``folder`` holds a complete checkpoint or model."""
    payload = {"time": time.time(), "pid": os.getpid(), **info}
    write_file(Path(folder) / COMPLETE_MARKER, (json.dumps(payload, sort_keys=True) + "\n").encode())


def is_complete(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a complete checkpoint: it has the marker, or it predates the marker
    (no marker but a ``trainer_state.json``, the last file the Trainer writes)."""
    folder = Path(folder)
    return (folder / COMPLETE_MARKER).is_file() or (folder / "trainer_state.json").is_file()


@dataclass
class ResumePoint:
    """What ``--resume latest`` found in an output directory."""

    checkpoint: Path | None
    skipped: list[Path] = field(default_factory=list)  # partial checkpoints, newest first
    removed: list[Path] = field(default_factory=list)  # leftover staging folders deleted

    def message(self) -> str | None:
        """One line naming the partial checkpoints that were skipped (None when there were none)."""
        if not self.skipped and not self.removed:
            return None
        parts = []
        if self.skipped:
            parts.append("skipped partial checkpoint(s) " + ", ".join(p.name for p in self.skipped))
        if self.removed:
            parts.append("removed unfinished save(s) " + ", ".join(p.name for p in self.removed))
        target = self.checkpoint.name if self.checkpoint is not None else "nothing"
        return f"--resume latest: {'; '.join(parts)}; resuming from {target}"


def find_resumable(
    folder: str | os.PathLike, pattern: re.Pattern = HF_CHECKPOINT_RE, *, clean: bool = True
) -> ResumePoint:
    """The newest complete checkpoint in ``folder`` whose name matches ``pattern``.

    Newer folders that are not complete are listed in ``skipped`` (kept on disk: a user may
    want to look at them); staging folders of saves that never finished are removed when
    ``clean`` (they are rerankctl's own temporaries and would otherwise pile up).
    """
    folder = Path(folder)
    point = ResumePoint(None)
    if not folder.is_dir():
        return point
    found = []
    for entry in folder.iterdir():
        if not entry.is_dir():
            continue
        if entry.name.startswith(STAGING_PREFIX) and pattern.match(entry.name[len(STAGING_PREFIX) :]):
            if clean:
                shutil.rmtree(entry, ignore_errors=True)
            point.removed.append(entry)
        elif match := pattern.match(entry.name):
            found.append((int(match.group(1)), entry))
    point.removed.sort(key=lambda p: p.name)
    for _step, path in sorted(found, reverse=True):
        if is_complete(path):
            point.checkpoint = path
            break
        point.skipped.append(path)
    return point


def resolve_resume_arg(
    resume: str | None,
    output_dir: str | os.PathLike,
    pattern: re.Pattern = HF_CHECKPOINT_RE,
    *,
    clean: bool = True,
) -> tuple[str | None, str | None]:
    """``(checkpoint, note)`` for ``--resume``: ``latest`` is the newest complete checkpoint of
    ``output_dir``; a path must be a complete checkpoint. ``note`` names skipped partial ones."""
    from rerankctl.errors import UsageError

    if not resume:
        return None, None
    example = pattern.pattern.strip("^$").replace("(\\d+)", "N")
    if resume == "latest":
        point = find_resumable(output_dir, pattern, clean=clean)
        if point.checkpoint is None:
            partial = [p.name for p in point.skipped + point.removed]
            detail = f" (only partial ones: {', '.join(partial)})" if partial else ""
            raise UsageError(
                f"--resume latest: no complete {example} in {output_dir}{detail}",
                hint="start without --resume",
            )
        return str(point.checkpoint), point.message()
    path = Path(resume)
    if not path.is_dir() or not is_complete(path):
        what = (
            "an unfinished checkpoint (no .complete marker)" if path.is_dir() else "not a checkpoint folder"
        )
        raise UsageError(f"--resume {resume}: {what}", hint=f"pass a complete {example} folder or 'latest'")
    return str(path), None


class AtomicCheckpointMixin:
    """Put before ``Trainer`` in the bases: checkpoints are staged, fsynced, renamed, marked complete.

    Subclasses may override :meth:`checkpoint_name` (the final folder name of step N) and
    :meth:`rotate_saved_checkpoints` (deleting old checkpoints past ``save_total_limit``).
    """

    _checkpoint_staging: Path | None = None

    def checkpoint_name(self, step: int) -> str:
        return f"checkpoint-{step}"

    def rotate_saved_checkpoints(self, run_dir: Path) -> None:
        from transformers.trainer_utils import rotate_checkpoints

        # Numeric order, not mtime: the rename does not touch the folders' mtimes reliably.
        rotate_checkpoints(
            output_dir=str(run_dir),
            save_total_limit=self.args.save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=False,
        )

    def _get_output_dir(self, trial):
        if self._checkpoint_staging is not None:
            return str(self._checkpoint_staging)  # the Trainer's save writes into the staging folder
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = Path(super()._get_output_dir(trial))
        step = self.state.global_step
        staging = run_dir / f"{STAGING_PREFIX}{self.checkpoint_name(step)}"
        if self.args.should_save and staging.exists():
            shutil.rmtree(staging)  # an earlier save of this step that was killed half-way
        self.accelerator.wait_for_everyone()
        self._checkpoint_staging = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._checkpoint_staging = None
        self.accelerator.wait_for_everyone()  # every rank has written its part (RNG state, shards)
        if not self.args.should_save:
            return
        written = staging / f"checkpoint-{step}"
        target = run_dir / self.checkpoint_name(step)
        best = self.state.best_model_checkpoint
        if best and Path(best) == written:
            # The Trainer saw the best checkpoint in the staging folder: record its final place.
            self.state.best_model_checkpoint = str(target)
            self.state.save_to_json(str(written / "trainer_state.json"))
        _fault_point("before-complete")
        self._flush_run_store()
        mark_complete(written, step=step)
        publish_dir(written, target)
        shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(run_dir)
        self.rotate_saved_checkpoints(run_dir)

    def _flush_run_store(self) -> None:
        """Commit the run store's buffered rows before the checkpoint becomes visible.

        A resume keeps the store's metrics up to the checkpoint's step and drops later ones;
        rows of those steps still buffered when a kill lands right after the rename would
        otherwise be lost for good (the resumed run does not log those steps again).
        """
        for callback in self.callback_handler.callbacks:
            writer = getattr(callback, "writer", None)
            if writer is not None and hasattr(writer, "flush"):
                try:
                    writer.flush()
                except Exception as exc:  # noqa: BLE001 - a busy store must not fail the save
                    import warnings

                    warnings.warn(f"run store: could not commit before the checkpoint: {exc}", stacklevel=2)

    def save_final(self, target: str | os.PathLike, extra: Callable[[str], None] | None = None) -> Path:
        """``save_model`` into ``target`` atomically (every rank calls it: FSDP/DeepSpeed gather the
        weights collectively); ``extra(folder)`` adds files (the tokenizer) on the main process."""
        target = Path(target)
        staging = target.parent / f"{STAGING_PREFIX}{target.name}"
        if self.args.should_save and staging.exists():
            shutil.rmtree(staging)
        self.accelerator.wait_for_everyone()
        self.save_model(str(staging))
        if self.args.should_save:
            if extra is not None:
                extra(str(staging))
            mark_complete(staging)
            publish_dir(staging, target)
        self.accelerator.wait_for_everyone()
        return target


def save_final_atomically(target: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Run ``write(folder)`` into ``.tmp-<name>/`` next to ``target``, mark it, then rename it there.

    Used for ``final/`` and ``final_model/``: a kill during the save leaves the previous model
    (or none), never a half-written one that ``rerank`` or ``serve`` would fail to load.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f"{STAGING_PREFIX}{target.name}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        write(str(staging))
        mark_complete(staging)
        return publish_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fault_point(where: str) -> None:
    """Test hook: ``RERANKCTL_FAULT_SLEEP=<where>:<seconds>`` sleeps here (a window to kill in)."""
    spec = os.environ.get("RERANKCTL_FAULT_SLEEP")
    if not spec:
        return
    name, _, seconds = spec.partition(":")
    if name == where:
        time.sleep(float(seconds or 1))
