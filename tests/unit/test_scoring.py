"""The two-row yes/no head equals full-vocabulary logits; the reranker ranks consistently."""

from __future__ import annotations

import pytest
import torch

from rerankctl.data.prompt import PromptTokenizer
from rerankctl.models.scoring import full_logits_scores, yes_no_scores

QUERIES = ["what is a red chair", "what is a red chair", "数字 123", "q"]
DOCS = ["a red wooden chair", "blue table " * 30, "数字是一二三", ""]


@pytest.fixture(scope="module")
def tiny_model(tiny_qwen3_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_qwen3_path)).eval()


def test_two_row_head_equals_full_logits(tiny_model, qwen3_tokenizer):
    prompt = PromptTokenizer(qwen3_tokenizer, max_length=128)
    ids, _ = prompt.encode_pairs(QUERIES, DOCS)
    batch = prompt.pad(ids)
    with torch.no_grad():
        fast = yes_no_scores(
            tiny_model, batch["input_ids"], batch["attention_mask"], prompt.yes_id, prompt.no_id
        )
        slow = full_logits_scores(
            tiny_model, batch["input_ids"], batch["attention_mask"], prompt.yes_id, prompt.no_id
        )
    assert fast.shape == (4,)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    # Random weights still give distinct scores: the comparison is not trivially 0 == 0.
    assert fast.std() > 0


def test_two_row_head_gradients_match_full_logits(tiny_model, qwen3_tokenizer):
    prompt = PromptTokenizer(qwen3_tokenizer, max_length=96)
    batch = prompt.pad(prompt.encode_pairs(QUERIES[:2], DOCS[:2])[0])
    grads = []
    for fn in (yes_no_scores, full_logits_scores):
        tiny_model.zero_grad()
        fn(
            tiny_model, batch["input_ids"], batch["attention_mask"], prompt.yes_id, prompt.no_id
        ).sum().backward()
        grads.append({n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4)


def test_left_padding_does_not_change_a_score(tiny_model, qwen3_tokenizer):
    prompt = PromptTokenizer(qwen3_tokenizer, max_length=128)
    ids, _ = prompt.encode_pairs(QUERIES, DOCS)
    with torch.no_grad():
        alone = [
            yes_no_scores(tiny_model, **prompt.pad([seq]), yes_id=prompt.yes_id, no_id=prompt.no_id).item()
            for seq in ids
        ]
        together = yes_no_scores(tiny_model, **prompt.pad(ids), yes_id=prompt.yes_id, no_id=prompt.no_id)
    torch.testing.assert_close(together, torch.tensor(alone), atol=1e-5, rtol=1e-5)


def test_reranker_rerank_is_sorted_and_batch_size_invariant(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    reranker = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=128)
    docs = [f"document number {i} " * (i % 5 + 1) for i in range(11)]
    ranking, scores = reranker.rerank("which document", docs, batch_size=3)
    assert sorted(ranking) == list(range(11))
    assert all(scores[a] >= scores[b] for a, b in zip(ranking, ranking[1:]))
    assert all(0.0 < s < 1.0 for s in scores)
    _, scores_one = reranker.rerank("which document", docs, batch_size=1)
    assert scores == pytest.approx(scores_one, abs=1e-5)
    raw = reranker.score_pairs(["which document"] * 11, docs, normalize=False)
    assert [torch.sigmoid(torch.tensor(r)).item() for r in raw] == pytest.approx(scores, abs=1e-6)


def test_reranker_rejects_a_directory_that_is_not_a_model(tmp_path):
    from rerankctl.errors import NotFoundError
    from rerankctl.models.reranker import Qwen3Reranker

    with pytest.raises(NotFoundError, match="not a model directory"):
        Qwen3Reranker(str(tmp_path))
