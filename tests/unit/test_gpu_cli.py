"""`rerankctl gpu` and `rerankctl gpu pick` through the real entry point, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(args, fake=None, extra_env=None):
    env = dict(os.environ, COLUMNS="100")
    env.pop("RERANKCTL_FAKE_GPUS", None)
    if fake is not None:
        env["RERANKCTL_FAKE_GPUS"] = fake
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "rerankctl", *args], capture_output=True, text=True, env=env, timeout=60
    )


# A sitecustomize that makes pynvml fail like a machine without the driver, even on a GPU host.
NO_DRIVER_SITE = """
import pynvml
def _fail():
    raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
pynvml.nvmlInit = _fail
"""


@pytest.fixture
def no_driver_env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_DRIVER_SITE)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_gpu_without_driver_prints_one_line_and_exits_0(no_driver_env):
    res = run(["gpu"], extra_env=no_driver_env)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "no NVIDIA driver found: NVML could not be loaded\n"
    res = run(["gpu", "--json"], extra_env=no_driver_env)
    assert res.returncode == 0
    assert json.loads(res.stdout) == {
        "ok": False,
        "message": "no NVIDIA driver found: NVML could not be loaded",
        "gpus": [],
    }


def test_gpu_pick_without_driver_fails_with_message(no_driver_env):
    res = run(["gpu", "pick", "-n", "1"], extra_env=no_driver_env)
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr.startswith("error: cannot pick GPUs: no NVIDIA driver found")
    assert "Traceback" not in res.stderr


def test_gpu_table_and_json_with_fake_gpus():
    res = run(["gpu"], fake="2")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    row0 = next(line for line in lines if line.strip().startswith("0 "))
    # tick 0 of the fake: 88% util, 60.0 of 79.6 GiB (75%), 66°C, 615 of 700 W, no fan
    for part in ("H100 80GB HBM3", "88%", "60.0/79.6G", "75%", "66°C", "615/700W", "N/A"):
        assert part in row0, (part, row0)
    assert any("4242" in line and "alice" in line for line in lines)
    data = json.loads(run(["gpu", "--json"], fake="2").stdout)
    assert data["ok"] is True and len(data["gpus"]) == 2
    assert data["gpus"][1]["mem_free"] == (81559 - 1024) * 1024**2
    assert data["gpus"][1]["processes"] == []


def test_gpu_watch_is_bounded():
    res = run(["gpu", "--watch", "-n", "0.1", "--iterations", "3"], fake="1")
    assert res.returncode == 0, res.stderr
    assert "H100 80GB HBM3" in res.stdout


def test_gpu_pick_with_fake_source():
    # Fake pattern: GPU 0 60 GiB used, 1: 1 GiB, 2: 40 GiB, 3: 0.5 GiB (of 79.6).
    res = run(["gpu", "pick", "-n", "2"], fake="4")
    assert (res.returncode, res.stdout) == (0, "3,1\n")
    res = run(["gpu", "pick", "-n", "3", "--min-free-mem", "30"], fake="4")
    assert (res.returncode, res.stdout) == (0, "3,1,2\n")
    res = run(["gpu", "pick", "-n", "4", "--min-free-mem", "30"], fake="4")
    assert res.returncode == 1
    assert "asked for 4 GPUs with >= 30 GiB free, but only 3 of 4 qualify" in res.stderr
    res = run(["gpu", "pick", "-n", "1"], fake="0")
    assert res.returncode == 1 and "no NVIDIA GPU found" in res.stderr
