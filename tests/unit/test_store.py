"""Run store API: runs, metrics batching, reads, lookups, tags, deletion, writer lifecycle."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
import time

import pytest

from rerankctl.errors import NotFoundError, UsageError
from rerankctl.store import RunStore, RunWriter
from rerankctl.store import writer as writer_mod


@pytest.fixture
def store(tmp_path):
    s = RunStore.open(tmp_path / "runs.db")
    yield s
    s.close()


def _other(store: RunStore) -> RunStore:
    """A second, independent connection to the same file (what another process would see)."""
    return RunStore.open(store.path, reap=False)


def test_open_default_path_creates_home_and_wal(rerankctl_home):
    with RunStore.open() as s:
        assert s.path == rerankctl_home / "runs.db"
        assert s.path.exists()
        conn = sqlite3.connect(s.path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_create_run_defaults(store):
    w = store.create_run(kind="sft", config={"lr": 1e-4, "lora": {"r": 8}}, tags=["a", "b", "a", " "])
    assert re.fullmatch(r"[0-9a-f]{12}", w.id)
    assert re.fullmatch(r"sft-[a-z]+-[a-z]+-\d{4}", w.name)
    run = store.get_run(w.id)
    assert run.status == "running"
    assert run.kind == "sft"
    assert run.config == {"lr": 1e-4, "lora": {"r": 8}}
    assert run.tags == ("a", "b")  # de-duplicated, blanks dropped, order kept
    assert run.pid == os.getpid()
    assert run.ended_at is None and run.error is None and run.summary == {}
    w.finish()


def test_taken_name_gets_a_suffix(store):
    names = [store.create_run(kind="sft", name="exp").name for _ in range(3)]
    assert names == ["exp", "exp-2", "exp-3"]


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_metrics_commit_at_batch_size_not_before(store, monkeypatch):
    monkeypatch.setattr(writer_mod, "FLUSH_SECONDS", 3600.0)  # only the row threshold triggers
    reader = _other(store)
    w = store.create_run(kind="sft")
    for step in range(99):
        w.log_metrics(step, {"loss": 1.0, "lr": 0.1})  # 198 rows buffered
    time.sleep(0.3)
    assert reader.metrics_since() == []
    w.log_metrics(99, {"loss": 1.0, "lr": 0.1})  # 200th row: the background thread commits the batch
    assert _wait_for(lambda: len(reader.metrics_since()) == writer_mod.FLUSH_ROWS == 200)
    w.log_metrics(100, {"loss": 0.5})
    time.sleep(0.3)
    assert len(reader.metrics_since()) == 200
    w.flush()
    assert len(reader.metrics_since()) == 201
    assert w.committed_metrics == 201
    w.finish()
    reader.close()


def test_commit_failure_keeps_rows_and_training_goes_on(store, monkeypatch):
    """A store locked by another process for longer than the busy timeout delays commits, nothing more."""
    monkeypatch.setattr("rerankctl.store.connection.RETRY_SECONDS", 0.2)
    w = store.create_run(kind="sft")
    with w._io_lock:
        w._conn.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    for step in range(300):
        w.log_metrics(step, {"loss": float(step)})  # never raises, though commits fail
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        w.flush()  # an explicit flush reports the problem
    assert store.metrics_since() == []
    blocker.execute("ROLLBACK")
    blocker.close()
    w.flush()
    assert [s for s, _ in store.metric_series(w.id, "loss")] == list(range(300))  # all there, in order
    w.finish()


def test_background_thread_commits_a_lone_row(store):
    reader = _other(store)
    w = store.create_run(kind="sft")
    w.log_metrics(1, {"loss": 0.25})
    deadline = time.monotonic() + 10
    while not reader.metrics_since() and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = reader.metrics_since()
    assert [(r.step, r.key, r.value) for r in rows] == [(1, "loss", 0.25)]
    w.finish()
    reader.close()


def test_metric_reads(store):
    w = store.create_run(kind="sft")
    w.log_metrics(0, {"loss": 2.0, "acc": 0.1})
    w.log_metrics(10, {"loss": 1.5})
    w.log_metrics(20, {"loss": 1.0, "acc": 0.5, "bad": "n/a", "none": None, "nan": float("nan")})
    w.log_metrics(15, {"eval_ndcg": 0.7})
    w.finish()
    assert store.metric_keys(w.id) == ["acc", "eval_ndcg", "loss", "nan"]  # non-numbers skipped
    assert store.metric_series(w.id, "loss") == [(0, 2.0), (10, 1.5), (20, 1.0)]
    latest = store.latest_metrics(w.id)
    assert {k: v for k, v in latest.items() if k != "nan"} == {
        "acc": (20, 0.5),
        "eval_ndcg": (15, 0.7),
        "loss": (20, 1.0),
    }
    assert latest["nan"][0] == 20 and math.isnan(latest["nan"][1])  # a NaN loss survives as NaN
    assert store.last_step(w.id) == 20
    assert store.metric_series(w.id, "missing") == []
    assert store.latest_metrics("nope") == {} and store.last_step("nope") is None


def test_metrics_since_tails_by_id(store):
    a = store.create_run(kind="sft")
    b = store.create_run(kind="rl")
    for step in range(5):
        a.log_metrics(step, {"loss": step})
        a.flush()
        b.log_metrics(step, {"reward": -step})
        b.flush()
    all_rows = store.metrics_since()
    assert [r.id for r in all_rows] == list(range(1, 11))
    first = store.metrics_since(limit=3)
    rest = store.metrics_since(after_id=first[-1].id)
    assert first + rest == all_rows
    only_b = store.metrics_since(run_id=b.id)
    assert [(r.step, r.value) for r in only_b] == [(s, -s) for s in range(5)]
    assert [r.key for r in store.metrics_since(keys=["loss"])] == ["loss"] * 5
    assert store.metrics_since(keys=[]) == []
    a.finish()
    b.finish()


def test_events_artifacts_gpu_evals(store):
    w = store.create_run(kind="reward")
    w.log_event("started")
    w.log_event("nan loss", level="warning", step=7)
    w.log_artifact("checkpoint", "/out/ckpt-100", step=100, meta={"loss": 0.3})
    w.log_artifact("best", "/out/best")
    with pytest.raises(ValueError, match="artifact kind"):
        w.log_artifact("weights", "/x")
    w.log_gpu_samples(
        [
            {"gpu_index": 0, "name": "H100", "util": 97, "mem_used": 70000, "mem_total": 81559, "temperature": 66,
             "power": 612.5, "power_limit": 700},
            {"gpu_index": 1, "name": "H100", "util": "N/A", "mem_used": None},
        ]
    )  # fmt: skip
    w.log_eval("T2Reranking", "ndcg@10", 0.665, model="/out/final")
    w.finish()
    store.log_eval("T2Reranking", "ndcg@10", 0.61, model="http://127.0.0.1:9997")

    ev = store.events(w.id)
    assert [(e.level, e.message, e.step) for e in ev] == [
        ("info", "started", None),
        ("warning", "nan loss", 7),
    ]
    assert store.events(w.id, after_id=ev[0].id) == ev[1:]
    assert [e.message for e in store.last_events(w.id, 1)] == ["nan loss"]
    arts = store.artifacts(w.id)
    assert [(a.kind, a.path, a.step, a.meta) for a in arts] == [
        ("checkpoint", "/out/ckpt-100", 100, {"loss": 0.3}),
        ("best", "/out/best", None, {}),
    ]
    gpu = store.gpu_samples_since()
    assert (gpu[0].gpu_index, gpu[0].util, gpu[0].mem_total, gpu[0].power) == (0, 97.0, 81559.0, 612.5)
    assert (gpu[1].gpu_index, gpu[1].util, gpu[1].mem_used, gpu[1].temperature) == (1, None, None, None)
    assert gpu[0].run_id == w.id
    assert store.gpu_samples_since(after_id=gpu[0].id) == gpu[1:]
    assert [(e.run_id, e.value) for e in store.evals()] == [(w.id, 0.665), (None, 0.61)]
    assert [e.value for e in store.evals(model="http://127.0.0.1:9997")] == [0.61]
    assert [e.model for e in store.evals(run_id=w.id)] == ["/out/final"]
    assert store.max_ids() == {
        "metrics": 0,
        "events": 2,
        "gpu_samples": 2,
        "artifacts": 2,
        "evals": 2,
        "runs": 1,
    }


def test_finish_status_summary_and_idempotence(store):
    w = store.create_run(kind="sft")
    w.set_summary({"best_ndcg": 0.71, "steps": 300})
    before = time.time()
    w.finish("failed", error="CUDA out of memory")
    run = store.get_run(w.id)
    assert (run.status, run.error, run.summary) == (
        "failed",
        "CUDA out of memory",
        {"best_ndcg": 0.71, "steps": 300},
    )
    assert run.ended_at >= before
    w.finish("completed")  # a second finish does nothing
    w.log_metrics(1, {"loss": 1.0})  # nor does logging after finish
    assert store.get_run(w.id).status == "failed"
    assert store.metrics_since() == []
    with pytest.raises(ValueError, match="status"):
        store.create_run(kind="sft").finish("done")


def test_context_manager_sets_status(store):
    with store.create_run(kind="sft") as ok:
        ok.log_metrics(1, {"loss": 1.0})
    with pytest.raises(RuntimeError), store.create_run(kind="sft") as bad:
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), store.create_run(kind="sft") as stopped:
        raise KeyboardInterrupt
    assert store.get_run(ok.id).status == "completed"
    assert len(store.metrics_since(run_id=ok.id)) == 1  # finish flushed the buffer
    assert (store.get_run(bad.id).status, store.get_run(bad.id).error) == ("failed", "RuntimeError: boom")
    assert (store.get_run(stopped.id).status, store.get_run(stopped.id).error) == ("killed", "interrupted")


def test_get_run_by_id_prefix_and_name(store, monkeypatch):
    ids = iter(["abc111111111", "abc222222222", "def333333333"])
    monkeypatch.setattr("rerankctl.store.store.new_run_id", lambda: next(ids))
    a = store.create_run(kind="sft", name="first")
    b = store.create_run(kind="sft", name="abc")  # a name that is also a prefix of a's id
    c = store.create_run(kind="rl", name="third")
    assert store.get_run("abc111111111").name == "first"
    assert store.get_run("first").id == a.id
    assert store.get_run("abc").id == b.id  # exact name beats id prefix
    assert store.get_run("abc1").id == a.id
    assert store.get_run("ABC2").id == b.id
    assert store.get_run("d").id == c.id
    with pytest.raises(UsageError, match="ambiguous.*abc111111111.*abc222222222"):
        store.get_run("ab")
    with pytest.raises(NotFoundError, match="'zzz'"):
        store.get_run("zzz")
    with pytest.raises(NotFoundError):
        store.get_run("%")  # LIKE wildcards are escaped
    with pytest.raises(UsageError):
        store.get_run("  ")


def test_list_runs_filters_and_order(store):
    runs = []
    for kind, tags in [("sft", ["base"]), ("rl", ["base", "dapo"]), ("sft", []), ("reward", ["dapo"])]:
        runs.append(store.create_run(kind=kind, tags=tags))
        time.sleep(0.002)  # distinct start times
    runs[0].finish()
    runs[1].finish("failed", error="x")
    assert [r.id for r in store.list_runs()] == [w.id for w in reversed(runs)]
    assert [r.id for r in store.list_runs(kind="sft")] == [runs[2].id, runs[0].id]
    assert [r.id for r in store.list_runs(status="running")] == [runs[3].id, runs[2].id]
    assert [r.id for r in store.list_runs(tag="dapo")] == [runs[3].id, runs[1].id]
    assert [r.id for r in store.list_runs(tag="dap")] == []  # whole tags only
    assert [r.id for r in store.list_runs(kind="sft", status="completed", tag="base")] == [runs[0].id]
    assert len(store.list_runs(limit=2)) == 2
    with pytest.raises(UsageError, match="status"):
        store.list_runs(status="done")


def test_tags_add_remove(store):
    w = store.create_run(kind="sft", tags=["x"])
    assert store.add_tags(w.name, ["y", "x", "z"]).tags == ("x", "y", "z")
    assert store.remove_tags(w.id, ["x", "missing"]).tags == ("y", "z")
    assert store.list_runs(tag="z")[0].id == w.id


def test_delete_run_removes_its_rows_only(store):
    keep = store.create_run(kind="sft")
    gone = store.create_run(kind="sft")
    for w in (keep, gone):
        w.log_metrics(1, {"loss": 1.0})
        w.log_event("e")
        w.log_artifact("final", "/f")
        w.log_gpu_samples([{"gpu_index": 0}])
        w.log_eval("d", "m", 1.0)
        w.finish()
    assert store.delete_run(gone.name).id == gone.id
    with pytest.raises(NotFoundError):
        store.get_run(gone.id)
    for table in ("metrics", "events", "artifacts", "gpu_samples", "evals"):
        rows = store._read(f"SELECT run_id FROM {table}")
        assert rows == [(keep.id,)], table


def test_two_threads_log_into_one_writer(store):
    """The training loop and a GPU-sampler thread log at once; every row arrives once."""
    w = store.create_run(kind="sft")
    n = 3000

    def sampler():
        for i in range(n):
            w.log_gpu_samples([{"gpu_index": 0, "util": i % 100}, {"gpu_index": 1, "util": 0}])

    t = threading.Thread(target=sampler)
    t.start()
    for step in range(n):
        w.log_metrics(step, {"loss": 1.0 / (step + 1)})
    t.join()
    w.finish()
    assert store.max_ids()["metrics"] == n
    assert store.max_ids()["gpu_samples"] == 2 * n
    series = store.metric_series(w.id, "loss")
    assert [s for s, _ in series] == list(range(n))


def test_writer_in_forked_child_writes_nothing(store):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    w = store.create_run(kind="sft")
    w.log_metrics(0, {"loss": 1.0})
    w.flush()
    pid = os.fork()
    if pid == 0:  # the child: a DataLoader worker that inherited the writer
        try:
            w.log_metrics(1, {"loss": 2.0})
            w.flush()
            w.finish("failed")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    w.finish()
    assert store.metric_series(w.id, "loss") == [(0, 1.0)]
    assert store.get_run(w.id).status == "completed"


def test_writer_type_is_exported(store):
    w = store.create_run(kind="sft")
    assert isinstance(w, RunWriter) and not w.finished
    w.finish()
    assert w.finished


def test_deleting_a_live_run_does_not_crash_its_writer(store):
    w = store.create_run(kind="sft")
    w.log_metrics(0, {"loss": 1.0})
    w.flush()
    store.delete_run(w.id)  # `runs rm --force` while training goes on
    w.log_metrics(1, {"loss": 0.5})
    with pytest.warns(UserWarning, match="was deleted from the run store"):
        w.flush()
    w.log_metrics(2, {"loss": 0.25})  # ignored from now on
    w.finish()
    assert w.finished
    assert store.metrics_since() == []


def test_back_pressure_commits_in_the_logging_call(store, monkeypatch):
    monkeypatch.setattr(writer_mod, "FLUSH_SECONDS", 3600.0)
    monkeypatch.setattr(writer_mod, "FLUSH_ROWS", 10**9)  # the background thread never flushes
    monkeypatch.setattr(writer_mod, "MAX_PENDING", 50)
    w = store.create_run(kind="sft")
    for step in range(49):
        w.log_metrics(step, {"loss": 1.0})
    assert store.metrics_since() == []
    w.log_metrics(49, {"loss": 1.0})  # the 50th waiting row: committed before the call returns
    assert len(store.metrics_since()) == 50
    w.finish()


def test_unreadable_store_is_a_clear_error(tmp_path):
    from rerankctl.errors import RerankctlError

    bad = tmp_path / "runs.db"
    bad.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(RerankctlError, match=r"cannot open the run store .*runs\.db: file is not a database"):
        RunStore.open(bad)
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(RerankctlError, match="cannot open the run store"):
        RunStore.open(blocked / "sub" / "runs.db")  # a parent that is a file
