"""A deterministic run store for the dashboard tests: fixed names, values and timestamps.

The store is written through the real `RunStore`/`RunWriter` API; only the timestamps (which
the writer takes from the wall clock) are then pinned with SQL, so snapshots are identical on
every run.
"""

from __future__ import annotations

import math
from pathlib import Path

from rerankctl.gpu.fake import FakeGpuSource

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SECONDS_PER_STEP = 2.0

# name -> (kind, started offset, status, config, last step, error)
RUNS = {
    "sft-qwen3-0.6b-base": (
        "sft",
        0.0,
        "completed",
        {"max_steps": 500, "lr": 1e-4, "loss_type": "listnet"},
        500,
        None,
    ),
    "reward-bt-hh": ("reward", 1800.0, "failed", {"max_steps": 400, "lr": 1e-5}, 120, "CUDA out of memory"),
    "sft-qwen3-4b-lora": (
        "sft",
        3600.0,
        "running",
        {"max_steps": 1000, "lr": 2e-5, "loss_type": "lambda"},
        300,
        None,
    ),
}
# The dashboard's fixed "now": 10 s after the running run's last logged step.
NOW = T0 + 3600.0 + 300 * SECONDS_PER_STEP + 10.0


def loss_at(name: str, step: int) -> float:
    scale = {"sft-qwen3-0.6b-base": 1.2, "reward-bt-hh": 0.7, "sft-qwen3-4b-lora": 1.0}[name]
    return round(scale * math.exp(-step / 200) + 0.05 * math.sin(step / 7) + 0.1, 6)


def build_store(path: Path) -> dict[str, str]:
    """Write the deterministic store at ``path``; returns ``{run name: run id}``."""
    from rerankctl.store import RunStore

    ids = {}
    with RunStore.open(path) as store:
        for name, (kind, _offset, _status, config, last, _error) in RUNS.items():
            w = store.create_run(
                kind=kind, config=config, name=name, output_dir=f"/runs/{name}", tags=("demo",)
            )
            ids[name] = w.id
            w.log_event("training started", step=0)
            for step in range(0, last + 1, 10):
                values = {"loss": loss_at(name, step), "lr": config["lr"] * (1 - step / config["max_steps"])}
                if kind == "reward":
                    values["accuracy"] = round(0.5 + 0.3 * (1 - math.exp(-step / 50)), 6)
                w.log_metrics(step, values)
                if step and step % 100 == 0:
                    w.log_metrics(step, {"eval/ndcg@10": round(0.6 + step / 5000, 6)})
                    w.log_event(f"saved checkpoint-{step}", step=step)
                    w.log_artifact("checkpoint", f"/runs/{name}/checkpoint-{step}", step=step)
            if name == "reward-bt-hh":
                w.log_event("CUDA out of memory", level="error", step=last)
            w.finish("completed")
        store.log_eval("T2Reranking", "ndcg@10", 0.6632, model="qwen3-reranker-0.6b")
        store.log_eval("MMarcoReranking", "ndcg@10", 0.3110, model="qwen3-reranker-0.6b")
        store.log_eval("T2Reranking", "ndcg@10", 0.6855, model="qwen3-reranker-4b")
        store.log_eval("MMarcoReranking", "ndcg@10", 0.3951, model="qwen3-reranker-4b")
        store.log_eval("T2Reranking", "map", 0.6120, model="qwen3-reranker-4b")
        store.log_eval("T2Reranking", "ndcg@10", 0.6501, model=None, run_id=ids["sft-qwen3-0.6b-base"])

    # Pin every timestamp: metrics at started + step*2 s, events/artifacts likewise.
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        for name, (_kind, offset, status, _config, last, error) in RUNS.items():
            start = T0 + offset
            ended = None if status == "running" else start + last * SECONDS_PER_STEP
            conn.execute(
                "UPDATE runs SET started_at = ?, ended_at = ?, status = ?, error = ?, host = 'node-1' WHERE id = ?",
                (start, ended, status, error, ids[name]),
            )
            for table in ("metrics", "events", "artifacts"):
                conn.execute(
                    f"UPDATE {table} SET time = ? + COALESCE(step, 0) * ? WHERE run_id = ?",
                    (start, SECONDS_PER_STEP, ids[name]),
                )
        conn.execute("UPDATE evals SET time = ?", (T0,))
        # Run ids are random; pin them too (the run screen shows them). Foreign keys are off on
        # this plain connection, so every table is renamed in the same transaction.
        for n, name in enumerate(RUNS, 1):
            fixed = f"00000000000{n}"
            for table, col in (
                ("runs", "id"),
                *((t, "run_id") for t in ("metrics", "events", "artifacts", "evals", "gpu_samples")),
            ):
                conn.execute(f"UPDATE {table} SET {col} = ? WHERE {col} = ?", (fixed, ids[name]))
            ids[name] = fixed
    conn.close()
    return ids


def make_app(path: Path, **kwargs):
    """The dashboard on ``path`` with two frozen fake GPUs, a fixed clock and no timer refreshes."""
    from rerankctl.tui.app import RerankctlApp

    kwargs.setdefault("gpu_source", FakeGpuSource(2, advance=False))
    kwargs.setdefault("refresh_interval", 3600.0)
    kwargs.setdefault("clock", lambda: NOW)
    return RerankctlApp(store_path=path, **kwargs)


async def settle(pilot, refreshes: int = 1) -> None:
    """Wait until the app has applied ``refreshes`` views and every worker is done."""
    import asyncio

    app = pilot.app
    for _ in range(500):
        if app.refreshes >= refreshes and not any(w.is_running for w in app.workers):
            break
        await asyncio.sleep(0.01)
    await app.workers.wait_for_complete()
    await pilot.pause()
