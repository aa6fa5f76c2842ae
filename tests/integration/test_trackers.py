"""`--report-to tensorboard,mlflow` for every trainer, offline, read back and compared with the run store.

Each trainer runs a few steps through the real CLI. TensorBoard's event files are read with its
own EventAccumulator, the MLflow file store with MlflowClient; their loss curves must equal the run
store's (TensorBoard keeps float32, hence the relative tolerance), the final evaluation must land
in the same MLflow run as the training (the stock callback opened a second one for it), and that
run carries the rerankctl run's name and id.
"""

from __future__ import annotations

import re

import pytest
from cli_helpers import main_exit as _main

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

# The plain progress line of train/progress.py (non-TTY stderr): "<run> step 2/8 (25%) | ...".
PROGRESS = re.compile(r"^\S+( \S+)? step \d+/\d+ \(\d+%\)( \| [^|]+)+$")


def _argv(kind, out, name, model, vl_model=None):
    steps = ["--max-steps", "4", "--logging-steps", "2", "--eval-steps", "2", "--save-steps", "4"]
    common = ["-o", str(out), "--run-name", name, "--report-to", "tensorboard,mlflow", *steps]
    synth = ["--synth-train-queries", "24", "--synth-eval-queries", "8", "--eval-max-queries", "8"]
    if kind == "sft":
        return ["train", "sft", "--preset", "tiny", "--model", model, "--n-docs", "4", *synth, *common]
    if kind == "rl":
        rl = ["--max-docs", "4", "--num-samples", "4", "--batch-size", "2"]
        return ["train", "rl", "--preset", "tiny_rl", "--sft-model", model, *rl, *synth, *common]
    if kind == "reward":
        return [
            "train",
            "reward",
            "--preset",
            "tiny_reward",
            "--model",
            model,
            "--synth-size",
            "120",
            *common,
        ]
    return [
        "train",
        "vl-reward",
        "--preset",
        "tiny_vl_reward",
        "--model",
        vl_model,
        "--synth-size",
        "40",
        *common,
    ]


def tensorboard_scalars(root) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of every event file under ``root``: tag -> [(step, value)], in file order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[int, float]]] = {}
    files = sorted(root.rglob("events.out.tfevents.*"))
    assert files, f"no event files under {root}"
    for path in files:
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return found


