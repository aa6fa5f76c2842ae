"""The run store schema as an append-only list of migrations.

Rules, so that every store ever created can be brought up to date:

* ``MIGRATIONS`` is only ever appended to. A step that shipped is never edited,
  reordered or removed; a change to the schema is a new step at the end.
* Each applied step is recorded in ``_migrations`` with a checksum of its SQL.
  Opening a store whose recorded checksums differ from this list (an edited
  step) or that has more steps than this list (a newer rerankctl wrote it) is
  an error, rather than a silent guess.
* All pending steps run in one ``BEGIN IMMEDIATE`` transaction, so two processes
  opening a new store at once cannot both apply them, and a crash mid-way
  leaves the store at the old version.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass

from rerankctl.errors import RerankctlError
from rerankctl.store.connection import retry, write_transaction


@dataclass(frozen=True)
class Migration:
    """One schema step: a name for humans and the SQL statements (separated by ';')."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:16]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_runs_metrics_events",
        """
        CREATE TABLE runs (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            kind        TEXT NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'killed')),
            config      TEXT NOT NULL DEFAULT '{}',
            output_dir  TEXT,
            started_at  REAL NOT NULL,
            ended_at    REAL,
            pid         INTEGER,
            host        TEXT,
            tags        TEXT NOT NULL DEFAULT '[]',
            error       TEXT
        );
        CREATE INDEX runs_started ON runs (started_at);
        CREATE TABLE metrics (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step    INTEGER NOT NULL,
            key     TEXT NOT NULL,
            value   REAL,
            time    REAL NOT NULL
        );
        CREATE INDEX metrics_run_key_id ON metrics (run_id, key, id);
        CREATE TABLE events (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            time     REAL NOT NULL,
            level    TEXT NOT NULL,
            message  TEXT NOT NULL,
            step     INTEGER
        );
        CREATE INDEX events_run_id ON events (run_id, id);
        """,
    ),
    Migration(
        "0002_artifacts_evals",
        """
        CREATE TABLE artifacts (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            time    REAL NOT NULL,
            kind    TEXT NOT NULL CHECK (kind IN ('checkpoint', 'best', 'final', 'report', 'export')),
            path    TEXT NOT NULL,
            step    INTEGER,
            meta    TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX artifacts_run_id ON artifacts (run_id, id);
        CREATE TABLE evals (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id   TEXT REFERENCES runs (id) ON DELETE CASCADE,
            model    TEXT,
            dataset  TEXT NOT NULL,
            metric   TEXT NOT NULL,
            value    REAL,
            time     REAL NOT NULL
        );
        CREATE INDEX evals_run_id ON evals (run_id, id);
        CREATE INDEX evals_model ON evals (model, id);
        """,
    ),
    Migration(
        "0003_gpu_samples_summary_proc_start",
        """
        CREATE TABLE gpu_samples (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id       TEXT REFERENCES runs (id) ON DELETE CASCADE,
            time         REAL NOT NULL,
            gpu_index    INTEGER NOT NULL,
            name         TEXT,
            util         REAL,
            mem_used     REAL,
            mem_total    REAL,
            temperature  REAL,
            power        REAL,
            power_limit  REAL
        );
        CREATE INDEX gpu_samples_run_id ON gpu_samples (run_id, id);
        ALTER TABLE runs ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';
        -- The writer's process start time (Linux clock ticks since boot), so that a pid
        -- reused by an unrelated process does not keep a dead run "running" forever.
        ALTER TABLE runs ADD COLUMN proc_start INTEGER;
        """,
    ),
)

LATEST_VERSION = len(MIGRATIONS)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS _migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  REAL NOT NULL
)
"""


class StoreVersionError(RerankctlError):
    """The store on disk does not match this version's migration list."""


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (no step uses ';' inside a string literal)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def applied_versions(conn: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """``{version: (name, checksum)}`` of the steps already applied to ``conn``'s database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if not exists:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM _migrations ORDER BY version").fetchall()
    return {int(v): (name, checksum) for v, name, checksum in rows}


def migrate(
    conn: sqlite3.Connection, *, target: int | None = None, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[str]:
    """Apply the pending steps up to ``target`` (default: all); return the names applied.

    ``target`` exists for tests that build an old store on purpose.
    """
    target = len(migrations) if target is None else target
    # Fast path, without the write lock: a store that is already up to date (every open but
    # the first) must not wait for a training process's commit just to find that out.
    current = retry(lambda: applied_versions(conn))
    if len(current) == target == len(migrations) and all(
        checksum == migrations[v - 1].checksum for v, (_, checksum) in current.items() if v <= len(migrations)
    ):
        return []
    with write_transaction(conn):
        conn.execute(_MIGRATIONS_TABLE)
        applied = applied_versions(conn)
        newest = max(applied, default=0)
        if newest > len(migrations):
            raise StoreVersionError(
                f"the run store has schema version {newest}, newer than this rerankctl knows ({len(migrations)})",
                hint="upgrade rerankctl, or point RERANKCTL_HOME at another directory",
            )
        for version, (name, checksum) in applied.items():
            expected = migrations[version - 1]
            if checksum != expected.checksum:
                raise StoreVersionError(
                    f"run store migration {version} ({name}) differs from this rerankctl's "
                    f"({expected.name}); migrations must never be edited",
                    hint="restore the original migration and add a new one at the end of MIGRATIONS",
                )
        done = []
        for version in range(newest + 1, target + 1):
            step = migrations[version - 1]
            for stmt in _statements(step.sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO _migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                (version, step.name, step.checksum, time.time()),
            )
            done.append(step.name)
    return done
