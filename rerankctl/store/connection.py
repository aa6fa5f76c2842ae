"""Opening SQLite connections for the run store, and retrying the rare busy moments.

Every connection runs in autocommit mode (``isolation_level=None``) and writes
with explicit ``BEGIN IMMEDIATE`` transactions: taking the write lock up front
means ``busy_timeout`` covers the whole wait, instead of a deferred transaction
failing at once with "database is locked" when it tries to upgrade. Readers in
WAL mode never wait for the writer; the retry loop is a belt for the moments
SQLite itself reports busy to a reader (recovering the WAL index after a crash,
a checkpoint that restarts the log).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# How long one statement may wait for a lock inside SQLite before it reports busy.
BUSY_TIMEOUT_MS = 10_000
# How long `retry` keeps trying a statement that still reports busy, in seconds.
RETRY_SECONDS = 30.0


def connect(path: str | Path) -> sqlite3.Connection:
    """Open ``path`` for use by several threads, in autocommit mode, with a busy timeout.

    ``check_same_thread=False`` because a training process writes from its main
    thread and from a GPU-sampler thread; every user of a connection holds a lock.
    """
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # NORMAL is durable across application crashes (kill -9) in WAL mode; only a power
    # loss can drop the last transactions, which is an acceptable trade for a metrics log.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying "locked" or "busy" (worth retrying), not a real error."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry(
    fn: Callable[[], T], *, seconds: float | None = None, on_retry: Callable[[], None] | None = None
) -> T:
    """Call ``fn`` until it does not raise a busy error, for at most ``seconds`` (default `RETRY_SECONDS`)."""
    deadline = time.monotonic() + (RETRY_SECONDS if seconds is None else seconds)
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            if on_retry is not None:
                on_retry()
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back when the body raises.

    ``BEGIN IMMEDIATE`` is retried on busy; the body runs once (it holds the write
    lock, so it cannot meet another writer).
    """
    retry(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        yield conn
    except BaseException:
        # Some errors (disk full, interrupts) already rolled SQLite back.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        retry(lambda: conn.execute("COMMIT"))


def set_wal(conn: sqlite3.Connection) -> None:
    """Switch the database file to WAL mode (persistent; a no-op when it already is)."""
    mode = retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    if str(mode).lower() != "wal":  # e.g. a filesystem without shared memory support
        raise sqlite3.OperationalError(f"could not switch the run store to WAL mode (journal_mode={mode})")
