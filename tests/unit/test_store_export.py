"""Exports and comparison helpers of the store (CSV, streamed JSON, config diffs)."""

from __future__ import annotations

import csv
import io
import json

from rerankctl.store import RunStore
from rerankctl.store import export as export_mod
from rerankctl.store.compare import MISSING, config_table, flatten, metrics_table
from rerankctl.store.export import run_document, write_csv, write_json


def _store_with_run(tmp_path):
    store = RunStore.open(tmp_path / "runs.db")
    with store.create_run(kind="sft", name="r", config={"a": {"b": 1}}) as w:
        w.log_metrics(0, {"loss": 1.5, "gnorm": float("nan")})
        w.log_metrics(1, {"loss": 0.5, "gnorm": float("inf")})
        w.log_event("hello", step=1)
        w.log_artifact("final", "/f", step=1, meta={"size": 3})
        w.log_eval("d", "ndcg@10", 0.5, model="m")
    return store, store.get_run("r")


def test_streamed_json_equals_the_document(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "PAGE", 1)  # page through the metrics one row at a time
    store, run = _store_with_run(tmp_path)
    buf = io.StringIO()
    assert write_json(store, run, buf) == 4
    doc = json.loads(buf.getvalue())
    assert doc == run_document(store, run)
    assert [(m["step"], m["key"], m["value"]) for m in doc["metrics"]] == [
        (0, "loss", 1.5),
        (0, "gnorm", None),  # NaN and inf are not JSON: null
        (1, "loss", 0.5),
        (1, "gnorm", None),
    ]
    assert doc["events"][0]["message"] == "hello" and doc["artifacts"][0]["meta"] == {"size": 3}
    assert doc["evals"] == [
        {**doc["evals"][0], "model": "m", "dataset": "d", "metric": "ndcg@10", "value": 0.5}
    ]
    store.close()


def test_csv_keeps_inf_and_blanks_nan(tmp_path):
    store, run = _store_with_run(tmp_path)
    buf = io.StringIO()
    assert write_csv(store, run, buf) == 4
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert [r[:3] for r in rows] == [
        ["step", "key", "value"],
        ["0", "loss", "1.5"],
        ["0", "gnorm", ""],
        ["1", "loss", "0.5"],
        ["1", "gnorm", "inf"],
    ]
    wide = io.StringIO()
    assert write_csv(store, run, wide, wide=True) == 2
    assert wide.getvalue().splitlines() == ["step,gnorm,loss", "0,,1.5", "1,inf,0.5"]
    store.close()


def test_flatten_and_config_table():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": None}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
        "f": None,
    }

    class R:
        def __init__(self, config):
            self.config = config

    runs = [R({"lr": 1, "x": None}), R({"lr": 2}), R({"lr": 1, "x": None})]
    table = config_table(runs)
    assert table == {"lr": [1, 2, 1], "x": [None, MISSING, None]}  # a missing key differs from None
    assert config_table(runs[::2]) == {}
    assert metrics_table([{"loss": (3, 0.1)}, {}]) == {"loss": [(3, 0.1), None]}
