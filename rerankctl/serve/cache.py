"""An on-disk cache of endpoint scores (SQLite), so an interrupted evaluation resumes.

A score is stored under a SHA-256 of (endpoint, model, instruction, query, document); every
response is committed as it arrives, so whatever was scored before a crash or Ctrl-C is
not asked for again. WAL mode lets several evaluation processes share one cache file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from rerankctl.errors import RerankctlError

_SCHEMA = "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL NOT NULL)"
_CHUNK = 500  # keys per SELECT (below SQLite's bound-parameter limit)


def score_key(endpoint: str, model: str | None, instruction: str | None, query: str, doc: str) -> str:
    """The cache key of one (query, document) score at one endpoint."""
    blob = json.dumps([endpoint, model, instruction, query, doc], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ScoreCache:
    """A thread-safe key -> score store in ``directory/scores.sqlite``."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "scores.sqlite"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise RerankctlError(
                f"{self.path}: cannot open the score cache ({exc})",
                hint="pass another cache_dir, or disable the cache",
            ) from exc
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, float]:
        """The cached scores among ``keys``."""
        found: dict[str, float] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                part = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, score FROM scores WHERE key IN ({marks})", part)
                found.update(rows.fetchall())
        return found

    def put_many(self, items: Iterable[tuple[str, float]]) -> None:
        """Store scores and commit at once (one transaction per response)."""
        items = list(items)
        if not items:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO scores (key, score) VALUES (?, ?)", items)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