def mlflow_runs(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client, client.search_runs(ids)


def _history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def _close(a, b, rel):
    assert [s for s, _ in a] == [s for s, _ in b]
    assert [v for _, v in a] == pytest.approx([v for _, v in b], rel=rel)


EVAL_KEY = {
    "sft": "eval_ndcg@10",
    "rl": "eval_ndcg@10",
    "reward": "eval_accuracy",
    "vl-reward": "eval_accuracy",
}


@pytest.mark.parametrize(
    "kind",
    [
        "sft",
        pytest.param("rl", marks=pytest.mark.slow),
        pytest.param("reward", marks=pytest.mark.slow),
        pytest.param("vl-reward", marks=pytest.mark.slow),
    ],
)
def test_report_to_tensorboard_and_mlflow_match_the_run_store(
    kind, tmp_path, capsys, monkeypatch, tiny_qwen3_path, request
):
    from rerankctl.store import RunStore

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("RERANKCTL_PROGRESS", "plain")
    vl = request.getfixturevalue("tiny_vl_path") if kind == "vl-reward" else None
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)  # the stock TensorBoardCallback used to write ./runs here for reward runs
    name = f"trk-{kind}"
    code, _, err = _main(_argv(kind, out, name, str(tiny_qwen3_path), vl and str(vl)), capsys)
    assert code == 0, err

    store = RunStore.open()
    run = store.get_run(name)
    loss = store.metric_series(run.id, "loss")
    assert [s for s, _ in loss] == [2, 4]
    eval_key = EVAL_KEY[kind]
    # The trackers see what Trainer.log sees; a baseline the runner writes to the store itself
    # (step 0, before training) is not a Trainer log.
    evals = [p for p in store.metric_series(run.id, eval_key) if p[0] > 0]
    assert evals, store.metric_keys(run.id)

    scalars = tensorboard_scalars(out)
    _close(scalars["train/loss"], loss, rel=1e-6)
    _close([p for p in scalars["eval/" + eval_key.removeprefix("eval_")] if p[0] > 0], evals, rel=1e-6)

    client, runs = mlflow_runs(uri)
    assert len(runs) == 1, [r.info.run_name for r in runs]  # the final evaluation did not open a second run
    tracked = runs[0]
    assert tracked.info.run_name == name and tracked.info.status == "FINISHED"
    assert tracked.data.tags["rerankctl.run_id"] == run.id
    _close(_history(client, tracked.info.run_id, "loss"), loss, rel=1e-12)
    mlflow_key = re.sub(r"[^0-9A-Za-z_\-. :/]", "_", eval_key)  # MLflow's names: eval_ndcg@10 -> eval_ndcg_10
    _close([p for p in _history(client, tracked.info.run_id, mlflow_key) if p[0] > 0], evals, rel=1e-12)
    if kind == "rl":  # the RL trainer's own statistics go through Trainer.log too
        for key in ("reward_mean", "kl", "clip_fraction"):
            _close(_history(client, tracked.info.run_id, key), store.metric_series(run.id, key), rel=1e-12)
            _close(scalars[f"train/{key}"], store.metric_series(run.id, key), rel=1e-5)

    events = [e.message for e in store.events(run.id)]
    assert any(m.startswith(f"mlflow: run {tracked.info.run_id}") for m in events)
    assert any(m.startswith(f"tensorboard: event files in {out}") for m in events)
    assert not (tmp_path / "runs").exists()  # nothing in the current directory
    # Outside a terminal the progress is plain lines, and no library prints its own bars (issue 16:
    # vl-reward showed "Loading weights" / "Writing model shards" and a garbled line).
    assert "Loading weights" not in err and "Writing model shards" not in err
    progress = [line for line in err.splitlines() if re.search(r" step \d+/", line)]
    assert len(progress) >= 3 and all(PROGRESS.match(line) for line in progress), err


