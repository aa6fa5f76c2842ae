"""Preference pairs: chat-template tokenization, truncation, collation, splits, loading."""

from __future__ import annotations

import json

import pytest

from rerankctl.data.formats import PreferenceRecord, parse_preference
from rerankctl.data.preference_dataset import (
    PairTokenizer,
    PreferenceCollator,
    PreferencePairDataset,
    split_by_prompt,
    take_fraction,
)
from rerankctl.errors import DataError, NotFoundError
from rerankctl.train.reward_data import load_preferences


@pytest.fixture(scope="module")
def tokenizer(qwen3_tokenizer_path):
    from rerankctl.models.reward import load_reward_tokenizer

    return load_reward_tokenizer(qwen3_tokenizer_path)


def test_pair_tokens_equal_the_full_chat_rendering(tokenizer):
    enc = PairTokenizer(tokenizer, max_length=512)
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    reply = [{"role": "assistant", "content": "Paris."}]
    ids, cut = enc.join(enc.encode_prompt(prompt), enc.encode_response(prompt, reply))
    full = tokenizer.apply_chat_template(prompt + reply, tokenize=False).rstrip()
    assert full.endswith("Paris.<|im_end|>")
    assert ids == tokenizer(full, add_special_tokens=False)["input_ids"] and not cut
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")  # what last-token pooling reads


def test_truncation_keeps_response_head_and_prompt_tail(tokenizer):
    enc = PairTokenizer(tokenizer, max_length=10)
    prompt, response = list(range(100, 112)), list(range(200, 208))  # 12 + 8 > 10
    ids, cut = enc.join(prompt, response)
    # prompt keeps at least min(12, 10 // 2) = 5 -> response keeps 10 - 5 = 5 head tokens.
    assert cut and ids == [107, 108, 109, 110, 111, 200, 201, 202, 203, 204]
    ids, cut = enc.join([1, 2], [3, 4, 5])
    assert ids == [1, 2, 3, 4, 5] and not cut


def test_dataset_shares_prompt_and_collator_pads_to_one_width(tokenizer):
    records = [
        PreferenceRecord(
            [{"role": "user", "content": "hi"}],
            [{"role": "assistant", "content": "hello there friend"}],
            [{"role": "assistant", "content": "go"}],
            margin=2.0,
        ),
        PreferenceRecord(
            [{"role": "user", "content": "2+2?"}],
            [{"role": "assistant", "content": "4"}],
            [{"role": "assistant", "content": "5, probably, or maybe 6"}],
        ),
    ]
    ds = PreferencePairDataset(records, tokenizer, max_length=64)
    first = ds[0]
    prompt_len = len(PairTokenizer(tokenizer).encode_prompt(records[0].prompt))
    assert first["chosen_ids"][:prompt_len] == first["rejected_ids"][:prompt_len]
    assert first["chosen_len"] == len(first["chosen_ids"]) - prompt_len
    batch = PreferenceCollator(tokenizer.pad_token_id)([ds[0], ds[1]])
    width = max(len(ds[i][k]) for i in range(2) for k in ("chosen_ids", "rejected_ids"))
    assert batch["chosen_input_ids"].shape == batch["rejected_input_ids"].shape == (2, width)
    assert batch["chosen_attention_mask"][0].sum().item() == len(first["chosen_ids"])
    assert batch["rejected_attention_mask"][0].sum().item() == len(first["rejected_ids"])
    assert batch["margin"].tolist() == [2.0, 0.0]
    assert batch["lengths"][0].tolist() == [first["chosen_len"], first["rejected_len"]]


def _rec(prompt: str, i: int) -> PreferenceRecord:
    return parse_preference({"prompt": prompt, "chosen": f"good {i}", "rejected": f"bad {i}"})


def test_split_by_prompt_keeps_prompts_on_one_side():
    records = [_rec(f"p{i % 10}", i) for i in range(50)]  # 10 prompts, 5 pairs each
    train, held = split_by_prompt(records, 0.2, seed=3)
    train_prompts = {r.prompt[0]["content"] for r in train}
    held_prompts = {r.prompt[0]["content"] for r in held}
    assert not train_prompts & held_prompts
    assert len(held_prompts) == 2 and len(held) == 10 and len(train) == 40
    assert split_by_prompt(records, 0.2, seed=3)[1] == held  # deterministic


def test_take_fraction_is_seeded_and_bounded():
    items = list(range(100))
    sub = take_fraction(items, 0.25, seed=1)
    assert len(sub) == 25 and sub == take_fraction(items, 0.25, seed=1) and sub == sorted(sub)
    assert len(take_fraction(items, 1.0, max_samples=7)) == 7
    from rerankctl.errors import UsageError

    with pytest.raises(UsageError):
        take_fraction(items, 1.5)


def test_load_local_file_reports_line_and_field(tmp_path):
    good = {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1.5}
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(DataError) as info:
        load_preferences(str(path))
    assert info.value.line == 2 and info.value.field == "rejected" and str(path) in info.value.message
    records, skipped = load_preferences(str(path), skip_invalid=True)
    assert len(records) == 1 and skipped == 1 and records[0].margin == 1.5
    with pytest.raises(NotFoundError):
        load_preferences(str(tmp_path / "missing.jsonl"))


def test_load_converts_hh_rlhf_rows(tmp_path):
    row = {
        "chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!",
        "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away.",
    }
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(row) + "\n")
    records, _ = load_preferences(str(path), dataset_format="hh-rlhf")
    assert records[0].prompt == [{"role": "user", "content": "Hi?"}]
    assert records[0].chosen == [{"role": "assistant", "content": "Hello!"}]


def test_builtin_synth_preferences_parse():
    records, skipped = load_preferences("builtin:synth-preference", synth_size=6, seed=0)
    assert len(records) == 6 and skipped == 0
    assert all(r.chosen != r.rejected for r in records)
