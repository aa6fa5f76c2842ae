"""RerankCollator: the exact batch contract the SFT trainer consumes."""

from __future__ import annotations

import pytest
import torch

from rerankctl.data.collator import RerankCollator
from rerankctl.data.formats import RerankRecord
from rerankctl.data.prompt import format_full

GROUPS = [
    {
        "query": "red chair",
        "docs": ["a red chair", "a blue lamp"],
        "labels": [1.0, 0.0],
        "instruction": None,
        "teacher_scores": [0.9, 0.1],
    },
    {
        "query": "green desk",
        "docs": ["green desk", "green stool", "black desk", "white shelf"],
        "labels": [2.0, 1.0, 0.0, 0.0],
        "instruction": "Find furniture",
        "teacher_scores": [0.8, 0.5, 0.4, 0.0],
    },
    {
        "query": "stone bench",
        "docs": ["stone bench", "wood bench", "stone lamp"],
        "labels": [1.0, 0.0, 0.0],
        "instruction": None,
        "teacher_scores": [0.7, 0.3, 0.2],
    },
]


def test_batch_layout_matches_the_contract(qwen3_tokenizer):
    batch = RerankCollator(qwen3_tokenizer, max_length=256)(GROUPS)
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "labels",
        "mask",
        "teacher_scores",
        "num_tokens",
        "num_truncated",
    }
    ids, attn = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == torch.long and attn.dtype == torch.long
    assert ids.shape[0] == 9 and attn.shape == ids.shape
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (3, 4)
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"].tolist() == [[True, True, False, False], [True] * 4, [True, True, True, False]]
    assert batch["labels"].tolist() == [[1, 0, 0, 0], [2, 1, 0, 0], [1, 0, 0, 0]]
    assert batch["teacher_scores"][1].tolist() == pytest.approx([0.8, 0.5, 0.4, 0.0])
    # Row r of input_ids is the r-th True position of mask in row-major order.
    positions = batch["mask"].nonzero().tolist()
    for row, (b, n) in enumerate(positions):
        group = GROUPS[b]
        expected = qwen3_tokenizer.encode(
            format_full(group["query"], group["docs"][n], group["instruction"]), add_special_tokens=False
        )
        real = ids[row][attn[row].bool()].tolist()
        assert real == expected
        assert attn[row, -1] == 1  # left padding: the last position is real
    assert batch["num_tokens"] == int(attn.sum())
    assert batch["num_truncated"] == 0


def test_teacher_scores_absent_when_any_group_lacks_them(qwen3_tokenizer):
    groups = [dict(GROUPS[0]), {**GROUPS[1], "teacher_scores": None}]
    batch = RerankCollator(qwen3_tokenizer, max_length=256)(groups)
    assert "teacher_scores" not in batch
    record = RerankRecord("q", ["d1", "d2"], [1.0, 0.0])
    assert RerankCollator(qwen3_tokenizer, max_length=256)([record])["mask"].tolist() == [[True, True]]


def test_truncation_by_default_and_filtering_on_request(qwen3_tokenizer):
    long = "word " * 400
    groups = [
        {"query": "q1", "docs": ["short one", long, "short two"], "labels": [1.0, 0.0, 0.0]},
        {"query": "q2", "docs": [long], "labels": [1.0]},
    ]
    truncating = RerankCollator(qwen3_tokenizer, max_length=100)(groups)
    assert truncating["input_ids"].shape == (4, 100)
    assert truncating["num_truncated"] == 2 and "num_dropped" not in truncating

    collator = RerankCollator(qwen3_tokenizer, max_length=100, filter_overlength=True)
    filtered = collator(groups)
    assert filtered["num_dropped"] == 2 and filtered["num_truncated"] == 0
    assert filtered["input_ids"].shape[0] == 2
    assert filtered["mask"].tolist() == [[True, True], [False, False]]
    assert filtered["labels"].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    second_real = filtered["input_ids"][1][filtered["attention_mask"][1].bool()].tolist()
    assert second_real == qwen3_tokenizer.encode(format_full("q1", "short two"), add_special_tokens=False)
    assert collator.total_dropped == 2


def test_pad_to_multiple_of(qwen3_tokenizer):
    batch = RerankCollator(qwen3_tokenizer, max_length=256, pad_to_multiple_of=16)(GROUPS[:1])
    assert batch["input_ids"].shape[1] % 16 == 0
