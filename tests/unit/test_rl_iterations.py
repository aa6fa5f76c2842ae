"""Rollout reuse (num_iterations), ratios != 1 in every RL loss, pointwise policy, DAPO refill, DPO."""

from __future__ import annotations

import math

import pytest
import torch

from rerankctl.data.synth import synth_rerank
from rerankctl.losses import dapo_loss, dr_grpo_loss, grpo_loss, kl_penalty, reinforce_loss

# ----------------------------------------------------------------------------- losses, ratio != 1


def _lp(p):
    return torch.log(torch.tensor(p, dtype=torch.float64))


def test_grpo_clipped_and_unclipped_branches_by_hand():
    old = _lp([0.5, 0.5, 0.5, 0.5])
    new = _lp([0.7, 0.55, 0.3, 0.45]).requires_grad_(True)  # ratios 1.4, 1.1, 0.6, 0.9
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    loss, stats = grpo_loss(new, old, adv, clip_eps=0.2)
    # -min(rA, clip(r)A): 1.4 -> clipped 1.2; 1.1 unclipped; 0.6 with A<0 -> clip 0.8 (min picks -0.8); 0.9
    want = -(1.2 + 1.1 - 0.8 - 0.9) / 4
    assert loss.item() == pytest.approx(want, abs=1e-12)
    assert stats["clip_fraction"] == 0.5 and stats["clip_high_fraction"] == 0.25
    assert stats["ratio_min"] == pytest.approx(0.6) and stats["ratio_max"] == pytest.approx(1.4)
    assert stats["ratio_mean"] == pytest.approx((1.4 + 1.1 + 0.6 + 0.9) / 4)
    loss.backward()
    # clipped entries get no gradient; unclipped: d/dlogp (-r A)/4 = -r A / 4
    assert new.grad.tolist() == pytest.approx([0.0, -1.1 / 4, 0.0, 0.9 / 4], abs=1e-12)


def test_dapo_clip_higher_keeps_a_ratio_grpo_clips():
    old = _lp([0.5, 0.5])
    new = _lp([0.625, 0.45])  # ratios 1.25 (inside [0.8, 1.28], outside [0.8, 1.2]) and 0.9
    adv = torch.tensor([2.0, -1.0], dtype=torch.float64)
    d_loss, d_stats = dapo_loss(new, old, adv, eps_low=0.2, eps_high=0.28)
    g_loss, g_stats = grpo_loss(new, old, adv, clip_eps=0.2)
    assert d_loss.item() == pytest.approx(-(1.25 * 2 - 0.9) / 2)
    assert g_loss.item() == pytest.approx(-(1.2 * 2 - 0.9) / 2)
    assert d_stats["clip_fraction"] == 0.0 and g_stats["clip_fraction"] == 0.5


def test_token_mean_sequence_mean_and_constant_normaliser_by_hand():
    old = torch.zeros(2, 3, dtype=torch.float64)
    new = torch.log(torch.tensor([[1.1, 1.1, 1.0], [0.9, 1.0, 1.0]], dtype=torch.float64))
    mask = torch.tensor([[True, True, False], [True, True, True]])
    adv = torch.tensor([[1.0, 2.0, 0.0], [1.0, -1.0, 1.0]], dtype=torch.float64)  # per-token
    per_tok = [[-1.1, -2.2], [-0.9, 1.0, -1.0]]
    token = sum(map(sum, per_tok)) / 5
    seq = (sum(per_tok[0]) / 2 + sum(per_tok[1]) / 3) / 2
    const = (sum(per_tok[0]) / 3 + sum(per_tok[1]) / 3) / 2
    assert dapo_loss(new, old, adv, mask, aggregation="token")[0].item() == pytest.approx(token)
    assert grpo_loss(new, old, adv, mask)[0].item() == pytest.approx(seq)
    assert dr_grpo_loss(new, old, adv, mask)[0].item() == pytest.approx(const)


def test_kl_estimators_by_hand_and_kl_term_in_the_loss():
    lp, ref = _lp([0.5]), _lp([0.25])
    log_r = math.log(0.5)
    assert kl_penalty(lp, ref, "k1").item() == pytest.approx(-log_r)
    assert kl_penalty(lp, ref, "k2").item() == pytest.approx(0.5 * log_r**2)
    assert kl_penalty(lp, ref, "k3").item() == pytest.approx(0.5 - 1 - log_r)
    old = _lp([0.4])
    loss, stats = grpo_loss(lp, old, torch.tensor([1.0], dtype=torch.float64), ref_logp=ref, kl_coef=0.1)
    assert loss.item() == pytest.approx(-1.2 + 0.1 * (0.5 - 1 - log_r))  # ratio 1.25 clipped at 1.2
    assert stats["kl"] == pytest.approx(0.5 - 1 - log_r)


