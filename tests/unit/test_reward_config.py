"""Reward presets, --size profiles, config validation, 8-bit checks and hub dataset conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerankctl.config.presets import PRESETS_DIR, available_presets, resolve_config
from rerankctl.config.reward import RewardConfig, apply_size
from rerankctl.config.vl_reward import VLRewardConfig
from rerankctl.errors import ConfigError, DependencyError

TEXT_PRESETS = ("qwen3_0.6b_reward", "qwen3_1.7b_reward", "tiny_reward")
VL_PRESETS = ("qwen2vl_2b_reward", "tiny_vl_reward")


def test_presets_are_listed_for_their_commands():
    assert set(TEXT_PRESETS) <= set(available_presets("train reward"))
    assert set(VL_PRESETS) <= set(available_presets("train vl-reward"))


@pytest.mark.parametrize("name", TEXT_PRESETS + VL_PRESETS)
def test_every_preset_value_carries_a_comment(name):
    for number, line in enumerate((PRESETS_DIR / f"{name}.toml").read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(("#", "[")) or text.startswith(("command =", "description =")):
            continue
        assert "#" in text, f"{name}.toml:{number} has no reason: {text}"


@pytest.mark.parametrize("name", TEXT_PRESETS)
def test_text_presets_validate_and_have_three_sizes(name):
    cfg = resolve_config(RewardConfig, preset=name, command="train reward")
    assert set(cfg.sizes) == {"small", "medium", "large"}
    small = apply_size(cfg.model_copy(update={"size": "small"}))
    assert small.max_samples == cfg.sizes["small"].max_samples


@pytest.mark.parametrize("name", VL_PRESETS)
def test_vl_presets_validate(name):
    cfg = resolve_config(VLRewardConfig, preset=name, command="train vl-reward")
    assert cfg.score_max > cfg.score_min


def test_flags_beat_the_size_profile():
    flags = {"lr": 3e-5, "size": "large"}
    cfg = resolve_config(RewardConfig, preset="qwen3_0.6b_reward", overrides=flags, command="train reward")
    cfg = apply_size(cfg, flags)
    assert cfg.lr == 3e-5 and cfg.max_samples == 160000 and cfg.batch == 16


def test_unknown_size_and_bad_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no size profile"):
        apply_size(RewardConfig(size="small"))
    with pytest.raises(ConfigError):
        resolve_config(RewardConfig, overrides={"pooling": "max"})
    with pytest.raises(ConfigError):
        resolve_config(VLRewardConfig, overrides={"score_min": 5.0, "score_max": 1.0})


def test_8bit_without_gpu_is_a_dependency_error():
    import torch

    from rerankctl.train.reward import check_8bit

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DependencyError, match="--8bit-model needs a CUDA GPU"):
        check_8bit(RewardConfig(model_8bit=True, lora={"enabled": True}))
    check_8bit(RewardConfig())  # no 8-bit flag: nothing to check


def test_hub_dataset_rows_go_through_the_matching_converter(monkeypatch):
    """The hub is unreachable here; `datasets.load_dataset` is replaced by the rows it would return."""
    import datasets

    from rerankctl.train.reward_data import load_preferences

    rows = [
        {
            "chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!",
            "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away.",
        },
        {"chosen": "\n\nHuman: Same\n\nAssistant: x", "rejected": "\n\nHuman: Same\n\nAssistant: x"},  # a tie
    ]
    calls = []

    def fake_load(name, split):
        calls.append((name, split))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    records, skipped = load_preferences("Anthropic/hh-rlhf")
    assert calls == [("Anthropic/hh-rlhf", "train")]
    assert len(records) == 1 and skipped == 1
    assert records[0].rejected == [{"role": "assistant", "content": "Go away."}]


def test_reward_cli_modules_import_no_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys, rerankctl.cli.train_reward, rerankctl.cli.train_vl_reward, rerankctl.cli.eval_reward\n"
        "heavy = [m for m in ('torch', 'transformers', 'pydantic', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert out.stdout.strip() == ""
