"""Atomic checkpoints: what ``--resume latest`` picks, skips and cleans; atomic directory publish."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from rerankctl.atomic import dir_mode, file_mode, publish_dir, temp_dir, temp_file, write_file
from rerankctl.errors import UsageError
from rerankctl.train.checkpointing import (
    COMPLETE_MARKER,
    find_resumable,
    is_complete,
    mark_complete,
    resolve_resume_arg,
    save_final_atomically,
)
from rerankctl.train.reward_base import CHECKPOINT_RE


def _checkpoint(folder, name, *, complete=True, state=True):
    path = folder / name
    path.mkdir()
    (path / "config.json").write_text("{}")
    if state:
        (path / "trainer_state.json").write_text(
            json.dumps({"global_step": int(re.split(r"[-_]", name)[-1])})
        )
    if complete:
        mark_complete(path)
    return path


def test_latest_skips_partial_checkpoints_and_removes_unfinished_saves(tmp_path):
    _checkpoint(tmp_path, "checkpoint-2")
    good = _checkpoint(tmp_path, "checkpoint-4")
    partial = _checkpoint(
        tmp_path, "checkpoint-6", complete=False, state=False
    )  # e.g. an old-style torn save
    staging = tmp_path / ".tmp-checkpoint-8" / "checkpoint-8"
    staging.mkdir(parents=True)
    (staging / "model.safetensors.tmp").write_bytes(b"half")

    point = find_resumable(tmp_path)
    assert point.checkpoint == good
    assert point.skipped == [partial] and partial.is_dir()  # kept for inspection
    assert [p.name for p in point.removed] == [".tmp-checkpoint-8"]
    assert not (tmp_path / ".tmp-checkpoint-8").exists()
    message = point.message()
    assert "checkpoint-6" in message and ".tmp-checkpoint-8" in message
    assert message.endswith("resuming from checkpoint-4")

    resume, note = resolve_resume_arg("latest", tmp_path)
    assert resume == str(good) and "checkpoint-6" in note


def test_a_checkpoint_without_marker_but_with_trainer_state_is_complete(tmp_path):
    legacy = _checkpoint(tmp_path, "checkpoint-3", complete=False)  # written before the marker existed
    assert is_complete(legacy)
    assert find_resumable(tmp_path).checkpoint == legacy
    assert find_resumable(tmp_path).message() is None


def test_latest_with_only_partial_checkpoints_is_a_usage_error(tmp_path):
    _checkpoint(tmp_path, "checkpoint-5", complete=False, state=False)
    with pytest.raises(UsageError, match=r"no complete checkpoint-N in .*only partial ones: checkpoint-5"):
        resolve_resume_arg("latest", tmp_path)
    with pytest.raises(UsageError, match="unfinished checkpoint"):
        resolve_resume_arg(str(tmp_path / "checkpoint-5"), tmp_path)
    with pytest.raises(UsageError, match="not a checkpoint folder"):
        resolve_resume_arg(str(tmp_path / "nowhere"), tmp_path)
    assert resolve_resume_arg(None, tmp_path) == (None, None)


def test_reward_checkpoint_names(tmp_path):
    _checkpoint(tmp_path, "checkpoint_step_5")
    (tmp_path / ".tmp-checkpoint_step_10").mkdir()
    resume, note = resolve_resume_arg("latest", tmp_path, CHECKPOINT_RE)
    assert resume.endswith("checkpoint_step_5") and ".tmp-checkpoint_step_10" in note
    with pytest.raises(UsageError, match="checkpoint_step_N"):
        resolve_resume_arg("latest", tmp_path / "empty", CHECKPOINT_RE)


def test_publish_dir_replaces_the_old_directory_whole(tmp_path):
    target = tmp_path / "final"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    staged = tmp_path / ".tmp-final"
    staged.mkdir()
    (staged / "new.bin").write_bytes(b"new")
    os.chmod(staged / "new.bin", 0o600)  # as safetensors writes its files
    old = os.umask(0o022)
    try:
        publish_dir(staged, target)
    finally:
        os.umask(old)
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert stat.S_IMODE(os.stat(target / "new.bin").st_mode) == 0o644
    assert not staged.exists() and [p.name for p in tmp_path.iterdir()] == ["final"]


def test_save_final_atomically_marks_complete_and_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "final"
    save_final_atomically(target, lambda d: open(os.path.join(d, "w.bin"), "wb").write(b"1"))
    assert (target / "w.bin").read_bytes() == b"1" and (target / COMPLETE_MARKER).is_file()

    def broken(folder):
        (open(os.path.join(folder, "w.bin"), "wb")).write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_final_atomically(target, broken)
    assert (target / "w.bin").read_bytes() == b"1"  # the previous model is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]  # no staging folder left


def test_temp_files_and_dirs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        fd, name = temp_file(tmp_path / "x.jsonl")
        os.close(fd)
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o644 == file_mode()
        folder = temp_dir(tmp_path, ".tmp-")
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755 == dir_mode()
        written = write_file(tmp_path / "r.json", b"{}")
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(os.stat(write_file(tmp_path / "p.json", b"{}")).st_mode) == 0o600
    finally:
        os.umask(old)
