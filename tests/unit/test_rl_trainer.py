"""`RLTrainer` and `load_sft_model` on a tiny Qwen3: step-0 identities, advantages, memory, chunking."""

from __future__ import annotations

import math

import pytest
import torch

from rerankctl.data.synth import synth_rerank


@pytest.fixture(scope="module")
def groups():
    from rerankctl.train.rl_data import RLRerankDataset

    ds = RLRerankDataset(synth_rerank(6, seed=3, split="train"), max_docs=6, seed=0)
    return [ds[i] for i in range(len(ds))]


def _batch(tokenizer, groups):
    from rerankctl.train.rl_data import RLCollator

    return RLCollator(tokenizer, max_length=96)(groups)


def _trainer(model, tokenizer, tmp_path, **options):
    from transformers import TrainingArguments

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.train.rl import RLTrainer

    prompt = PromptTokenizer(tokenizer, max_length=96)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        learning_rate=1e-2,
        max_steps=1,
        remove_unused_columns=False,
        disable_tqdm=True,
        max_grad_norm=0.0,
    )
    return RLTrainer(
        model=model,
        args=args,
        train_dataset=[],
        processing_class=tokenizer,
        yes_id=prompt.yes_id,
        no_id=prompt.no_id,
        **options,
    )


def _sft(path, dropout=0.05):
    from rerankctl.config.sft import LoRAConfig
    from rerankctl.models.sft_loading import load_sft_model

    torch.manual_seed(0)  # the adapter's lora_A initialisation
    return load_sft_model(str(path), lora=LoRAConfig(r=8, alpha=16, dropout=dropout))


def test_at_step_zero_kl_is_zero_and_advantages_sum_to_zero_per_group(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path
):
    batch = _batch(qwen3_tokenizer, groups)
    for loss_type in ("grpo", "dapo", "dr_grpo"):
        trainer = _trainer(
            _sft(tiny_qwen3_path),
            qwen3_tokenizer,
            tmp_path,
            loss_type=loss_type,
            kl_coef=0.1,
            temperature=0.05,
            num_samples=8,
        )
        row_scores = trainer.score_rows(trainer.model, batch["input_ids"], batch["attention_mask"])
        _, stats = trainer.rl_loss(row_scores, batch)
        assert stats["kl"] == 0.0  # the fresh adapter is zero: policy == reference exactly
        assert stats["advantage_group_sum_max"] < 1e-5  # float32 rounding
        assert stats["reward_std"] > 0 and stats["clip_fraction"] == 0.0 and stats["ratio_mean"] == 1.0


def test_grpo_advantages_sum_to_zero_within_each_query():
    from rerankctl.losses.rl import compute_doc_level_advantages
    from rerankctl.train.rl_policy import ranking_rewards, sample_rankings

    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 5, generator=gen)
    labels = torch.tensor([[1.0, 0, 0, 0, 0], [2.0, 1, 0, 0, 0], [1.0, 1, 0, 0, 0]])
    mask = torch.ones(3, 5, dtype=torch.bool)
    rankings = sample_rankings(scores, mask, 8, generator=gen)
    rewards = ranking_rewards(rankings, labels, mask, "ndcg_based")
    adv = compute_doc_level_advantages(rewards, torch.arange(3).repeat_interleave(8), scale="group")
    sums = adv.reshape(3, 8).sum(1)
    assert torch.allclose(sums, torch.zeros(3), atol=1e-6) and adv.abs().sum() > 1


def test_dpo_loss_at_step_zero_is_log_2(tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path):
    trainer = _trainer(_sft(tiny_qwen3_path), qwen3_tokenizer, tmp_path, loss_type="dpo", dpo_beta=0.1)
    batch = _batch(qwen3_tokenizer, groups)
    row_scores = trainer.score_rows(trainer.model, batch["input_ids"], batch["attention_mask"])
    loss, stats = trainer.rl_loss(row_scores, batch)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert stats["kl"] == pytest.approx(0.0, abs=1e-9)
    # 6 queries with (n_pos, n_neg) pairs each: exactly the positive x negative pairs
    n_pairs = sum(sum(y > 0 for y in g["labels"]) * sum(y <= 0 for y in g["labels"]) for g in groups)
    assert stats["pairs"] == n_pairs


def test_reference_is_the_sft_model_and_parameters_are_held_once(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path
):
    from rerankctl.models.loading import load_causal_lm
    from rerankctl.models.scoring import yes_no_scores
    from rerankctl.models.sft_loading import parameter_bytes

    sft = load_causal_lm(str(tiny_qwen3_path), dtype=torch.float32)
    model = _sft(tiny_qwen3_path)
    trainer = _trainer(model, qwen3_tokenizer, tmp_path, loss_type="grpo")
    with torch.no_grad():  # move the adapter so policy and reference differ
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    batch = _batch(qwen3_tokenizer, groups)
    ids, attn = batch["input_ids"], batch["attention_mask"]
    ref = trainer.reference_scores(ids, attn)
    with torch.no_grad():
        expected = yes_no_scores(sft, ids, attn, trainer.yes_id, trainer.no_id)
        policy = trainer.score_rows(model, ids, attn)
    assert torch.allclose(ref, expected, atol=1e-5) and not torch.allclose(policy, expected, atol=1e-3)
    plain, rl = parameter_bytes(sft), parameter_bytes(model)
    adapter = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "lora_" in n)
    assert rl == plain + adapter  # SFT weights once, plus the adapter; no reference copy
    assert parameter_bytes(model, sft) == 2 * plain + adapter  # what a copied reference would cost


def test_an_sft_lora_adapter_is_merged_before_the_rl_adapter(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path
):
    from peft import LoraConfig

    from rerankctl.models.loading import load_causal_lm
    from rerankctl.models.peft_wrap import get_peft_model
    from rerankctl.models.scoring import yes_no_scores

    base = load_causal_lm(str(tiny_qwen3_path), dtype=torch.float32)
    sft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in sft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    sft.save_pretrained(str(tmp_path / "adapter"))
    model = _sft(tmp_path / "adapter")
    batch = _batch(qwen3_tokenizer, groups[:2])
    ids, attn = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        expected = yes_no_scores(sft, ids, attn, 9693, 2152)
        got = yes_no_scores(model, ids, attn, 9693, 2152)
        with model.disable_adapter():
            ref = yes_no_scores(model, ids, attn, 9693, 2152)
    assert torch.allclose(got, expected, atol=1e-5) and torch.allclose(ref, expected, atol=1e-5)
    assert list(model.peft_config) == ["default"]  # only the RL adapter is live


def test_chunked_rl_step_gives_the_same_gradients_and_trains_only_the_adapter(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path
):
    grads = []
    for chunk in (0, 5):
        model = _sft(tiny_qwen3_path, dropout=0.0)  # chunking replays dropout per chunk, not per batch
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.linspace(-0.02, 0.02, p.numel()).reshape(p.shape))
        trainer = _trainer(
            model,
            qwen3_tokenizer,
            tmp_path,
            loss_type="grpo",
            kl_coef=0.05,
            chunk_size=chunk,
            temperature=0.05,
            num_samples=8,
        )
        trainer.create_optimizer_and_scheduler(num_training_steps=1)
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop normally
        trainer.training_step(model, _batch(qwen3_tokenizer, groups))
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name in grads[0]:
        # 1e-5: shared-prefix scoring packs a different set of rows per chunk, so float sums run
        # in another order (differences ~4e-6 on gradients of magnitude ~0.5 at temperature 0.05)
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4), name
    assert any(g.abs().sum() > 0 for g in grads[0].values())
