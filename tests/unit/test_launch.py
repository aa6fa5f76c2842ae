"""`--gpus` parsing for multi-process training."""

from __future__ import annotations

import pytest

from rerankctl.errors import UsageError
from rerankctl.train.launch import parse_gpus, strip_launcher_flags


def test_explicit_lists_and_cpu_processes(monkeypatch):
    monkeypatch.setenv("RERANKCTL_FAKE_GPUS", "4")
    assert parse_gpus("0,2") == (["0", "2"], 2)
    assert parse_gpus("cpu:3") == (None, 3)


@pytest.mark.parametrize("bad", ["cpu:0", "cpu:x", "0,a", ",", "auto:0"])
def test_bad_specs_are_usage_errors(bad):
    with pytest.raises(UsageError):
        parse_gpus(bad)


def test_auto_uses_the_gpu_layer(monkeypatch):
    monkeypatch.setenv("RERANKCTL_FAKE_GPUS", "4")
    devices, n = parse_gpus("auto:2")
    assert n == 2 and len(set(devices)) == 2


def test_auto_without_a_driver_says_so(monkeypatch):
    monkeypatch.setenv("RERANKCTL_FAKE_GPUS", "nodriver")
    with pytest.raises(Exception, match="GPU"):
        parse_gpus("auto")


def test_the_relaunched_command_drops_only_the_launcher_flags():
    argv = ["train", "sft", "--gpus", "cpu:2", "--preset", "tiny", "--gpus=0,1", "--n-docs", "4"]
    argv += ["--nnodes", "2", "--node-rank=1", "--master-addr", "10.0.0.1", "--master-port", "29501"]
    argv += ["--accelerate-config", "a.yaml", "--fsdp", "--deepspeed", "zero2"]
    # The strategy flags stay: every worker's TrainingArguments needs them.
    assert strip_launcher_flags(argv) == [
        "train", "sft", "--preset", "tiny", "--n-docs", "4", "--fsdp", "--deepspeed", "zero2",
    ]  # fmt: skip


@pytest.mark.parametrize("fake", ["nodriver", "2"])
def test_gpus_that_do_not_exist_are_refused_before_any_worker(monkeypatch, fake):
    monkeypatch.setenv("RERANKCTL_FAKE_GPUS", fake)
    with pytest.raises(UsageError, match=r"NVML sees .*asked for GPU (0, 1, )?2, 3"):
        parse_gpus("0,1,2,3")


def test_a_failed_worker_is_one_error_line_not_the_agents_traceback(tmp_path, capfd, monkeypatch):
    """The elastic agent's per-worker failure report is folded into one line with the worker's code."""
    import os

    from rerankctl.train.launch import _run_elastic

    monkeypatch.setattr(os, "environ", dict(os.environ))  # _run_elastic replaces the environment
    script = tmp_path / "fail.py"
    script.write_text("import sys\nprint('worker says why', file=sys.stderr)\nsys.exit(3)\n")
    code = _run_elastic(["--nproc-per-node=2", "--standalone", str(script)], dict(os.environ), 2, 2)
    err = capfd.readouterr().err
    assert code == 3
    assert "worker says why" in err  # each worker's own error stays visible
    assert "of 2 stopped (exit code 3)" in err
    assert "ChildFailedError" not in err and "Traceback" not in err
