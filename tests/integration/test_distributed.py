"""Two CPU processes over gloo train the same model as one process with twice the batch.

``--gpus cpu:2 --batch-size 2`` must be one run of world size 2 (DDP really wrapping the model,
gradients all-reduced), not two copies: after 12 steps its weights equal those of one process
with ``--batch-size 4``, same seed and data, for the plain and the chunked (GradCache) step.
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