def test_reinforce_with_per_token_advantages():
    lp = _lp([[0.5, 0.25], [0.8, 0.9]])
    adv = torch.tensor([[1.0, 2.0], [-1.0, 0.0]], dtype=torch.float64)
    loss, _ = reinforce_loss(lp, adv)
    want = -((math.log(0.5) + 2 * math.log(0.25)) + (-math.log(0.8))) / 2
    assert loss.item() == pytest.approx(want)


# ----------------------------------------------------------------------------- pointwise policy


def test_pointwise_logp_rewards_and_advantages_by_hand():
    from rerankctl.losses.rl import judgement_rewards
    from rerankctl.train.rl_policy import judgement_doc_rewards, judgement_logp, sample_judgements

    scores = torch.tensor([[2.0, -1.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    yes = torch.tensor([[[True, True, False], [False, False, False]]])
    logp, real = judgement_logp(scores, mask, yes, temperature=2.0)
    s = torch.nn.functional.logsigmoid
    want = [
        s(torch.tensor(1.0)),
        s(torch.tensor(-0.5)),
        None,
        s(torch.tensor(-1.0)),
        s(torch.tensor(0.5)),
        None,
    ]
    for got, w, r in zip(logp.tolist(), want, real.tolist(), strict=True):
        assert (w is None and not r) or (r and got == pytest.approx(float(w)))
    labels = torch.tensor([[2.0, 0.0, 0.0]])
    sb = judgement_rewards(yes, labels, mask)  # 1 - |a - y/ymax|
    assert sb[0, 0].tolist() == [1.0, 0.0, 0.0] and sb[0, 1].tolist() == [0.0, 1.0, 0.0]
    # ndcg of the ranking a rollout stands for: "yes" first; doc 0 alone relevant at rank 1 -> 1
    tie = torch.zeros(1, 2, 3)
    nd = judgement_doc_rewards(yes, tie, labels, mask, "ndcg_based")
    assert nd[0, 0, 0].item() == pytest.approx(1.0)
    # sampling frequency matches sigmoid(s / tau)
    gens = [torch.Generator().manual_seed(1)]
    many, _ = sample_judgements(scores, mask, 4000, temperature=1.0, generators=gens)
    freq = many[0].float().mean(0)
    assert freq[0].item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=0.03)
    assert freq[2].item() == 0.0


def test_ndcg_reward_at_k_sums_to_ndcg_at_k():
    from rerankctl.losses import compute_doc_level_rewards

    scores = torch.tensor([[0.1, 0.2, 0.8, 0.9, 0.3]])
    labels = torch.tensor([[2.0, 0.0, 1.0, 3.0, 0.0]])
    r = compute_doc_level_rewards(scores, labels, "ndcg_based", k=2)
    # top 2: gain 7 at rank 1, gain 1 at rank 2; ideal top 2: gains 7 and 3
    want = (7 + 1 / math.log2(3)) / (7 + 3 / math.log2(3))
    assert r.sum().item() == pytest.approx(want, abs=1e-6)
    assert r[0, 0].item() == 0.0  # rank 5 is past the cut-off


# ----------------------------------------------------------------------------- the trainer


@pytest.fixture(scope="module")
def groups():
    from rerankctl.train.rl_data import RLRerankDataset

    ds = RLRerankDataset(synth_rerank(8, seed=3, split="train"), max_docs=6, seed=0)
    return [ds[i] for i in range(len(ds))]


def _model(path):
    from rerankctl.config.sft import LoRAConfig
    from rerankctl.models.sft_loading import load_sft_model

    torch.manual_seed(0)
    model = load_sft_model(str(path), lora=LoRAConfig(r=8, alpha=16, dropout=0.0))
    with torch.no_grad():  # move the adapter off zero so policy != reference
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.linspace(-0.02, 0.02, p.numel()).reshape(p.shape))
    return model


def _trainer(model, tokenizer, tmp_path, train=(), max_steps=1, lr=1e-2, **options):
    from transformers import TrainingArguments

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.train.rl import RLTrainer
    from rerankctl.train.rl_data import RLCollator

    prompt = PromptTokenizer(tokenizer, max_length=96)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        learning_rate=lr,
        max_steps=max_steps,
        per_device_train_batch_size=options.pop("batch_size", 4),
        remove_unused_columns=False,
        disable_tqdm=True,
        max_grad_norm=0.0,
        logging_steps=1,
        save_strategy="no",
        lr_scheduler_type="constant",
        warmup_steps=0,
        seed=7,
    )
    return RLTrainer(
        model=model,
        args=args,
        train_dataset=list(train),
        data_collator=RLCollator(tokenizer, max_length=96),
        processing_class=tokenizer,
        yes_id=prompt.yes_id,
        no_id=prompt.no_id,
        **options,
    )


