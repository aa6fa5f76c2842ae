"""RewardModel: pooling, heads, freezing, LoRA, save/load, batch scoring, one-forward equivalence."""

from __future__ import annotations

import json

import pytest
import torch

from rerankctl.errors import NotFoundError, UsageError
from rerankctl.models.reward import RewardModel, build_value_head, pool_hidden


def test_pool_last_handles_right_and_left_padding():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)  # row0: 0..3, row1: 4..7
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert pool_hidden(hidden, right, "last").squeeze(-1).tolist() == [1.0, 7.0]
    left = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert pool_hidden(hidden, left, "last").squeeze(-1).tolist() == [3.0, 7.0]


def test_pool_mean_ignores_padding():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool_hidden(hidden, mask, "mean").squeeze(-1).tolist() == [2.0, 4.0]
    with pytest.raises(UsageError):
        pool_hidden(hidden, mask, "max")


def test_value_heads_shapes():
    mlp = build_value_head(64, "mlp")
    assert [tuple(m.weight.shape) for m in mlp if isinstance(m, torch.nn.Linear)] == [(32, 64), (1, 32)]
    linear = build_value_head(64, "linear")
    assert tuple(linear.weight.shape) == (1, 64)
    with pytest.raises(UsageError):
        build_value_head(64, "deep")


@pytest.fixture(scope="module")
def reward_model(tiny_qwen3_path):
    torch.manual_seed(0)
    return RewardModel.from_backbone(tiny_qwen3_path, head="mlp", pooling="last")


def test_backbone_has_no_lm_head_and_rewards_are_scalars(reward_model):
    assert not any("lm_head" in name for name, _ in reward_model.named_parameters())
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = reward_model(input_ids=ids, attention_mask=torch.ones_like(ids))["rewards"]
    assert out.shape == (2,) and out.dtype == torch.float32


def test_right_padding_does_not_change_the_reward(reward_model):
    """Concatenating chosen+rejected pads rows to one width; causal attention + last pooling ignore it."""
    ids = torch.tensor([[11, 12, 13]])
    alone = reward_model(input_ids=ids, attention_mask=torch.ones_like(ids))["rewards"]
    padded = torch.tensor([[11, 12, 13, 151643, 151643]])
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    assert torch.allclose(reward_model(input_ids=padded, attention_mask=mask)["rewards"], alone, atol=1e-5)


def test_freeze_embeddings_and_first_layers(tiny_qwen3_path):
    model = RewardModel.from_backbone(tiny_qwen3_path)
    frozen = model.freeze(embeddings=True, first_layers=1)
    emb = model.backbone.get_input_embeddings().weight
    layer0 = sum(p.numel() for p in model.backbone.layers[0].parameters())
    assert frozen == emb.numel() + layer0
    assert not emb.requires_grad
    assert all(not p.requires_grad for p in model.backbone.layers[0].parameters())
    assert all(p.requires_grad for p in model.backbone.layers[1].parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    with pytest.raises(UsageError, match="has 2 layers"):
        model.freeze(first_layers=3)


def test_save_and_load_round_trip(reward_model, tmp_path):
    out = reward_model.save_pretrained(tmp_path / "rm")
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert json.loads((out / "reward_config.json").read_text())["head"] == "mlp"
    loaded = RewardModel.from_pretrained(out)
    prompts, responses = ["What is 2+2?", "Name a colour."], ["4", "blue"]
    assert loaded.score(prompts, responses) == pytest.approx(reward_model.score(prompts, responses), abs=1e-5)
    with pytest.raises(NotFoundError, match="reward_config.json"):
        RewardModel.from_pretrained(tmp_path)


def test_score_batches_match_single_pairs(reward_model):
    prompts = ["a question", "another, longer question about things", "q3"]
    responses = ["short", "a much longer answer with many words in it", "x"]
    batched = reward_model.score(prompts, responses, batch_size=3)
    single = [reward_model.score([p], [r])[0] for p, r in zip(prompts, responses)]
    assert batched == pytest.approx(single, abs=1e-5)
    with pytest.raises(UsageError):
        reward_model.score(["a"], ["b", "c"])


def test_lora_checkpoint_loads_and_final_merge(tiny_qwen3_path, tmp_path):
    model = RewardModel.from_backbone(tiny_qwen3_path, head="linear").add_lora(r=4, alpha=8, dropout=0.0)
    trainable, total = model.trainable_parameters()
    assert 0 < trainable < total
    # Nudge the adapter so that merging has an effect to check.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    ckpt = model.save_pretrained(tmp_path / "ckpt")
    assert json.loads((ckpt / "reward_config.json").read_text())["lora"]["r"] == 4
    before = model.score(["p"], ["r"])
    assert RewardModel.from_pretrained(ckpt).score(["p"], ["r"]) == pytest.approx(before, abs=1e-5)
    final = model.save_pretrained(tmp_path / "final", merge_lora=True)
    assert json.loads((final / "reward_config.json").read_text())["lora"] is None
    merged = RewardModel.from_pretrained(final)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert merged.score(["p"], ["r"]) == pytest.approx(before, abs=1e-4)
