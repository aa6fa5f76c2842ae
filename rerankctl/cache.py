"""Shared caches built once, under a lock, even when several workers ask at the same moment.

``train sft --preset tiny --gpus cpu:2`` on a fresh ``RERANKCTL_HOME`` starts two workers that
both find the built-in model missing; without a lock both built it into the same directory and
one read it half-written. :func:`build_once` takes an exclusive ``flock`` on ``<target>.lock``,
checks again under the lock, and builds only if the cache is still missing (the build itself
writes to a temporary directory and renames, so readers never see a partial cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def build_once(target: Path, ready: Callable[[Path], bool], build: Callable[[Path], object]) -> Path:
    """Return ``target`` after making sure ``ready(target)``; ``build(target)`` runs at most once."""
    if ready(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # Windows: no flock; a single process is the common case there
            pass
        if not ready(target):  # someone else may have built it while we waited
            build(target)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
    return target
