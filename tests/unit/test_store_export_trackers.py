"""`runs export --format tensorboard|mlflow`: a stored run's curves, read back with each tracker's own reader."""

from __future__ import annotations

import pytest
from cli_helpers import main_exit as _main

from rerankctl.store.export_trackers import mlflow_key, tensorboard_tag

ROWS = [
    (0, {"eval_ndcg@10": 0.25}),  # the untrained baseline
    (2, {"loss": 1.5, "learning_rate": 1e-3, "grad_norm": float("nan")}),
    (4, {"loss": 0.75, "learning_rate": 5e-4, "grad_norm": 2.0, "eval_ndcg@10": 0.5}),
    (4, {"test_accuracy": 0.875}),
]


@pytest.fixture
def stored_run():
    from rerankctl.paths import store_path
    from rerankctl.store import RunStore

    store = RunStore.open(store_path())
    with store.create_run(kind="sft", name="exp", config={"lr": 1e-3, "lora": {"r": 8}}, tags=["t1"]) as w:
        for step, values in ROWS:
            w.log_metrics(step, values)
    run = store.get_run("exp")
    store.close()
    return run


def _expected(key):
    return [(s, v[key]) for s, v in ROWS if key in v and v[key] == v[key]]  # NaN != NaN: skipped


def test_names_follow_the_live_trackers():
    assert tensorboard_tag("eval_ndcg@10") == "eval/ndcg@10"
    assert tensorboard_tag("test_accuracy") == "test/accuracy"
    assert tensorboard_tag("loss") == "train/loss"
    assert mlflow_key("eval_ndcg@10") == "eval_ndcg_10"
    assert mlflow_key("eval/p(1)") == "eval/p_1_"


def test_tensorboard_export_reads_back(stored_run, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, _, err = _main(["runs", "export", "exp", "-f", "tensorboard", "-o", str(tmp_path / "tb")], capsys)
    assert code == 0, err
    assert "wrote 8 scalars" in err  # 9 values, the NaN grad_norm skipped
    (path,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    got = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    assert set(got) == {
        "train/loss",
        "train/learning_rate",
        "train/grad_norm",
        "eval/ndcg@10",
        "test/accuracy",
    }
    for key in ("loss", "learning_rate", "grad_norm", "eval_ndcg@10", "test_accuracy"):
        want = _expected(key)
        have = got[tensorboard_tag(key)]
        assert [s for s, _ in have] == [s for s, _ in want]
        assert [v for _, v in have] == pytest.approx([v for _, v in want], rel=1e-7)  # float32 in TB


def test_mlflow_export_reads_back(stored_run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    target = tmp_path / "mlruns"
    code, _, err = _main(
        ["runs", "export", "exp", "-f", "mlflow", "-o", str(target), "--experiment", "e1"], capsys
    )
    assert code == 0, err
    assert "wrote 8 metric values" in err
    client = MlflowClient(target.as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("e1").experiment_id])
    assert run.info.run_name == "exp" and run.info.status == "FINISHED"
    assert run.data.tags["rerankctl.run_id"] == stored_run.id and run.data.tags["rerankctl.kind"] == "sft"
    assert run.data.params == {"lr": "0.001", "lora.r": "8"}
    assert run.info.start_time == int(stored_run.started_at * 1000)
    for key in ("loss", "learning_rate", "grad_norm", "eval_ndcg@10", "test_accuracy"):
        history = client.get_metric_history(run.info.run_id, mlflow_key(key))
        assert sorted((m.step, m.value) for m in history) == _expected(key)


def test_refusals(stored_run, tmp_path, capsys):
    code, _, err = _main(["runs", "export", "exp", "-f", "tensorboard"], capsys)
    assert code == 2 and "--format tensorboard needs --output DIR" in err
    code, _, err = _main(["runs", "export", "exp", "-f", "json", "--wide"], capsys)
    assert code == 2 and "--wide is for --format csv" in err
    code, _, err = _main(["runs", "export", "exp", "--experiment", "x"], capsys)
    assert code == 2 and "--experiment is for --format mlflow" in err


def test_missing_tracker_package_is_named(stored_run, tmp_path, capsys, monkeypatch):
    from rerankctl.config import trackers

    monkeypatch.setitem(trackers.TRACKERS, "tensorboard", (("no_such_module_x",), "pip install tensorboard"))
    code, _, err = _main(["runs", "export", "exp", "-f", "tensorboard", "-o", str(tmp_path)], capsys)
    assert code == 2 and "--format tensorboard needs the no_such_module_x package" in err
    assert "pip install tensorboard" in err