@pytest.mark.parametrize(
    ("loss_type", "credit"), [("dapo", "reward_to_go"), ("grpo", "ranking"), ("dr_grpo", "ranking")]
)
def test_one_iteration_is_the_plain_on_policy_update(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path, loss_type, credit
):
    """mu = 1: the gradient equals the pre-issue code path's (old_logp = logp.detach(), one update)."""
    from rerankctl.losses.rl import compute_doc_level_advantages
    from rerankctl.train.chunked import scatter_scores
    from rerankctl.train.rl_data import RLCollator
    from rerankctl.train.rl_policy import ranking_logp, ranking_rewards, sample_rankings

    opts = dict(loss_type=loss_type, credit=credit, kl_coef=0.05, temperature=0.1, num_samples=8)
    opts["dapo_dynamic_sampling"] = False
    batch = RLCollator(qwen3_tokenizer, max_length=96)(groups[:4])
    model = _model(tiny_qwen3_path)
    trainer = _trainer(model, qwen3_tokenizer, tmp_path, **opts)
    trainer.create_optimizer_and_scheduler(num_training_steps=1)
    trainer.current_gradient_accumulation_steps = 1
    trainer.training_step(model, batch)
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    # the pre-issue algorithm, written out
    mask, labels = batch["mask"], batch["labels"]
    scores = scatter_scores(
        trainer.score_rows(model, batch["input_ids"], batch["attention_mask"]).float(), mask
    )
    ref = scatter_scores(trainer.reference_scores(batch["input_ids"], batch["attention_mask"]), mask)
    gens = trainer.group_generators(batch["record_index"], scores.device)
    rankings = sample_rankings(scores, mask, 8, 0.1, generators=gens)
    logp, choice = ranking_logp(scores, mask, rankings, 0.1)
    ref_logp = ranking_logp(ref, mask, rankings, 0.1)[0]
    gid = torch.arange(4).repeat_interleave(8)
    scale = "none" if loss_type == "dr_grpo" else "group"
    if credit == "ranking":
        adv = compute_doc_level_advantages(
            ranking_rewards(rankings, labels, mask, "ndcg_based"), gid, scale=scale
        )
    else:
        from rerankctl.train.rl_policy import rewards_to_go

        w = choice.shape[1]
        togo = rewards_to_go(rankings, labels, mask, "ndcg_based").float()
        slots = gid[:, None] * w + torch.arange(w)[None, :]
        adv = compute_doc_level_advantages(togo, slots, scale=scale, mask=choice)
    fn = {"dapo": dapo_loss, "grpo": grpo_loss, "dr_grpo": dr_grpo_loss}[loss_type]
    kw = dict(ref_logp=ref_logp, kl_coef=0.05)
    kw.update(eps_low=0.2, eps_high=0.28) if loss_type == "dapo" else kw.update(clip_eps=0.2)
    loss, stats = fn(logp, logp.detach(), adv, choice, **kw)
    loss.backward()
    assert stats["ratio_mean"] == 1.0 and trainer.last_stats["ratio_max"] == 1.0
    # Not bit-equal: the trainer's step packs each group behind its shared prompt head (chunked
    # by --chunk-size auto) while this replay scores the batch in one call, so floats are summed
    # in another order (~1e-6 on gradients of ~0.1); a wrong update differs by orders more.
    worst = max(
        float((got[n] - p.grad).abs().max()) for n, p in model.named_parameters() if p.grad is not None
    )
    scale = max(float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None)
    assert got.keys() and worst <= 1e-5 * max(1.0, scale)


