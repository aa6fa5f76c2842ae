"""Flags that would silently do less than they say are refused (issue 18: "silent no-ops")."""

from __future__ import annotations

import pytest

from rerankctl.errors import DependencyError, UsageError


def test_8bit_model_without_lora_is_refused_before_any_gpu_check():
    """8-bit backbone weights take no gradient: without LoRA only the value head would train."""
    from rerankctl.config.reward import RewardConfig
    from rerankctl.train.reward import check_8bit

    with pytest.raises(
        UsageError, match="--8bit-model without --lora would train only the value head"
    ) as info:
        check_8bit(RewardConfig(model_8bit=True))
    assert info.value.exit_code == 2 and "--lora" in info.value.hint


def test_8bit_model_without_lora_exits_2_from_the_cli(capsys, tmp_path):
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "reward", "--preset", "tiny_reward", "--8bit-model", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "--8bit-model without --lora" in err and "Traceback" not in err


def _no_flash(monkeypatch, reason="the flash-attn package is not installed"):
    import rerankctl.models.flash as flash

    monkeypatch.setattr(flash, "flash_attention_problem", lambda: reason)


def test_explicit_flash_attention_is_refused_where_it_cannot_run(monkeypatch):
    from rerankctl.config.vl_reward import VLRewardConfig
    from rerankctl.train.vl_reward import attn_implementation

    _no_flash(monkeypatch)
    with pytest.raises(DependencyError, match="--flash-attention: the flash-attn package is not installed"):
        attn_implementation(VLRewardConfig(flash_attention=True))
    assert attn_implementation(VLRewardConfig(flash_attention=False)) is None
    # Unset: the documented "when usable" default, no error.
    assert VLRewardConfig().flash_attention is None
    assert attn_implementation(VLRewardConfig()) is None


def test_flash_attention_is_used_when_usable(monkeypatch):
    from rerankctl.config.vl_reward import VLRewardConfig
    from rerankctl.train.vl_reward import attn_implementation

    _no_flash(monkeypatch, None)
    assert attn_implementation(VLRewardConfig()) == "flash_attention_2"
    assert attn_implementation(VLRewardConfig(flash_attention=True)) == "flash_attention_2"
    assert attn_implementation(VLRewardConfig(flash_attention=False)) is None


def test_attn_implementation_flash_is_refused_for_sft_before_loading(monkeypatch, tmp_path):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.models.flash import check_attn_implementation
    from rerankctl.train.sft_runner import run_sft

    _no_flash(monkeypatch, "it needs a CUDA GPU and none is visible")
    check_attn_implementation("sdpa")  # anything else is transformers' business
    cfg = SFTConfig(attn_implementation="flash_attention_2", data="nope.jsonl", output=str(tmp_path / "o"))
    with pytest.raises(DependencyError, match="--attn-implementation flash_attention_2: it needs a CUDA GPU"):
        run_sft(cfg, store_path=str(tmp_path / "store.db"))


def test_flash_attention_problem_on_this_machine_is_a_sentence_or_none():
    from rerankctl.models.flash import flash_attention_problem

    problem = flash_attention_problem()
    assert problem is None or isinstance(problem, str) and problem
