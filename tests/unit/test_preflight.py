"""Pre-flight checks: bad paths, offline/unreachable Hub ids and impossible precision fail fast, in one line."""

from __future__ import annotations

import time

import pytest
from cli_helpers import main_exit as _main

from rerankctl.config import preflight
from rerankctl.config.preflight import check_precision, check_ref, looks_local
from rerankctl.errors import ConfigError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANKCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("ref", "local"),
    [
        ("./x", True), ("/abs/dir", True), ("~/m", True), ("runs/my-run/final", True), ("train.jsonl", True),
        ("..", True), ("Qwen/Qwen3-Reranker-4B", False), ("gpt2", False), ("Anthropic/hh-rlhf", False),
    ],
)  # fmt: skip
def test_looks_local(ref, local):
    assert looks_local(ref) is local


def test_missing_local_path_names_the_flag(home):
    with pytest.raises(ConfigError) as exc:
        check_ref("runs/nope/final", "--model")
    assert "--model runs/nope/final: no such file or directory" in exc.value.message
    assert "runs ls" in exc.value.hint


def test_relative_run_path_resolves_under_the_home_from_any_directory(home, tmp_path, monkeypatch):
    final = home / "runs" / "my-run" / "final"
    final.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert check_ref("runs/my-run/final", "--model") == str(final.resolve())
    (tmp_path / "here").mkdir()
    assert check_ref("here", "--model") == str((tmp_path / "here").resolve())  # the working dir first


def test_offline_hub_id_needs_a_cached_copy(home, tmp_path):
    with pytest.raises(ConfigError) as exc:
        check_ref("Qwen/Qwen3-Reranker-4B", "--tokenizer", offline_hint=", or `--tokenizer qwen3`")
    assert "HF_HUB_OFFLINE" in exc.value.message and "--tokenizer qwen3" in exc.value.hint
    (tmp_path / "hub" / "models--Qwen--Qwen3-Reranker-4B" / "snapshots" / "abc").mkdir(parents=True)
    assert check_ref("Qwen/Qwen3-Reranker-4B", "--model") == "Qwen/Qwen3-Reranker-4B"
    (tmp_path / "datasets" / "Anthropic___hh-rlhf").mkdir(parents=True)
    assert check_ref("Anthropic/hh-rlhf", "--data", "dataset") == "Anthropic/hh-rlhf"
    assert check_ref("builtin:tiny-qwen3", "--model") == "builtin:tiny-qwen3"


def test_unreachable_hub_fails_within_seconds(home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    preflight._probe_cache.clear()
    start = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        check_ref("org/model", "--model")
    assert time.perf_counter() - start < 5
    assert "does not answer" in exc.value.message and "127.0.0.1:9" in exc.value.message


def test_precision_without_a_gpu_names_the_fixing_flag(monkeypatch):
    monkeypatch.delenv("RERANKCTL_FAKE_GPUS", raising=False)
    monkeypatch.setattr("rerankctl.gpu.nvml.device_count", lambda: 0)
    with pytest.raises(ConfigError) as exc:
        check_precision(True, False)
    assert exc.value.message.startswith("--bf16") and "--no-bf16" in exc.value.hint
    with pytest.raises(ConfigError, match="--fp16 needs CUDA GPUs, not --gpus cpu:2"):
        check_precision(False, True, "cpu:2")
    check_precision(False, False)
    monkeypatch.setattr("rerankctl.gpu.nvml.device_count", lambda: 2)
    check_precision(True, False)


def _run_count() -> int:
    from rerankctl.store import RunStore

    return len(RunStore.open().list_runs())


def test_cli_missing_model_is_one_line_and_no_run(home, capsys):
    code, _, err = _main(["train", "sft", "--preset", "tiny", "--model", "/nope/model"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--model /nope/model" in err
    code, _, err = _main(["eval", "--model", "/nope", "--input", "x.jsonl"], capsys)
    assert code == 2 and "--model /nope" in err
    assert _run_count() == 0


def test_cli_preset_with_bf16_on_cpu(home, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RERANKCTL_FAKE_GPUS", raising=False)
    monkeypatch.setattr("rerankctl.gpu.nvml.device_count", lambda: 0)
    sft = tmp_path / "sft-final"
    sft.mkdir()
    argv = ["train", "rl", "--preset", "qwen3_0.6b_rl_dapo", "--sft-model", str(sft)]
    code, _, err = _main(argv, capsys)
    assert code == 2 and "--bf16" in err and "--no-bf16" in err
    assert _run_count() == 0


def test_fields_a_run_does_not_read_are_not_checked(home, tmp_path):
    """`train reward --eval-only` reads --model-path, not the (offline, uncached) base model."""
    from rerankctl.cli._options import option_specs, preflight
    from rerankctl.config.reward import RewardConfig
    from rerankctl.config.vl_reward import VLRewardConfig

    trained = tmp_path / "final_model"
    trained.mkdir()
    specs = option_specs(RewardConfig)
    cfg = preflight(RewardConfig(eval_only=True, model_path=str(trained)), specs)
    assert cfg.model_path == str(trained.resolve())
    with pytest.raises(ConfigError, match="--model Qwen/Qwen3-0.6B"):
        preflight(RewardConfig(model_path=str(trained)), specs)
    vl = VLRewardConfig(test_only=True, model_path=str(trained), train_data="missing.jsonl")
    preflight(vl, option_specs(VLRewardConfig))