@pytest.mark.slow
def test_mlflow_defaults_to_a_file_store_in_the_rerankctl_home(
    tmp_path, capsys, monkeypatch, tiny_qwen3_path
):
    """Without MLFLOW_TRACKING_URI, MLflow 3 would open sqlite:///mlflow.db here (needs SQLAlchemy)."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(
            var, "x"
        )  # registers the variable with monkeypatch, so the run's default is undone
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "rerankctl-home"
    monkeypatch.setenv("RERANKCTL_HOME", str(home))
    argv = _argv("sft", tmp_path / "out", "dflt", str(tiny_qwen3_path))
    argv[argv.index("tensorboard,mlflow")] = "mlflow"
    code, _, err = _main(argv, capsys)
    assert code == 0, err
    assert not (tmp_path / "mlflow.db").exists()
    client, runs = mlflow_runs((home / "mlruns").resolve().as_uri())
    assert [r.info.run_name for r in runs] == ["dflt"]
    assert not list((tmp_path / "out").rglob("events.out.tfevents.*"))  # tensorboard was not asked for


@pytest.mark.parametrize("command", ["sft", "rl", "reward", "vl-reward"])
def test_unknown_tracker_or_missing_package_is_a_config_error(command, capsys, monkeypatch):
    code, _, err = _main(["train", command, "--report-to", "tensorbord", "--print-config"], capsys)
    assert code == 2 and "unknown tracker 'tensorbord'" in err and "did you mean 'tensorboard'" in err

    from rerankctl.config import trackers

    monkeypatch.setitem(trackers.TRACKERS, "mlflow", (("no_such_module_x",), "pip install mlflow-skinny"))
    preset = {"sft": "tiny", "rl": "tiny_rl", "reward": "tiny_reward", "vl-reward": "tiny_vl_reward"}[command]
    code, _, err = _main(["train", command, "--preset", preset, "--report-to", "mlflow"], capsys)
    assert code == 2, err
    assert (
        "--report-to mlflow needs the no_such_module_x package" in err and "pip install mlflow-skinny" in err
    )


def test_missing_tracker_package_is_refused_before_torch_loads(tmp_path):
    """A fresh interpreter: the refusal comes from the config layer, with torch never imported."""
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from rerankctl.config import trackers\n"
        "trackers.TRACKERS['tensorboard'] = (('no_such_module_x',), 'pip install tensorboard')\n"
        "from rerankctl.cli.main import main\n"
        "try:\n    main(['train', 'sft', '--preset', 'tiny', '--report-to', 'tensorboard'])\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "print('@@' + json.dumps({'code': code, 'torch': 'torch' in sys.modules}))\n"
    )
    env = {**os.environ, "RERANKCTL_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    found = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("@@"))[2:])
    assert found == {"code": 2, "torch": False}, proc.stderr
    assert "--report-to tensorboard needs the no_such_module_x package" in proc.stderr


def wandb_offline_history(root) -> tuple[str, list[dict], bool]:
    """The display name, history rows and whether the exit record is in, of the offline run under ``root``.

    An offline run's ``run-<id>.wandb`` is a LevelDB-style log (32 KiB blocks, records with a
    7-byte header: crc32, length, type full/first/middle/last) of wandb ``Record`` protobufs,
    after a 7-byte ``:W&B`` file header; wandb ships no reader of it, so this is a small one.
    """
    import json
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = root.rglob("offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, parts, raws = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            raws.append(chunk)
        elif kind == 2:
            parts = chunk
        elif kind == 3:
            parts += chunk
        elif kind == 4:
            raws.append(parts + chunk)
    name, rows, finished = None, [], False
    for raw in raws:
        record = pb.Record()
        record.ParseFromString(raw)
        which = record.WhichOneof("record_type")
        if which == "run":
            name = record.run.display_name
        elif which == "history":
            rows.append(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            )
        elif which == "exit":
            finished = True
    return name, rows, finished


@pytest.mark.slow
def test_report_to_wandb_offline_matches_the_run_store(tmp_path, capsys, monkeypatch, tiny_qwen3_path):
    pytest.importorskip("wandb")
    from rerankctl.store import RunStore

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = _argv("sft", out, "wb", str(tiny_qwen3_path))
    argv[argv.index("tensorboard,mlflow")] = "wandb"
    code, _, err = _main(argv, capsys)
    assert code == 0, err
    import wandb

    wandb.finish()  # what the CLI's exit does (the stock callback leaves the run open for late logs)
    assert not (tmp_path / "wandb").exists()  # the run's files are under its output, not ./wandb
    import time

    deadline = time.monotonic() + 60  # wandb-core writes the run file after finish() returns
    while not (found := wandb_offline_history(out))[2] and time.monotonic() < deadline:
        time.sleep(0.5)
    name, rows, finished = found
    assert finished, "wandb never wrote the exit record"
    assert name == "wb"
    store = RunStore.open()
    run = store.get_run("wb")
    loss = [(r["train/global_step"], r["train/loss"]) for r in rows if "train/loss" in r]
    assert loss == store.metric_series(run.id, "loss")  # JSON floats: exact
    evals = [(r["train/global_step"], r["eval/ndcg@10"]) for r in rows if "eval/ndcg@10" in r]
    assert evals == [p for p in store.metric_series(run.id, "eval_ndcg@10") if p[0] > 0]
    assert any(e.message.startswith("wandb: run ") and "(offline)" in e.message for e in store.events(run.id))


def test_swanlab_without_its_package_names_the_install(capsys):
    import importlib.util

    if importlib.util.find_spec("swanlab") is not None:
        pytest.skip("swanlab is installed here")
    code, _, err = _main(["train", "reward", "--preset", "tiny_reward", "--report-to", "swanlab"], capsys)
    assert code == 2
    assert "--report-to swanlab needs the swanlab package" in err and "pip install swanlab" in err
