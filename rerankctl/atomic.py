"""Durable, atomic writes of files and directories whose modes follow the umask.

Everything rerankctl writes that another process may read half-way (a data file, a report,
a checkpoint, a trained model) is written next to its target under a temporary name, flushed
to disk (``fsync``) and renamed into place, so a reader or a resumed run sees the old version
or the complete new one, never a torn one, even after ``kill -9`` or a power cut.

``tempfile.mkstemp`` creates files ``0600`` and ``mkdtemp`` directories ``0700`` (they are
meant to be private); renamed into place as results they would make a trained model unreadable
to the other users of a shared machine or a container. :func:`temp_file` and :func:`temp_dir`
give them the modes a plain ``open()`` / ``mkdir()`` would have under the current umask.

Standard library only: this module is imported by light code paths (data tools, reports).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (read from ``/proc`` where possible: ``os.umask`` has to set it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` minus the umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode ``mkdir`` gives a new directory: ``0o777`` minus the umask (0755 under 022)."""
    return 0o777 & ~current_umask()


def temp_file(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new temp file next to ``path`` with the umask's file mode (not 0600)."""
    import tempfile  # not at module level: it costs ~10 ms of every start-up

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.fchmod(fd, file_mode())
    return fd, tmp


def temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new uniquely named directory in ``parent`` with the umask's directory mode (not 0700)."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and Windows) cannot fsync a directory
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> int:
    """``fsync`` every file and directory under ``root`` (deepest first); returns the file count."""
    count = 0
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            count += 1
        fsync_dir(folder)
    return count


def apply_modes(root: str | os.PathLike) -> None:
    """Give every file and directory under ``root`` the umask's mode (0644 / 0755 under 022).

    For trees rerankctl has just written in full: some writers create private files
    (``safetensors`` writes ``0600``), which a published model must not keep.
    """
    fmode, dmode = file_mode(), dir_mode()
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, dmode)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, fmode)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file next to ``path``; rename it over ``path`` only if the block succeeds.

    The file is fsynced before the rename and the directory after it, so a crash leaves the old
    file or the complete new one; its mode is what a plain ``open()`` would give (not 0600).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(target)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)  # the rename itself survives a crash


def write_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def publish_dir(staged: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Make the complete directory ``staged`` appear as ``target``: give its files the umask's
    modes, fsync it, then rename it there.

    An existing ``target`` is first renamed aside (``.old-<name>-...``) and removed only after
    the new one is in place, so at every moment there is a complete old or new directory on
    disk (a crash between the two renames leaves the old one under its ``.old-`` name).
    """
    staged, target = Path(staged), Path(target)
    apply_modes(staged)
    fsync_tree(staged)
    old = None
    if target.exists():
        old = target.parent / f".old-{target.name}-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(staged, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
