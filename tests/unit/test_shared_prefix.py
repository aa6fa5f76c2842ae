"""Shared-prefix scoring is exact: same scores (fp32, <= 1e-5) and same gradients as the unshared rows.

Checked for every registered SFT loss, full fine-tuning and LoRA, with and without chunking
(a chunk holding part of a group re-encodes the head; the head's gradient is accumulated).
"""

from __future__ import annotations

import pytest
import torch

from rerankctl.data.prompt import PromptTokenizer
from rerankctl.losses.registry import LOSS_NAMES, build_loss
from rerankctl.models.scoring import yes_no_scores
from rerankctl.models.shared_prefix import (
    enable_shared_prefix,
    group_ids_from_mask,
    pack_rows,
    shared_prefix_scores,
)
from rerankctl.models.yes_no_head import forward_scores, install_yes_no_head
from rerankctl.train.chunked import chunked_backward, scatter_scores

# Three groups of different sizes; documents of different lengths (so segments are padded).
GROUPS = [
    (
        "red wooden chair",
        ["a red wooden chair", "a red metal chair with four legs", "blue table", "green sofa, old"],
        [1, 0, 0, 2],
    ),
    ("quiet small dog", ["small quiet dog breed", "loud big dog barking all night", "a cat"], [2, 1, 0]),
    ("x", ["single document of the last group"], [1]),
]


def _batch(tokenizer):
    prompt = PromptTokenizer(tokenizer, max_length=128)
    queries = [q for q, docs, _ in GROUPS for _ in docs]
    docs = [d for _, ds, _ in GROUPS for d in ds]
    batch = prompt.pad(prompt.encode_pairs(queries, docs)[0])
    width = max(len(d) for _, d, _ in GROUPS)
    mask = torch.zeros(len(GROUPS), width, dtype=torch.bool)
    labels = torch.zeros(len(GROUPS), width)
    for g, (_, ds, ls) in enumerate(GROUPS):
        mask[g, : len(ds)] = True
        labels[g, : len(ls)] = torch.tensor(ls, dtype=torch.float)
    teacher = torch.linspace(-2, 3, mask.numel()).reshape(mask.shape)
    return prompt, batch, mask, labels, teacher


def _model(path, lora: bool):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    if lora:
        from peft import LoraConfig

        from rerankctl.models.peft_wrap import get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"]),
        )
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
    return model.train()


def test_pack_rows_layout_by_hand():
    ids = torch.tensor([[1, 2, 3, 4], [0, 1, 2, 5], [0, 0, 7, 8], [0, 0, 7, 9]])
    attn = (ids != 0).long()
    packed = pack_rows(ids, attn, [0, 0, 1, 1])
    # group 0: head [1, 2], segments [3, 4] and [5]; group 1: head [7], segments [8] and [9]
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 7, 8, 9]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 2, 0, 1, 1]]
    assert packed.last.tolist() == [3, 4, 6, 7]
    dense = packed.layout.dense_mask()[0, 0]
    assert dense[4].tolist() == [True, True, False, False, True, False, False, False]  # head + itself
    assert dense[3].tolist() == [True, True, True, True, False, False, False, False]
    # identical rows keep one token each as their segment
    same = pack_rows(torch.tensor([[5, 6], [5, 6]]), torch.ones(2, 2, dtype=torch.long))
    assert same.input_ids.tolist() == [[5, 6, 6]] and same.position_ids.tolist() == [[0, 1, 1]]


def test_group_ids_follow_the_collator_layout():
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert group_ids_from_mask(mask).tolist() == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("method", ["blocked", "dense"])
def test_scores_equal_unshared(tiny_qwen3_path, qwen3_tokenizer, method):
    prompt, batch, mask, _, _ = _batch(qwen3_tokenizer)
    model = _model(tiny_qwen3_path, lora=False).eval()
    groups = group_ids_from_mask(mask)
    ids, attn = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        reference = yes_no_scores(model, ids, attn, prompt.yes_id, prompt.no_id)
        plain = shared_prefix_scores(
            model, ids, attn, groups, yes_no=(prompt.yes_id, prompt.no_id), method=method
        )
        install_yes_no_head(model, prompt.yes_id, prompt.no_id)
        head = shared_prefix_scores(model, ids, attn, groups, method=method)
        one_group = shared_prefix_scores(model, ids, attn, None, method=method)  # only the template shared
    assert reference.std() > 1e-3  # the scores differ between documents: a real comparison
    for got in (plain, head, one_group):
        assert (got - reference).abs().max().item() <= 1e-5


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


# By default every loss unchunked with full fine-tuning, and two losses chunked with LoRA; the
# rest of the cross product (every loss x chunked/unchunked x full/LoRA) runs in the slow CI step.
# Chunk 3 splits the first group across two chunks.
_FAST = {(0, False), (3, True)}
_CASES = [
    pytest.param(
        name,
        chunk,
        lora,
        id=f"{name}-{'lora' if lora else 'full'}-chunk{chunk}",
        marks=()
        if (chunk, lora) == (0, False) or ((chunk, lora) in _FAST and name in ("lambdaloss", "infonce"))
        else pytest.mark.slow,
    )
    for name in LOSS_NAMES
    for chunk, lora in ((0, False), (3, True), (3, False), (0, True))
]


