"""The Qwen3-Reranker prompt: exact text, token-for-token equality, truncation, left padding."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankctl.data.prompt import (
    DEFAULT_INSTRUCTION,
    PromptTokenizer,
    format_full,
    get_yes_no_token_ids,
    tokenize_for_training,
)
from rerankctl.errors import UsageError

# DESIGN.md §3, written out by hand (not built from the module's constants).
DESIGN_TEXT = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
    "<Query>: what is a panda?\n"
    "<Document>: The giant panda is a bear species endemic to China."
    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
)
QUERY = "what is a panda?"
DOC = "The giant panda is a bear species endemic to China."
# <|im_end|> \n <|im_start|> assistant \n <think> \n\n </think> \n\n  (Qwen3 ids)
SUFFIX_IDS = [151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]


def test_format_full_is_the_design_text():
    assert format_full(QUERY, DOC) == DESIGN_TEXT
    assert format_full(QUERY, DOC, DEFAULT_INSTRUCTION) == DESIGN_TEXT


def test_tokenized_prompt_matches_design_text_token_for_token(qwen3_tokenizer):
    expected = qwen3_tokenizer.encode(DESIGN_TEXT, add_special_tokens=False)
    ids, truncated = PromptTokenizer(qwen3_tokenizer, max_length=512).encode_pairs([QUERY], [DOC])
    assert ids == [expected]
    assert truncated == [False]
    assert ids[0][:3] == [151644, 8948, 198]  # <|im_start|> system \n
    assert ids[0][-len(SUFFIX_IDS) :] == SUFFIX_IDS
    assert get_yes_no_token_ids(qwen3_tokenizer) == (9693, 2152)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40),
            st.text(min_size=1, max_size=80),
            st.sampled_from([None, "Find the matching product", "给定查询,检索相关段落"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_batched_encoding_equals_tokenizing_the_whole_text(qwen3_tokenizer, pairs):
    """Any text (odd unicode, whitespace, markers) tokenizes exactly as the full prompt string."""
    queries, docs, instructions = (list(x) for x in zip(*pairs))
    ids, truncated = PromptTokenizer(qwen3_tokenizer, max_length=4096).encode_pairs(
        queries, docs, instructions
    )
    for q, d, i, got in zip(queries, docs, instructions, ids):
        assert got == qwen3_tokenizer.encode(format_full(q, d, i), add_special_tokens=False)
    assert not any(truncated)


def test_long_document_is_cut_and_the_suffix_survives(qwen3_tokenizer):
    prompt = PromptTokenizer(qwen3_tokenizer, max_length=128)
    long_doc = " ".join(["bamboo forest"] * 500)
    ids, truncated = prompt.encode_pairs([QUERY], [long_doc])
    seq = ids[0]
    assert truncated == [True]
    assert len(seq) == 128
    assert seq[: len(prompt.prefix_ids)] == prompt.prefix_ids
    assert seq[-len(SUFFIX_IDS) :] == SUFFIX_IDS
    text = qwen3_tokenizer.decode(seq)
    assert "<Query>: what is a panda?\n<Document>: bamboo forest bamboo" in text
    # The kept document tokens are the *start* of the document's tokens.
    head = qwen3_tokenizer.encode(
        DESIGN_TEXT.split("<Document>:")[0] + "<Document>:", add_special_tokens=False
    )
    doc_ids = qwen3_tokenizer.encode(" " + long_doc, add_special_tokens=False)
    assert seq[: -len(SUFFIX_IDS)] == head + doc_ids[: 128 - len(head) - len(SUFFIX_IDS)]


def test_a_long_query_is_cut_after_the_document_and_markers_survive(qwen3_tokenizer):
    prompt = PromptTokenizer(qwen3_tokenizer, max_length=96)
    long_query = "where " * 300
    ids, truncated = prompt.encode_pairs([long_query], ["short doc"])
    seq = ids[0]
    assert truncated == [True] and len(seq) == 96
    assert seq[-len(SUFFIX_IDS) :] == SUFFIX_IDS
    text = qwen3_tokenizer.decode(seq)
    assert text.startswith(format_full("", "").split("<Query>")[0])
    assert "<Query>: where where" in text
    # The document marker survives and the document keeps at least its first token.
    assert "\n<Document>: short" in text


def test_a_2000_word_instruction_is_cut_to_max_length_keeping_prefix_markers_and_suffix(qwen3_tokenizer):
    """Issue 18: at max_length 128 a 2,000-word instruction gave a 2,059-token prompt."""
    from rerankctl.data.prompt import PREFIX

    prompt = PromptTokenizer(qwen3_tokenizer, max_length=128)
    instruction = " ".join(["judge"] * 2000)
    ids, truncated = prompt.encode_pairs([QUERY, QUERY], [DOC, "x " * 500], instruction)
    for seq in ids:
        assert len(seq) == 128
        assert seq[-len(SUFFIX_IDS) :] == SUFFIX_IDS
        text = qwen3_tokenizer.decode(seq)
        assert text.startswith(PREFIX + "<Instruct>: judge judge")
        # The (short) query survives whole, and the document keeps at least its first token.
        assert f"\n<Query>: {QUERY}\n<Document>: " in text
    assert truncated == [True, True]
    # The query keeps up to half the room when both are long; the instruction keeps the rest.
    ids, _ = prompt.encode_pairs(["where " * 400], [DOC], instruction)
    text = qwen3_tokenizer.decode(ids[0])
    assert len(ids[0]) == 128 and text.count("where") > 10 and text.count("judge") > 10


def test_short_pairs_in_the_same_batch_are_untouched(qwen3_tokenizer):
    prompt = PromptTokenizer(qwen3_tokenizer, max_length=100)
    ids, truncated = prompt.encode_pairs([QUERY, QUERY], [DOC, "x " * 400])
    assert truncated == [False, True]
    assert ids[0] == qwen3_tokenizer.encode(DESIGN_TEXT, add_special_tokens=False)
    assert len(ids[1]) == 100


def test_left_padding_keeps_the_last_position_real(qwen3_tokenizer):
    batch = tokenize_for_training(
        qwen3_tokenizer, [QUERY, QUERY], [DOC, "a much longer document " * 5], max_length=256
    )
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape[0] == 2 and mask.shape == ids.shape
    assert mask[:, -1].tolist() == [1, 1]
    short = int(mask[0].sum())
    assert mask[0, : ids.shape[1] - short].sum() == 0  # all padding on the left
    assert ids[0, : ids.shape[1] - short].eq(qwen3_tokenizer.pad_token_id).all()
    assert ids[0, -short:].tolist() == qwen3_tokenizer.encode(DESIGN_TEXT, add_special_tokens=False)
    assert batch["truncated"] == [False, False]


def test_max_length_too_small_for_the_template_is_a_usage_error(qwen3_tokenizer):
    with pytest.raises(UsageError, match="max_length"):
        PromptTokenizer(qwen3_tokenizer, max_length=40)


def _wordpiece_tokenizer(vocab_words):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", *vocab_words])}
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")


def test_a_tokenizer_whose_yes_is_two_tokens_fails_clearly():
    tokenizer = _wordpiece_tokenizer(["y", "##es", "no", "doc", "query"])
    assert tokenizer.encode("yes", add_special_tokens=False) == [2, 3]
    with pytest.raises(UsageError) as info:
        get_yes_no_token_ids(tokenizer)
    assert "'yes' as 2 tokens" in info.value.message
    assert "single tokens" in info.value.hint
    with pytest.raises(UsageError, match="'yes' as 2 tokens"):
        PromptTokenizer(tokenizer, max_length=4096)


def test_a_tokenizer_with_single_token_yes_no_works():
    tokenizer = _wordpiece_tokenizer(["yes", "no", "y", "##es"])
    assert get_yes_no_token_ids(tokenizer) == (2, 3)