def test_num_iterations_reuses_rollouts_and_the_ratio_moves(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path
):
    model = _model(tiny_qwen3_path)
    trainer = _trainer(
        model,
        qwen3_tokenizer,
        tmp_path,
        train=groups,
        max_steps=4,
        lr=5e-2,
        batch_size=4,
        loss_type="grpo",
        num_iterations=2,
        temperature=0.1,
        num_samples=8,
        kl_coef=0.0,
    )
    served = []
    original = trainer.training_step

    def spy(model, inputs, num_items_in_batch=None):
        served.append(inputs["record_index"].tolist())
        return original(model, inputs, num_items_in_batch)

    trainer.training_step = spy
    trainer.train()
    logs = [h for h in trainer.state.log_history if "ratio_mean" in h]
    assert len(logs) == 4
    assert served[0] == served[1] and served[2] == served[3] and served[0] != served[2]
    assert logs[0]["ratio_mean"] == 1.0 and logs[2]["ratio_mean"] == 1.0  # first pass: on-policy
    for second in (logs[1], logs[3]):  # second pass: the policy moved, the ratio is not 1
        assert second["ratio_max"] > 1.0 or second["ratio_min"] < 1.0
        assert second["approx_kl"] > 0
    assert any(h["clip_fraction"] > 0 for h in (logs[1], logs[3]))
    assert {"entropy", "reward_mean", "kl", "ratio_min", "ratio_max"} <= logs[1].keys()


def test_dapo_refill_replaces_groups_without_reward_variance(
    tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path
):
    from rerankctl.train.rl_data import RLCollator

    flat = [dict(g, labels=[0.0] * len(g["labels"]), record_index=100 + i) for i, g in enumerate(groups[:2])]
    batch = RLCollator(qwen3_tokenizer, max_length=96)(flat + groups[:2])
    model = _model(tiny_qwen3_path)
    trainer = _trainer(
        model, qwen3_tokenizer, tmp_path, train=groups, loss_type="dapo", temperature=0.1, num_samples=8
    )
    trainer.create_optimizer_and_scheduler(num_training_steps=1)
    trainer.current_gradient_accumulation_steps = 1
    trainer.training_step(model, batch)
    st = trainer.last_stats
    assert st["kept_groups"] == 4 and st["refill_draws"] >= 1 and st["kept_fraction"] == 1.0


def test_pointwise_policy_trains_and_reference_free_dpo(tiny_qwen3_path, qwen3_tokenizer, groups, tmp_path):
    from rerankctl.train.rl_data import RLCollator

    batch = RLCollator(qwen3_tokenizer, max_length=96)(groups[:4])
    for reward in ("score_based", "rank_based"):
        model = _model(tiny_qwen3_path)
        trainer = _trainer(
            model,
            qwen3_tokenizer,
            tmp_path,
            loss_type="grpo",
            policy="pointwise",
            reward_type=reward,
            num_samples=8,
        )
        trainer.create_optimizer_and_scheduler(num_training_steps=1)
        trainer.current_gradient_accumulation_steps = 1
        trainer.training_step(model, batch)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        assert (
            0 < trainer.last_stats["yes_fraction"] < 1
            and trainer.last_stats["advantage_group_sum_max"] < 1e-4
        )
    model = _model(tiny_qwen3_path)
    trainer = _trainer(
        model, qwen3_tokenizer, tmp_path, loss_type="dpo", dpo_reference_free=True, dpo_beta=0.5
    )
    rows = trainer.score_rows(model, batch["input_ids"], batch["attention_mask"])
    loss, stats = trainer.rl_loss(rows, batch)
    from rerankctl.train.chunked import scatter_scores
    from rerankctl.train.rl_policy import pair_logps, preference_pairs

    s = scatter_scores(rows.detach().float(), batch["mask"])
    pc, pr = pair_logps(s, preference_pairs(batch["labels"], batch["mask"]))
    want = -torch.nn.functional.logsigmoid(0.5 * (pc - pr)).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5) and "kl" not in stats


def test_graded_synth_is_the_binary_view_with_grades():
    a = synth_rerank(40, seed=1, split="train")
    b = synth_rerank(40, seed=1, split="train", graded=True)
    for x, y in zip(a, b, strict=True):
        assert x["query"] == y["query"] and sorted(x["pos"] + x["neg"]) == sorted(y["docs"])
        grade = dict(zip(y["docs"], y["labels"], strict=True))
        assert all(grade[d] == 3.0 for d in x["pos"]) and all(grade[d] < 3.0 for d in x["neg"])
        assert sorted(grade[d] for d in x["neg"]) == [0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
