"""Chunked (GradCache) scoring gives the same loss and gradients as scoring all rows at once."""

from __future__ import annotations

import functools

import pytest
import torch

from rerankctl.data.prompt import PromptTokenizer
from rerankctl.losses.infonce import infonce_loss
from rerankctl.losses.lambda_loss import lambda_loss
from rerankctl.losses.list_mle import list_mle
from rerankctl.models.scoring import yes_no_scores
from rerankctl.train.chunked import chunked_backward, scatter_scores

# Two groups of different sizes (4 and 3 documents): padding in the (B, N) layout is masked.
GROUPS = [
    (
        "red wooden chair",
        ["a red wooden chair", "a red metal chair", "a blue wooden table", "green sofa"],
        [1, 0, 0, 0],
    ),
    ("quiet small dog", ["small quiet dog breed", "loud big dog", "a small cat"], [2, 1, 0]),
]
LOSSES = {
    "lambdaloss": functools.partial(lambda_loss, metric="ndcg", weighting_scheme="ndcgloss2pp"),
    "listmle": list_mle,
    "infonce": functools.partial(infonce_loss, temperature=1.0),
}


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
    return prompt, batch, mask, labels


def _lora_model(path, dropout):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from rerankctl.models.peft_wrap import get_peft_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    # Non-zero B matrices so that LoRA changes the scores and every adapter weight gets a gradient.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    return model.train()


def _grads(model):
    return {
        n: p.grad.detach().clone()
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad is not None
    }


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("chunk_size", [2, 4])
def test_chunked_gradients_equal_unchunked(tiny_qwen3_path, qwen3_tokenizer, loss_name, chunk_size):
    prompt, batch, mask, labels = _batch(qwen3_tokenizer)
    model = _lora_model(tiny_qwen3_path, dropout=0.0)
    loss_fn = LOSSES[loss_name]

    def score(ids, attn):
        return yes_no_scores(model, ids, attn, prompt.yes_id, prompt.no_id)

    def group_loss(row_scores):
        return loss_fn(scatter_scores(row_scores, mask), labels, mask)

    model.zero_grad()
    full_loss = group_loss(score(batch["input_ids"], batch["attention_mask"]))
    full_loss.backward()
    reference = _grads(model)

    model.zero_grad()
    loss, scores = chunked_backward(
        score, batch["input_ids"], batch["attention_mask"], group_loss, chunk_size
    )
    chunked = _grads(model)

    assert full_loss.item() > 0
    assert loss.item() == pytest.approx(full_loss.item(), abs=1e-6)
    assert scores.shape == (7,)
    assert reference.keys() == chunked.keys() and len(reference) == 12  # 3 modules x (A, B) x 2 layers
    for name in reference:
        assert reference[name].abs().max() > 0, name
        torch.testing.assert_close(chunked[name], reference[name], atol=1e-5, rtol=1e-4)


def test_dropout_is_replayed_between_the_two_passes(tiny_qwen3_path, qwen3_tokenizer):
    """With LoRA dropout the re-run of a chunk must see the same dropout mask as its no-grad pass.

    Reference: the same chunks scored *with* autograd in the same order from the same seed
    (so they draw the same masks as the chunked method's first pass), then one backward.
    """
    prompt, batch, mask, labels = _batch(qwen3_tokenizer)
    model = _lora_model(tiny_qwen3_path, dropout=0.5)

    def score(ids, attn):
        return yes_no_scores(model, ids, attn, prompt.yes_id, prompt.no_id)

    def group_loss(row_scores):
        return list_mle(scatter_scores(row_scores, mask), labels, mask)

    torch.manual_seed(123)
    model.zero_grad()
    pieces = [
        score(batch["input_ids"][i : i + 3], batch["attention_mask"][i : i + 3]) for i in range(0, 7, 3)
    ]
    group_loss(torch.cat(pieces)).backward()
    reference = _grads(model)

    torch.manual_seed(123)
    model.zero_grad()
    chunked_backward(score, batch["input_ids"], batch["attention_mask"], group_loss, 3)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, reference[name], atol=1e-5, rtol=1e-4)


def test_loss_scale_scales_the_gradient(tiny_qwen3_path, qwen3_tokenizer):
    prompt, batch, mask, labels = _batch(qwen3_tokenizer)
    model = _lora_model(tiny_qwen3_path, dropout=0.0)

    def score(ids, attn):
        return yes_no_scores(model, ids, attn, prompt.yes_id, prompt.no_id)

    def group_loss(row_scores):
        return infonce_loss(scatter_scores(row_scores, mask), labels, mask)

    model.zero_grad()
    chunked_backward(score, batch["input_ids"], batch["attention_mask"], group_loss, 4)
    one = _grads(model)
    model.zero_grad()
    chunked_backward(score, batch["input_ids"], batch["attention_mask"], group_loss, 4, loss_scale=0.25)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, one[name] * 0.25, atol=1e-7, rtol=1e-5)
