"""Two CPU processes over gloo train the same model as one process with twice the batch.

``--gpus cpu:2 --batch-size 2`` must be one run of world size 2 (DDP really wrapping the model,
gradients all-reduced), not two copies: after 12 steps its weights equal those of one process
with ``--batch-size 4``, same seed and data, for `train sft` (plain and chunked GradCache step),
`train reward` and `train rl`. Two "machines" on loopback (``--nnodes 2``) make one run too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

COMMON = [
    "train",
    "sft",
    "--preset",
    "tiny",
    "--max-steps",
    "12",
    "--loss-type",
    "lambdaloss",
    "--eval-max-queries",
    "2",
    "--save-steps",
    "1000",
]


def _train(tmp_path, name, extra, env):
    out = tmp_path / name
    cmd = [sys.executable, "-m", "rerankctl", *COMMON, "--output", str(out), "--run-name", name, *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out / "final"


def _weights(final_dir):
    from safetensors.torch import load_file

    return load_file(str(final_dir / "model.safetensors"))


@pytest.mark.parametrize("chunk", [[], ["--chunk-size", "3"]], ids=["plain", "chunked"])
def test_two_processes_equal_one_with_double_batch(tmp_path, chunk):
    env = dict(os.environ, RERANKCTL_HOME=str(tmp_path / "home"))
    single = _weights(_train(tmp_path, "single", ["--batch-size", "4", *chunk], env))
    double = _weights(_train(tmp_path, "ddp", ["--batch-size", "2", "--gpus", "cpu:2", *chunk], env))
    start = _weights_of_init(env)
    moved = max(float((single[k] - start[k]).abs().max()) for k in single)
    diff = max(float((single[k] - double[k]).abs().max()) for k in single)
    assert moved > 1e-3, "training did not move the weights: the comparison would be vacuous"
    assert diff <= 1e-4, f"max |dw| between 1 and 2 processes: {diff}"

    show = subprocess.run(
        [sys.executable, "-m", "rerankctl", "runs", "show", "ddp", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0, show.stderr
    record = json.loads(show.stdout)
    assert record["latest_metrics"]["world_size"]["value"] == 2
    events = " ".join(e["message"] for e in record["events"])
    assert "world_size 2" in events and "gloo" in events
    ls = subprocess.run(
        [sys.executable, "-m", "rerankctl", "runs", "ls", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ls.stdout.count('"name": "ddp"') == 1  # one run, not one per process


def _weights_of_init(env):
    from safetensors.torch import load_file

    from rerankctl import paths

    old = os.environ.get("RERANKCTL_HOME")
    os.environ["RERANKCTL_HOME"] = env["RERANKCTL_HOME"]
    try:
        from rerankctl.models.tiny import tiny_qwen3_dir

        return load_file(str(tiny_qwen3_dir(seed=7) / "model.safetensors"))
    finally:
        if old is None:
            os.environ.pop("RERANKCTL_HOME")
        else:
            os.environ["RERANKCTL_HOME"] = old
        del paths


def _run(cmd, env, timeout=900):
    proc = subprocess.run(
        [sys.executable, "-m", "rerankctl", *cmd], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _run_record(env, name):
    return json.loads(_run(["runs", "show", name, "--json"], env, timeout=120).stdout)


def test_reward_two_processes_equal_one_with_double_batch(tmp_path):
    """`train reward`: the same weights, one run, one writer.

    The linear head: an MLP head's biases next to rarely active ReLU units get gradients of
    rounding-noise size, which Adam's normalisation blows up to lr-sized steps in either run;
    that measures Adam's sensitivity, not the synchronisation this test is about.
    """
    env = dict(os.environ, RERANKCTL_HOME=str(tmp_path / "home"))
    common = ["train", "reward", "--preset", "tiny_reward", "--size", "small", "--max-steps", "12"]
    common += ["--head", "linear", "--eval-steps", "1000", "--save-steps", "1000"]
    weights = {}
    for name, extra in [("single", ["--batch", "4"]), ("ddp", ["--batch", "2", "--gpus", "cpu:2"])]:
        out = tmp_path / name
        _run([*common, *extra, "--output", str(out), "--run-name", f"reward-{name}"], env)
        weights[name] = _weights(out / "final_model")
    from safetensors.torch import load_file

    start = load_file(str(_tiny_dir(env) / "model.safetensors"))
    moved = max(
        float((weights["single"][f"backbone.{k.removeprefix('model.')}"] - v).abs().max())
        for k, v in start.items()
        if f"backbone.{k.removeprefix('model.')}" in weights["single"]
    )
    assert moved > 1e-3, "training did not move the backbone: the comparison would be vacuous"
    assert _max_diff(weights["single"], weights["ddp"]) <= 1e-4
    record = _run_record(env, "reward-ddp")
    assert record["latest_metrics"]["world_size"]["value"] == 2
    runs = _run(["runs", "ls", "--json"], env, timeout=120).stdout
    assert runs.count('"name": "reward-ddp"') == 1


def test_two_machines_on_loopback_make_one_run(tmp_path):
    """``--nnodes 2 --node-rank 0|1 --master-addr 127.0.0.1``: two commands, one run of world size 2.

    Both "machines" share this host, so each gets its own RERANKCTL_HOME (as two machines would);
    only machine 0's store may hold the run, and its weights equal one process with batch 4.
    """
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    homes = [tmp_path / "home0", tmp_path / "home1"]
    out = tmp_path / "nodes"
    procs = []
    for rank, home in enumerate(homes):
        cmd = [sys.executable, "-m", "rerankctl", *COMMON, "--batch-size", "2", "--gpus", "cpu:1"]
        cmd += ["--nnodes", "2", "--node-rank", str(rank), "--master-addr", "127.0.0.1"]
        cmd += ["--master-port", str(port), "--output", str(out / f"node{rank}"), "--run-name", "nodes"]
        env = dict(os.environ, RERANKCTL_HOME=str(home))
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    results = [p.communicate(timeout=900) for p in procs]
    for proc, (stdout, stderr) in zip(procs, results):
        assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert (out / "node0" / "final" / "model.safetensors").is_file()
    # Machine 1 keeps only its own RNG state inside each checkpoint (the Trainer needs every rank's
    # for an exact resume); the model, checkpoints' weights and final/ come from global rank 0.
    written = [p.name for p in (out / "node1").rglob("*") if p.is_file()]
    assert all(n.startswith("rng_state_") for n in written), f"machine 1 wrote {written}"
    env0 = dict(os.environ, RERANKCTL_HOME=str(homes[0]))
    record = _run_record(env0, "nodes")
    assert record["latest_metrics"]["world_size"]["value"] == 2
    env1 = dict(os.environ, RERANKCTL_HOME=str(homes[1]))
    assert '"name": "nodes"' not in _run(["runs", "ls", "--json"], env1, timeout=120).stdout
    single = _weights(_train(tmp_path, "single", ["--batch-size", "4"], env0))
    assert _max_diff(single, _weights(out / "node0" / "final")) <= 1e-4


def _tiny_dir(env, seed=7):
    old = os.environ.get("RERANKCTL_HOME")
    os.environ["RERANKCTL_HOME"] = env["RERANKCTL_HOME"]
    try:
        from rerankctl.models.tiny import tiny_qwen3_dir

        return tiny_qwen3_dir(seed=seed)
    finally:
        if old is None:
            os.environ.pop("RERANKCTL_HOME")
        else:
            os.environ["RERANKCTL_HOME"] = old


def test_rl_two_processes_equal_one_with_double_batch(tmp_path):
    """`train rl` (GRPO, Plackett-Luce rollouts from the built-in base model, LoRA).

    Each group's rankings come from its own generator seeded by (seed, step, record index) and
    drawn over its real documents only, so a group samples the same rankings whichever batch
    and process it lands in; the loss is a mean over rows, so DDP's gradient average is the
    one-process gradient.
    """
    env = dict(os.environ, RERANKCTL_HOME=str(tmp_path / "home"))
    common = ["train", "rl", "--preset", "tiny_rl", "--base-model", "builtin:tiny-qwen3", "--max-steps", "12"]
    common += ["--eval-max-queries", "2", "--save-steps", "1000", "--eval-steps", "1000"]
    common += ["--num-samples", "8", "--loss-type", "grpo"]
    weights = {}
    for name, extra in [("single", ["--batch-size", "4"]), ("ddp", ["--batch-size", "2", "--gpus", "cpu:2"])]:
        out = tmp_path / name
        _run([*common, *extra, "--output", str(out), "--run-name", f"rl-{name}"], env)
        weights[name] = _weights(out / "final")
    from safetensors.torch import load_file

    start = load_file(str(_tiny_dir(env, seed=42) / "model.safetensors"))
    moved = max(
        float((weights["single"][k] - v).abs().max()) for k, v in start.items() if k in weights["single"]
    )
    assert moved > 1e-4, "RL did not move the weights: the comparison would be vacuous"
    assert _max_diff(weights["single"], weights["ddp"]) <= 1e-4
    assert _run_record(env, "rl-ddp")["latest_metrics"]["world_size"]["value"] == 2
