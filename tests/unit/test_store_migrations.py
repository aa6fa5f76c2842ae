"""Append-only migrations: old stores upgrade in place, edited or newer schemas are refused."""

from __future__ import annotations

import json
import sqlite3

import pytest

from rerankctl.store import RunStore, StoreVersionError
from rerankctl.store.connection import connect, set_wal
from rerankctl.store.schema import LATEST_VERSION, MIGRATIONS, Migration, applied_versions, migrate


def _schema(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ).fetchall()
    conn.close()
    return rows


def _columns(conn, table) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _old_store(path, version: int) -> sqlite3.Connection:
    conn = connect(path)
    set_wal(conn)
    assert migrate(conn, target=version) == [m.name for m in MIGRATIONS[:version]]
    return conn


def test_there_is_more_than_one_migration():
    assert LATEST_VERSION == len(MIGRATIONS) >= 3
    assert len({m.name for m in MIGRATIONS}) == len(MIGRATIONS)


def test_oldest_schema_migrates_and_keeps_data(tmp_path):
    path = tmp_path / "old.db"
    conn = _old_store(path, 1)
    # The oldest schema: runs without summary/proc_start, no artifacts, evals or gpu_samples tables.
    assert "summary" not in _columns(conn, "runs")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'gpu_samples'").fetchone() is None
    conn.execute(
        "INSERT INTO runs (id, name, kind, status, config, started_at, pid, host, tags) "
        "VALUES ('0123456789ab', 'old-run', 'sft', 'completed', ?, 1000.0, 1, 'h', '[\"v0\"]')",
        (json.dumps({"lr": 0.001}),),
    )
    conn.executemany(
        "INSERT INTO metrics (run_id, step, key, value, time) VALUES ('0123456789ab', ?, 'loss', ?, 1000.0)",
        [(s, 1.0 / (s + 1)) for s in range(10)],
    )
    conn.execute(
        "INSERT INTO events (run_id, time, level, message) VALUES ('0123456789ab', 1000.0, 'info', 'hi')"
    )
    conn.close()

    with RunStore.open(path) as store:
        run = store.get_run("old-run")
        assert (run.config, run.tags, run.summary, run.status) == ({"lr": 0.001}, ("v0",), {}, "completed")
        assert store.metric_series(run.id, "loss")[-1] == (9, 0.1)
        assert [e.message for e in store.events(run.id)] == ["hi"]
        # New tables work, and new rows continue the old id sequences.
        w = store.create_run(kind="sft")
        w.log_metrics(0, {"loss": 1.0})
        w.log_artifact("final", "/f")
        w.log_gpu_samples([{"gpu_index": 0, "util": 5}])
        w.finish()
        assert store.metrics_since(after_id=10)[0].id == 11
        assert store.max_ids()["artifacts"] == 1 and store.max_ids()["gpu_samples"] == 1

    conn = sqlite3.connect(path)
    assert {"summary", "proc_start"} <= set(_columns(conn, "runs"))
    assert [r[0] for r in conn.execute("SELECT version FROM _migrations ORDER BY version")] == list(
        range(1, LATEST_VERSION + 1)
    )
    conn.close()


@pytest.mark.parametrize("start", range(0, LATEST_VERSION + 1))
def test_every_version_migrates_to_the_same_schema(tmp_path, start):
    fresh = tmp_path / "fresh.db"
    RunStore.open(fresh).close()
    old = tmp_path / "old.db"
    _old_store(old, start).close()
    with RunStore.open(old) as store:
        assert store.max_ids()["runs"] == 0
    assert _schema(old) == _schema(fresh)


def test_migrate_is_idempotent(tmp_path):
    path = tmp_path / "runs.db"
    RunStore.open(path).close()
    conn = connect(path)
    assert migrate(conn) == []
    assert len(applied_versions(conn)) == LATEST_VERSION
    conn.close()


def test_newer_store_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    RunStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations VALUES (?, 'future', 'x', 0)", (LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreVersionError, match="newer than this rerankctl knows"):
        RunStore.open(path)


def test_edited_migration_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    conn = connect(path)
    migrate(conn)
    edited = (Migration(MIGRATIONS[0].name, MIGRATIONS[0].sql + "\n-- edited"), *MIGRATIONS[1:])
    with pytest.raises(StoreVersionError, match="must never be edited"):
        migrate(conn, migrations=edited)
    conn.close()


def test_appended_migration_applies_once(tmp_path):
    path = tmp_path / "runs.db"
    RunStore.open(path).close()
    extra = (*MIGRATIONS, Migration("9999_test_column", "ALTER TABLE runs ADD COLUMN note TEXT"))
    conn = connect(path)
    assert migrate(conn, migrations=extra) == ["9999_test_column"]
    assert migrate(conn, migrations=extra) == []
    assert "note" in _columns(conn, "runs")
    conn.close()


def test_failed_migration_rolls_back(tmp_path):
    path = tmp_path / "runs.db"
    RunStore.open(path).close()
    broken = (*MIGRATIONS, Migration("9999_half", "CREATE TABLE t1 (a); CREATE TABLE t1 (b)"))
    conn = connect(path)
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        migrate(conn, migrations=broken)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't1'").fetchone() is None
    assert len(applied_versions(conn)) == LATEST_VERSION
    conn.close()


def test_opening_a_current_store_needs_no_write_lock(tmp_path):
    """`runs ls` or the TUI opening the store never waits for a writer's transaction."""
    import time

    path = tmp_path / "runs.db"
    RunStore.open(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a writer in the middle of a commit
    try:
        t0 = time.monotonic()
        with RunStore.open(path, reap=False) as store:
            assert store.list_runs() == []
        assert time.monotonic() - t0 < 5.0  # the busy timeout is 10 s: no waiting for the lock happened
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
