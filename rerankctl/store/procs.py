"""Is the process that owns a run still alive? (used to mark crashed runs failed)."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return socket.gethostname()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None off Linux / when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    return data[data.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), or None when unknown."""
    fields = _proc_stat(pid)
    if not fields or len(fields) < 20:
        return None
    try:
        return int(fields[19])  # field 22 of stat; fields[0] is field 3 (state)
    except ValueError:
        return None


def pid_alive(pid: int | None, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs on this host and is the same process that started at ``start_time``.

    A zombie (killed, not yet reaped by its parent) counts as dead, and so does a
    live process whose start time differs (the pid was reused).
    """
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        return not os.path.isdir("/proc/self")  # no /proc: trust os.kill
    if fields[0] == "Z":
        return False
    if start_time is not None:
        now_start = process_start_time(pid)
        if now_start is not None and now_start != start_time:
            return False
    return True