@pytest.mark.parametrize(("loss_name", "chunk_size", "lora"), _CASES)
def test_gradients_equal_unshared(tiny_qwen3_path, qwen3_tokenizer, loss_name, chunk_size, lora):
    prompt, batch, mask, labels, teacher = _batch(qwen3_tokenizer)
    model = _model(tiny_qwen3_path, lora=lora)
    install_yes_no_head(model, prompt.yes_id, prompt.no_id)
    assert enable_shared_prefix(model)
    loss_fn = build_loss(loss_name)
    if loss_name == "bce":  # pointwise BCE takes labels in [0, 1]
        labels = labels / labels.max()
    ids, attn = batch["input_ids"], batch["attention_mask"]
    groups = group_ids_from_mask(mask)

    def group_loss(row_scores):
        return loss_fn(scatter_scores(row_scores, mask), labels, mask, teacher_scores=teacher)

    model.zero_grad()
    reference_loss = group_loss(forward_scores(model, ids, attn))
    reference_loss.backward()
    reference = _grads(model)

    model.zero_grad()
    if chunk_size:
        loss, _ = chunked_backward(
            lambda i, a, g: shared_prefix_scores(model, i, a, g),
            ids,
            attn,
            group_loss,
            chunk_size,
            group_ids=groups,
        )
    else:
        loss = group_loss(shared_prefix_scores(model, ids, attn, groups))
        loss.backward()
    shared = _grads(model)

    assert reference_loss.item() != 0
    assert loss.item() == pytest.approx(reference_loss.item(), abs=1e-5)
    assert reference.keys() == shared.keys() and reference
    nonzero = 0
    for name in reference:
        nonzero += int(reference[name].abs().max() > 0)
        torch.testing.assert_close(shared[name], reference[name], atol=1e-5, rtol=1e-4, msg=name)
    assert nonzero >= len(reference) // 2


def test_auto_groups_split_at_query_boundaries():
    t = [9, 9, 9]  # the template every row shares
    rows = [t + [1, 1, 5], t + [1, 1, 6, 7], t + [2, 8], t + [2, 9], t + [3]]
    from rerankctl.models.shared_prefix import auto_groups

    assert auto_groups(rows) == [0, 0, 1, 1, 2]
    assert auto_groups([t + [1], t + [2], t + [3]]) == [0, 0, 0]  # one query: one group
    assert auto_groups([t]) == [0]


def test_reranker_scores_equal_with_queries_interleaved(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    queries = ["red chair", "dog", "red chair", "dog", "red chair"]
    docs = ["a red wooden chair", "small dog breed", "blue table", "a cat", "red chair, metal legs"]
    plain = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", dtype="fp32", shared_prefix=False)
    shared = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", dtype="fp32")
    assert shared.shared_prefix and not plain.shared_prefix
    a = plain.score_pairs(queries, docs, normalize=False, batch_size=3)
    b = shared.score_pairs(queries, docs, normalize=False, batch_size=3)
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-5
    assert max(a) - min(a) > 1e-3


def test_trainer_step_equal_with_and_without_shared_prefix(tiny_qwen3_path, qwen3_tokenizer, tmp_path):
    from transformers import TrainingArguments

    from rerankctl.data.collator import RerankCollator
    from rerankctl.train.sft import ContrastiveSFTTrainer

    collator = RerankCollator(qwen3_tokenizer, max_length=128)
    batch = collator([{"query": q, "docs": d, "labels": lab} for q, d, lab in GROUPS])
    results = []
    for shared, chunk in ((False, 0), (True, 0), (True, 2)):
        model = _model(tiny_qwen3_path, lora=False)
        args = TrainingArguments(output_dir=str(tmp_path / str(shared)), report_to=[], use_cpu=True)
        trainer = ContrastiveSFTTrainer(
            model=model,
            args=args,
            loss_fn=build_loss("lambdaloss"),
            yes_id=9693,
            no_id=2152,
            chunk_size=chunk,
            shared_prefix=shared,
        )
        assert trainer.shared_prefix is shared
        trainer.create_optimizer_and_scheduler(num_training_steps=1)
        trainer.current_gradient_accumulation_steps = 1  # set by the train loop otherwise
        loss = trainer.training_step(trainer.model, dict(batch))
        results.append((float(loss), _grads(model)))
    (ref_loss, ref), *others = results
    for loss, grads in others:
        assert loss == pytest.approx(ref_loss, abs=1e-5)
        for name in ref:
            torch.testing.assert_close(grads[name], ref[name], atol=1e-5, rtol=1e-4, msg=name)
