"""Rerank, preference and VL record parsing: normalisation and field-naming errors."""

from __future__ import annotations

import pytest

from rerankctl.data.formats import (
    RecordError,
    RerankRecord,
    detect_kind,
    parse_preference,
    parse_rerank,
    parse_vl,
    split_shared_prefix,
)


def test_pos_neg_becomes_positives_first_with_binary_labels():
    rec = parse_rerank({"query": "q", "pos": ["p1", "p2"], "neg": ["n1"], "instruction": "find"})
    assert rec == RerankRecord("q", ["p1", "p2", "n1"], [1.0, 1.0, 0.0], "find", None)


def test_teacher_scores_follow_the_documents():
    rec = parse_rerank(
        {"query": "q", "pos": ["p"], "neg": ["a", "b"], "pos_scores": [0.9], "neg_scores": [0.2, 1]}
    )
    assert rec.teacher_scores == [0.9, 0.2, 1.0]
    assert rec.to_json() == {
        "query": "q",
        "pos": ["p"],
        "neg": ["a", "b"],
        "pos_scores": [0.9],
        "neg_scores": [0.2, 1.0],
    }


def test_graded_docs_labels_round_trip():
    obj = {"query": "q", "docs": ["a", "b", "c"], "labels": [2, 0, 1]}
    rec = parse_rerank(obj)
    assert rec.labels == [2.0, 0.0, 1.0] and rec.docs == ["a", "b", "c"]
    assert rec.to_json() == {"query": "q", "docs": ["a", "b", "c"], "labels": [2.0, 0.0, 1.0]}
    # Binary docs/labels are written back as pos/neg.
    assert parse_rerank({"query": "q", "docs": ["a", "b"], "labels": [0, 1]}).to_json() == {
        "query": "q",
        "pos": ["b"],
        "neg": ["a"],
    }


@pytest.mark.parametrize(
    ("obj", "field", "message"),
    [
        ({"pos": ["p"]}, "query", "missing"),
        ({"query": "  ", "pos": ["p"]}, "query", "empty string"),
        ({"query": 3, "pos": ["p"]}, "query", "expected a string, got int"),
        ({"query": "q"}, "pos", "missing"),
        ({"query": "q", "pos": []}, "pos", "empty list"),
        ({"query": "q", "pos": ["p", 7]}, "pos[1]", "expected a string, got int"),
        ({"query": "q", "pos": ["p"], "neg": ["", "x"]}, "neg[0]", "empty string"),
        ({"query": "q", "pos": ["p"], "neg": {"a": 1}}, "neg", "expected a list of strings, got dict"),
        ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0, 2.0]}, "pos_scores", "has 2 values"),
        ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0]}, "neg_scores", "missing"),
        (
            {"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [True], "neg_scores": [0]},
            "pos_scores[0]",
            "number",
        ),
        ({"query": "q", "pos": ["p"], "pos_scores": [float("nan")]}, "pos_scores[0]", "finite"),
        ({"query": "q", "docs": ["a"]}, "labels", "missing"),
        ({"query": "q", "docs": ["a", "b"], "labels": [1]}, "labels", "has 1 values but 'docs' has 2"),
        ({"query": "q", "docs": ["a"], "labels": [-1]}, "labels[0]", "negative"),
        ({"query": "q", "docs": ["a"], "labels": [0]}, "labels", "no relevant document"),
        ({"query": "q", "docs": ["a"], "labels": ["1"]}, "labels[0]", "expected a number, got str"),
        ({"query": "q", "pos": ["p"], "instruction": 5}, "instruction", "expected a string"),
    ],
)
def test_rerank_errors_name_the_field(obj, field, message):
    with pytest.raises(RecordError) as info:
        parse_rerank(obj)
    assert info.value.field == field
    assert message in info.value.message


def test_a_non_object_is_an_error_without_field():
    with pytest.raises(RecordError, match="expected a JSON object, got list") as info:
        parse_rerank([1, 2])
    assert info.value.field is None


def test_preference_chat_shape_splits_the_shared_prefix():
    user = {"role": "user", "content": "hi"}
    rec = parse_preference(
        {
            "chosen": [user, {"role": "assistant", "content": "hello"}],
            "rejected": [user, {"role": "assistant", "content": "go away"}],
        }
    )
    assert rec.prompt == [user]
    assert rec.chosen == [{"role": "assistant", "content": "hello"}]
    assert rec.rejected == [{"role": "assistant", "content": "go away"}]
    assert rec.chosen_messages() == [user, {"role": "assistant", "content": "hello"}]
    assert rec.margin is None


def test_preference_string_shape_and_margin():
    rec = parse_preference({"prompt": "2+2?", "chosen": "4", "rejected": "5", "margin": 2})
    assert rec.prompt == [{"role": "user", "content": "2+2?"}]
    assert rec.chosen == [{"role": "assistant", "content": "4"}]
    assert rec.margin == 2.0
    assert parse_preference(rec.to_json()) == rec


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"chosen": "a"}, "rejected"),
        ({"prompt": "p", "chosen": "", "rejected": "b"}, "chosen"),
        ({"prompt": "p", "chosen": "a", "rejected": "a"}, "rejected"),
        ({"prompt": "p", "chosen": [{"role": "bot", "content": "x"}], "rejected": "b"}, "chosen[0].role"),
        (
            {"prompt": "p", "chosen": [{"role": "assistant", "content": 1}], "rejected": "b"},
            "chosen[0].content",
        ),
        ({"prompt": "p", "chosen": ["x"], "rejected": "b"}, "chosen[0]"),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}, "margin"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "prompt"),
    ],
)
def test_preference_errors_name_the_field(obj, field):
    with pytest.raises(RecordError) as info:
        parse_preference(obj)
    assert info.value.field == field


def test_split_shared_prefix_always_leaves_a_tail():
    a = [{"role": "user", "content": "x"}]
    b = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    prompt, ca, cb = split_shared_prefix(a, b)
    assert prompt == [] and ca == a and cb == b


def test_vl_record_and_errors():
    rec = parse_vl(
        {"id": 7, "query": "what?", "image": "a.png", "response": ["x", "y"], "human_ranking": [1, 0]}
    )
    assert rec.id == "7" and rec.chosen_index == 1
    assert rec.to_json()["response"] == ["x", "y"]
    base = {"id": "a", "query": "q", "image": "i.png", "response": ["x", "y"], "human_ranking": [0, 1]}
    for change, field in [
        ({"response": ["x"]}, "response"),
        ({"human_ranking": [0, 0]}, "human_ranking"),
        ({"human_ranking": [True, False]}, "human_ranking"),
        ({"image": ""}, "image"),
        ({"id": None}, "id"),
    ]:
        with pytest.raises(RecordError) as info:
            parse_vl({**base, **change})
        assert info.value.field == field


def test_detect_kind():
    assert detect_kind({"query": "q", "pos": []}) == "rerank"
    assert detect_kind({"query": "q", "docs": [], "labels": []}) == "rerank"
    assert detect_kind({"chosen": "a", "rejected": "b"}) == "preference"
    assert detect_kind({"id": 1, "image": "x", "response": [], "human_ranking": []}) == "vl"
    assert detect_kind({"text": "x"}) is None
    assert detect_kind("x") is None
