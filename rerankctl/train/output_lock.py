"""One live training per output directory.

Two trainings writing into the same ``--output`` overwrite each other's checkpoints and
``final/`` with no warning. :class:`OutputLock` takes an exclusive ``flock`` on
``<output>/.rerankctl.lock`` and writes its pid, host and command into the file; a second run
finds the lock held and is refused (exit 2) naming the pid that holds it.

``flock`` locks belong to the open file, so the kernel releases them when the holder dies in
any way (``kill -9`` included): a lock file left behind by a dead process is simply taken
over, and the new holder says whose it was. On filesystems without ``flock`` (some network
mounts) the pid in the file decides: a live pid refuses, a dead one is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from rerankctl.errors import UsageError

LOCK_NAME = ".rerankctl.lock"


class OutputLock:
    """An exclusive lock on an output directory; use :meth:`acquire` and :meth:`release`."""

    def __init__(self, path: Path, fd: int, previous: dict | None) -> None:
        self.path = path
        self._fd: int | None = fd
        self.previous = previous  # the stale holder this lock took over, if any

    @classmethod
    def acquire(cls, output_dir: str | os.PathLike) -> OutputLock:
        """Lock ``output_dir`` (created if missing) or raise a UsageError naming the live holder."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / LOCK_NAME
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            holder = _read_holder(fd)
            if not _try_flock(fd, holder):
                os.close(fd)
                raise _refusal(output_dir, holder)
            # The file may have been unlinked by a holder releasing it between our open and
            # our flock: then we locked an orphan inode; open the path afresh.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = holder if holder and holder.get("pid") not in (None, os.getpid()) else None
        me = {
            "pid": os.getpid(),
            "host": _hostname(),
            "started": time.time(),
            "command": " ".join(sys.argv[:8]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        return cls(path, fd, stale)

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding it: a later opener re-checks the inode
        os.close(self._fd)
        self._fd = None

    def stale_message(self) -> str | None:
        """A line about the dead run whose lock was taken over (None when there was none)."""
        if not self.previous:
            return None
        return (
            f"took over the lock of {self.path.parent} left by pid {self.previous.get('pid')}"
            f" on {self.previous.get('host', '?')}, which is no longer running"
        )

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _try_flock(fd: int, holder: dict | None) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS
        return not _holder_alive(holder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a filesystem without flock: trust the pid in the file
        return not _holder_alive(holder)
    return True


def _holder_alive(holder: dict | None) -> bool:
    from rerankctl.store.procs import pid_alive

    if not holder or holder.get("host") not in (None, _hostname()):
        return bool(holder)  # another host's lock cannot be checked: respect it
    return pid_alive(holder.get("pid"))


def _refusal(output_dir: Path, holder: dict | None) -> UsageError:
    who = f"pid {holder.get('pid')}" if holder and holder.get("pid") else "another process"
    if holder and holder.get("host") and holder.get("host") != _hostname():
        who += f" on {holder['host']}"
    return UsageError(
        f"{output_dir} is in use by a running training ({who})",
        hint="wait for it to finish, stop it, or pass a different --output",
    )


def _hostname() -> str:
    import socket

    return socket.gethostname()
